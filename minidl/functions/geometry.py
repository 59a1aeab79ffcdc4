"""Sizes of sliding windows: output length and padding for convolution and pooling.

The lessons' sizing formula ``W' = (W - F + 2P)/S + 1`` is applied per spatial axis, with the
effective filter size ``F = dilation * (k - 1) + 1``. ``padding='same'`` is TensorFlow's: the
output is ``ceil(W / S)`` and the total padding ``max((W' - 1) S + F - W, 0)`` is split with
the smaller half before.
"""


def _pair(value, name):
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
    return value


def window_length(size, k, stride, padding, dilation=1, exact=False, op='conv2d'):
    """``(output_length, (pad_before, pad_after))`` for one spatial axis.

    ``padding`` is 'valid', 'same' or an int P of zeros on each side. ``exact`` demands that
    the window tiles the input exactly, as the sizing formula of the lessons does; otherwise
    the output is floored (pooling). A size that is not a positive integer is a ValueError
    showing the formula with the numbers filled in. An unknown input size (None, as in
    ``Input(shape=(None, None, 3))``) gives an unknown output size; its padding is known only
    once the size is.
    """
    span = dilation * (k - 1) + 1
    if size is None:
        return None, None
    if padding == 'same':
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return out, (total // 2, total - total // 2)
    if padding == 'valid':
        pad = 0
    elif isinstance(padding, int) and padding >= 0:
        pad = padding
    else:
        raise ValueError(f"{op}: padding must be 'valid', 'same' or a non-negative int, "
                         f"got {padding!r}")
    room = size - span + 2 * pad
    out = room // stride + 1
    if out < 1 or (exact and room % stride):
        raise ValueError(
            f'{op}: the output size W\' = (W - F + 2P)/S + 1 = ({size} - {span} + {2 * pad})/'
            f'{stride} + 1 = {room / stride + 1:g} is not a positive integer; change the '
            f"stride or the filter size, or use padding='same'")
    return out, (pad, pad)


def window_geometry(spatial, ksize, stride, padding, dilation=(1, 1), exact=False,
                    op='conv2d'):
    """Output shape (OH, OW) and ``pad=((top, bottom), (left, right))`` for an (H, W) input.

    ``padding`` applies to both axes, or is a (vertical, horizontal) pair.
    """
    ksize, stride, dilation = (_pair(v, n) for v, n in
                               ((ksize, 'kernel_size'), (stride, 'strides'),
                                (dilation, 'dilation_rate')))
    paddings = padding if isinstance(padding, tuple) else (padding, padding)
    sizes = [window_length(s, k, st, p, d, exact, op)
             for s, k, st, p, d in zip(spatial, ksize, stride, paddings, dilation)]
    return tuple(o for o, _ in sizes), tuple(p for _, p in sizes), ksize, stride, dilation
