"""Operations that move values without changing them: reshape, transpose, slicing, joining.

Each backward is the inverse movement of the gradient.
"""
import numpy as np

from minidl.autograd import Function, as_array
from minidl.backends import get_array_module
from minidl.functions.reduce import _inverse


class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(shape) if not isinstance(shape, int) else (shape,)

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f'reshape: cannot reshape a tensor of shape {tuple(x.shape)} '
                             f'({x.size} elements) into shape {self.shape}') from None

    def backward(self, gy):
        return gy.reshape(self.in_shape)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        self.axes = tuple(range(x.ndim))[::-1] if self.axes is None else tuple(self.axes)
        return x.transpose(self.axes)

    def backward(self, gy):
        return gy.transpose(_inverse(self.axes))


class GetItem(Function):
    """``x[index]`` for any NumPy index; repeated indices accumulate their gradients."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=self.dtype)
        if _is_basic(self.index):
            gx[self.index] = gy  # slices and ints pick each element at most once
        else:
            xp.add.at(gx, self.index, gy)
        return gx


def _is_basic(index):
    """Whether ``index`` is NumPy basic indexing (ints, slices, None, Ellipsis)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice)) or i is None or i is Ellipsis for i in items)


class Repeat(Function):
    """Each element ``repeats`` times in a row along ``axis`` (``numpy.repeat``); backward sums
    the gradient of each group of copies."""

    def __init__(self, repeats, axis):
        self.repeats, self.axis = repeats, axis

    def forward(self, x):
        self.axis %= x.ndim
        return x.repeat(self.repeats, axis=self.axis)

    def backward(self, gy):
        shape = gy.shape[:self.axis] + (-1, self.repeats) + gy.shape[self.axis + 1:]
        return gy.reshape(shape).sum(axis=self.axis + 1)


class Concatenate(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(*xs)
        try:
            y = xp.concatenate(xs, axis=self.axis)
        except ValueError:
            shapes = ', '.join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f'concatenate: shapes {shapes} do not match except along axis '
                             f'{self.axis}') from None
        self.splits = [x.shape[self.axis] for x in xs]
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        bounds = [sum(self.splits[:i + 1]) for i in range(len(self.splits) - 1)]
        return tuple(xp.split(gy, bounds, axis=self.axis))


class Pad(Function):
    """Constant padding; ``pad_width`` as in ``numpy.pad``."""

    def __init__(self, pad_width, value=0.0):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        self.width = np.broadcast_to(np.asarray(self.pad_width), (x.ndim, 2)).tolist()
        return get_array_module(x).pad(x, self.width, constant_values=self.value)

    def backward(self, gy):
        return gy[tuple(slice(lo, gy.shape[i] - hi) for i, (lo, hi) in enumerate(self.width))]


def reshape(x, shape): return Reshape(shape)(x)
def transpose(x, axes=None): return Transpose(axes)(x)
def getitem(x, index): return GetItem(index)(x)
def concatenate(xs, axis=0): return Concatenate(axis)(*xs)
def pad(x, pad_width, value=0.0): return Pad(pad_width, value)(x)
def repeat(x, repeats, axis): return Repeat(repeats, axis)(x)


def expand_dims(x, axis):
    """A new axis of size 1 at ``axis`` (negative counts from the end of the result)."""
    shape = as_array(x).shape
    axis = axis % (len(shape) + 1)
    return reshape(x, shape[:axis] + (1,) + shape[axis:])


def squeeze(x, axis):
    """Remove ``axis``, which must have size 1."""
    shape = as_array(x).shape
    if not -len(shape) <= axis < len(shape) or shape[axis] != 1:
        raise ValueError(f'squeeze: axis {axis} of a tensor of shape {tuple(shape)} is not '
                         f'of size 1')
    axis %= len(shape)
    return reshape(x, shape[:axis] + shape[axis + 1:])


def stack(xs, axis=0):
    """Join tensors of one shape along a new axis (expand each, then concatenate)."""
    return concatenate([expand_dims(x, axis) for x in xs], axis)


def flatten(x):
    """(N, d1, d2, ...) -> (N, d1*d2*...): keeps the batch axis, as Keras's Flatten does."""
    shape = as_array(x).shape
    return reshape(x, (shape[0], -1))


def resize_linear(x, axis, size):
    """Linear interpolation of ``x`` to ``size`` samples along ``axis``, with half-pixel
    centres as TensorFlow's and PyTorch's bilinear resize: output ``i`` reads the input at
    ``(i + 0.5) * n / size - 0.5``, clamped to the first and last samples, as the blend
    ``(1 - t) * x[lo] + t * x[lo + 1]`` (two gathers, so the backward is theirs)."""
    data = as_array(x)
    axis %= data.ndim
    n = data.shape[axis]
    source = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(source).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    xp = get_array_module(data)
    t = xp.asarray((source - lo).astype(data.dtype)).reshape(
        (-1,) + (1,) * (data.ndim - axis - 1))
    before = (slice(None),) * axis
    return getitem(x, before + (xp.asarray(lo),)) * (1 - t) + \
        getitem(x, before + (xp.asarray(hi),)) * t
