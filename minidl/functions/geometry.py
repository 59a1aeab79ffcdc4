"""Sizes of sliding windows: output length and padding for convolution and pooling.

The lessons' sizing formula ``W' = (W - F + 2P)/S + 1`` is applied per spatial axis, with the
effective filter size ``F = dilation * (k - 1) + 1``. Where ``(W - F + 2P)/S`` is not whole the
output is floored, as in Keras: the last ``(W - F + 2P) mod S`` rows are never read
(:func:`untiled` says so in words). ``padding='same'`` is TensorFlow's: the output is
``ceil(W / S)`` and the total padding ``max((W' - 1) S + F - W, 0)`` is split with the smaller
half before. ``padding='causal'`` (Conv1D) puts all ``F - 1`` zeros before the sequence, so
output step t sees only inputs up to t.
"""
PADDINGS = ('valid', 'same', 'causal')


def _pair(value, name):
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
    return value


def _padding(size, span, stride, padding, op):
    """``(pad_before, pad_after)`` along one axis of known ``size``."""
    if padding == 'same':
        total = max((-(-size // stride) - 1) * stride + span - size, 0)
        return total // 2, total - total // 2
    if padding == 'causal':
        return span - 1, 0
    if padding == 'valid':
        return 0, 0
    if isinstance(padding, int) and padding >= 0:
        return padding, padding
    raise ValueError(f"{op}: padding must be one of {PADDINGS} or a non-negative int, got "
                     f"{padding!r}")


def window_length(size, k, stride, padding, dilation=1, op='conv2d'):
    """``(output_length, (pad_before, pad_after))`` for one spatial axis, floored.

    ``padding`` is 'valid', 'same', 'causal' or an int P of zeros on each side. An output
    shorter than one step is a ValueError showing the formula with the numbers filled in. An
    unknown input size (None, as in ``Input(shape=(None, None, 3))``) gives an unknown output
    size; its padding is known only once the size is.
    """
    span = dilation * (k - 1) + 1
    if size is None:
        return None, None
    pad = _padding(size, span, stride, padding, op)
    room = size - span + sum(pad)
    if room < 0:
        raise ValueError(
            f'{op}: the output size W\' = (W - F + 2P)/S + 1 = ({_filled(size, span, pad)})/'
            f'{stride} + 1 = {room / stride + 1:g} is less than 1: the window is larger than '
            f"its input; use a smaller filter or padding='same'")
    return room // stride + 1, pad


def _filled(size, span, pad):
    """``W - F + 2P`` with the numbers in (``P1 + P2`` when the two sides differ)."""
    total = f'{2 * pad[0]}' if pad[0] == pad[1] else f'{pad[0]} + {pad[1]}'
    return f'{size} - {span} + {total}'


def window_geometry(spatial, ksize, stride, padding, dilation=(1, 1), op='conv2d'):
    """Output shape (OH, OW) and ``pad=((top, bottom), (left, right))`` for an (H, W) input.

    ``padding`` applies to both axes, or is a (vertical, horizontal) pair.
    """
    ksize, stride, dilation = (_pair(v, n) for v, n in
                               ((ksize, 'kernel_size'), (stride, 'strides'),
                                (dilation, 'dilation_rate')))
    paddings = padding if isinstance(padding, tuple) else (padding, padding)
    sizes = [window_length(s, k, st, p, d, op)
             for s, k, st, p, d in zip(spatial, ksize, stride, paddings, dilation)]
    return tuple(o for o, _ in sizes), tuple(p for _, p in sizes), ksize, stride, dilation


def untiled(spatial, ksize, stride, padding, dilation, axes, op):
    """A sentence for each axis whose windows do not tile the input, else None.

    ``axes`` names the spatial axes ('rows', 'columns'; 'steps' for sequences). With
    'valid' or an int padding, ``(W - F + 2P) mod S`` trailing positions are never under a
    window (fewer if some of them are padding); the sentence gives the sizing formula with
    the numbers filled in and how many input rows are left out.
    """
    notes = []
    for size, k, s, d, name in zip(spatial, ksize, stride, dilation, axes):
        if size is None or padding in ('same', 'causal'):
            continue
        span = d * (k - 1) + 1
        pad = _padding(size, span, s, padding, op)
        room = size - span + sum(pad)
        unread = room % s - pad[1] if room >= 0 else 0
        if unread > 0:
            notes.append(f"W' = (W - F + 2P)/S + 1 = ({_filled(size, span, pad)})/{s} + 1 = "
                         f"{room / s + 1:g} is floored to {room // s + 1}: the last {unread} of "
                         f"the {size} {name} {'is' if unread == 1 else 'are'} never read")
    if not notes:
        return None
    return (f'{op}: the windows do not tile the input; ' + '; '.join(notes) +
            ". Change the input size, the stride or the filter size, or use padding='same'")


def transposed_length(size, k, stride, padding, output_padding=None, dilation=1):
    """The output length of a transposed convolution along one axis, as Keras sizes it.

    ``(W - 1) S + F - 2P + output_padding`` with ``P = F // 2`` for 'same' and 0 for 'valid';
    without ``output_padding``, ``W S`` ('same') or ``W S + max(F - S, 0)`` ('valid'). None
    (an unknown size) stays None.
    """
    span = dilation * (k - 1) + 1
    if size is None:
        return None
    if output_padding is None:
        return size * stride + (max(span - stride, 0) if padding == 'valid' else 0)
    pad = span // 2 if padding == 'same' else 0
    return (size - 1) * stride + span - 2 * pad + output_padding
