"""Reductions: sum, mean, max and min over any axes, with ``keepdims`` as in NumPy."""
from minidl.autograd import Function, as_array
from minidl.backends import get_array_module
from minidl.functions.math import neg


def normalize_axes(axis, ndim):
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of positive ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    size = ndim or 1  # a 0-d tensor accepts axis 0 and -1, as NumPy does
    for a in axes:
        if not -size <= a < size:
            raise ValueError(f'axis {a} is out of range for a tensor with {ndim} dimensions')
    return tuple(sorted(a % size for a in axes))


def _expand(grad, shape, axes):
    """Reinsert the reduced ``axes`` (as size 1) into ``grad`` and broadcast to ``shape``."""
    xp = get_array_module(grad)
    kept = [1 if i in axes else n for i, n in enumerate(shape)]
    return xp.broadcast_to(grad.reshape(kept), shape)


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape, self.axes = x.shape, normalize_axes(self.axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        return _expand(gy, self.shape, self.axes).copy()


class Max(Function):
    """Maximum over ``axis``; the gradient goes to the first maximal element only.

    Choosing one winner (as ``argmax`` does) keeps the gradient deterministic on ties, which
    is what max pooling does too.
    """

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = get_array_module(x)
        self.shape, self.axes = x.shape, normalize_axes(self.axis, x.ndim)
        rest = [i for i in range(x.ndim) if i not in self.axes]
        self.perm = rest + list(self.axes)
        moved = x.transpose(self.perm)
        flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
        self.argmax = flat.argmax(axis=-1)
        y = xp.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]
        if self.keepdims:
            y = y.reshape([1 if i in self.axes else n for i, n in enumerate(self.shape)])
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        rest_shape = tuple(self.shape[i] for i in self.perm[:len(self.perm) - len(self.axes)])
        window = 1
        for a in self.axes:
            window *= self.shape[a]
        flat = xp.zeros(rest_shape + (window,), dtype=gy.dtype)
        xp.put_along_axis(flat, self.argmax[..., None], gy.reshape(rest_shape)[..., None],
                          axis=-1)
        moved = flat.reshape(tuple(self.shape[i] for i in self.perm))
        return moved.transpose(_inverse(self.perm))


def _inverse(perm):
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return inverse


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the NumPy name
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    """Sum divided by the number of reduced elements (a composition, no backward of its own)."""
    data = as_array(x)
    count = 1
    for a in normalize_axes(axis, data.ndim):
        count *= data.shape[a]
    return Sum(axis, keepdims)(x) / count


def max(x, axis=None, keepdims=False):  # noqa: A001
    return Max(axis, keepdims)(x)


def min(x, axis=None, keepdims=False):  # noqa: A001
    """``-max(-x)``: the gradient goes to the first minimal element, as max's does."""
    return neg(Max(axis, keepdims)(neg(x)))
