"""Checked constructor arguments, shared by every layer (and by ``fit`` for its counts).

Keras takes an int or a tuple for each spatial argument (``kernel_size=3`` or ``(3, 3)``) and
padding names in any case (``'SAME'``). These helpers normalise them and refuse, at
construction, what would otherwise turn into a silent wrong model later (``dilation_rate=0``
is a 1x1 convolution, ``filters=2.5`` a truncated one): each error names the layer, its class,
the argument and the value received. ``owner`` is a layer, or a string such as ``'fit'``.
"""
import numbers


def _owner(owner):
    return owner if isinstance(owner, str) else f'{owner.name} ({type(owner).__name__})'


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def count(owner, name, value, minimum=1):
    """``value`` as an int, which must be a whole number >= ``minimum`` (not a float)."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f'{_owner(owner)}: {name} must be an integer >= {minimum}, '
                         f'got {value!r}')
    return int(value)


def integer(owner, name, value):
    """``value`` as an int of any sign (an axis index), refusing floats and bools."""
    if not _is_int(value):
        raise ValueError(f'{_owner(owner)}: {name} must be an integer, got {value!r}')
    return int(value)


def int_tuple(owner, name, value, n, minimum=1):
    """An int or a sequence of ``n`` ints, each >= ``minimum``, as a tuple of ``n`` ints."""
    values = (value,) * n if _is_int(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if values is None or len(values) != n or not all(
            _is_int(v) and v >= minimum for v in values):
        kind = 'an integer' if n == 1 else f'an integer or a tuple of {n} integers'
        raise ValueError(f'{_owner(owner)}: {name} must be {kind}, each >= {minimum}, '
                         f'got {value!r}')
    return tuple(int(v) for v in values)


def target_shape(owner, value):
    """A shape without the batch axis: ints >= 1, with at most one -1 (inferred)."""
    shape = tuple(value) if isinstance(value, (tuple, list)) else None
    if shape is None or not all(_is_int(d) and (d >= 1 or d == -1) for d in shape) or \
            shape.count(-1) > 1:
        raise ValueError(f'{_owner(owner)}: target_shape must be a tuple of integers >= 1, '
                         f'one of which may be -1, got {value!r}')
    return tuple(int(d) for d in shape)


def padding_mode(owner, value, modes=('valid', 'same')):
    """A padding name in lower case ('SAME' -> 'same'), which must be one of ``modes``."""
    mode = value.lower() if isinstance(value, str) else value
    if mode not in modes:
        raise ValueError(f'{_owner(owner)}: padding must be one of {modes}, got {value!r}')
    return mode


def fraction(owner, name, value, low=0.0, high=1.0):
    """A real number in [low, high)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not low <= value < high:
        raise ValueError(f'{_owner(owner)}: {name} must be a number in [{low:g}, {high:g}), '
                         f'got {value!r}')
    return float(value)


def data_format(owner, value):
    """'channels_last' (also for None, Keras's default) or 'channels_first'."""
    value = 'channels_last' if value is None else value
    if value not in ('channels_last', 'channels_first'):
        raise ValueError(f"{_owner(owner)}: data_format must be 'channels_last' or "
                         f"'channels_first', got {value!r}")
    return value
