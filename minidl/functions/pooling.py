"""Pooling over windows (max, average) and over the whole map (global max, global average).

Max pooling keeps, for each output, the position of the winning input (``argmax``); backward
routes the gradient there and nowhere else. Windows are floored to fit, as in Keras;
``strides`` defaults to the pool size. The 1-D forms are the 2-D ones with height 1.
"""
from minidl.autograd import Function
from minidl.backends import kernels
from minidl.functions.geometry import window_geometry
from minidl.functions.reduce import mean
from minidl.functions.shape import reshape


class Pool2d(Function):
    """Shared set-up of the windowed poolings: checks the input and sizes the output."""

    def __init__(self, pool_size, strides=None, padding='valid', op='max_pool2d'):
        self.pool_size, self.strides, self.padding, self.op = pool_size, strides, padding, op

    def _setup(self, x):
        if x.ndim != 4:
            raise ValueError(f'{self.op}: expected input of shape (N, H, W, C), got '
                             f'{tuple(x.shape)}')
        strides = self.pool_size if self.strides is None else self.strides
        _, pad, ksize, stride, _ = window_geometry(x.shape[1:3], self.pool_size, strides,
                                                   self.padding, op=self.op)
        self.x_shape = x.shape
        self.geometry = dict(ksize=ksize, stride=stride, pad=pad)


class MaxPool2d(Pool2d):
    def forward(self, x):
        self._setup(x)
        y, self.argmax = kernels.maxpool2d_forward(x, **self.geometry)
        return y

    def backward(self, gy):
        return kernels.maxpool2d_backward(gy, self.argmax, self.x_shape, **self.geometry)


class AvgPool2d(Pool2d):
    """Average over each window; padded positions are not counted (TensorFlow's rule)."""

    def forward(self, x):
        self._setup(x)
        return kernels.avgpool2d_forward(x, **self.geometry)

    def backward(self, gy):
        return kernels.avgpool2d_backward(gy, self.x_shape, **self.geometry)


class GlobalMaxPool(Function):
    """(N, ..., C) -> (N, C): the largest value of each channel over all positions."""

    def forward(self, x):
        if x.ndim < 3:
            raise ValueError(f'global_max_pool: expected input (N, ..., C) with at least one '
                             f'spatial axis, got {tuple(x.shape)}')
        self.x_shape = x.shape
        y, self.argmax = kernels.global_maxpool_forward(x.reshape(x.shape[0], -1, x.shape[-1]))
        return y

    def backward(self, gy):
        length = 1
        for n in self.x_shape[1:-1]:
            length *= n
        return kernels.global_maxpool_backward(gy, self.argmax, length).reshape(self.x_shape)


def _as_2d(x, op, fn_2d):
    """Run a 2-D pooling on sequences (N, L, C) by viewing them as (N, 1, L, C)."""
    if x.ndim != 3:
        raise ValueError(f'{op}: expected input of shape (N, steps, C), got {tuple(x.shape)}')
    n, length, c = x.shape
    y = fn_2d(reshape(x, (n, 1, length, c)))
    return reshape(y, (n, y.shape[2], c))


def max_pool2d(x, pool_size=2, strides=None, padding='valid'):
    """Max over (ph, pw) windows of (N, H, W, C) -> (N, H', W', C)."""
    return MaxPool2d(pool_size, strides, padding)(x)


def avg_pool2d(x, pool_size=2, strides=None, padding='valid'):
    """Mean over (ph, pw) windows of (N, H, W, C) -> (N, H', W', C)."""
    return AvgPool2d(pool_size, strides, padding, op='avg_pool2d')(x)


def max_pool1d(x, pool_size=2, strides=None, padding='valid'):
    """Max over windows of sequences (N, L, C) -> (N, L', C)."""
    strides = pool_size if strides is None else strides
    return _as_2d(x, 'max_pool1d', lambda v: MaxPool2d((1, pool_size), (1, strides), padding,
                                                       op='max_pool1d')(v))


def avg_pool1d(x, pool_size=2, strides=None, padding='valid'):
    """Mean over windows of sequences (N, L, C) -> (N, L', C)."""
    strides = pool_size if strides is None else strides
    return _as_2d(x, 'avg_pool1d', lambda v: AvgPool2d((1, pool_size), (1, strides), padding,
                                                       op='avg_pool1d')(v))


def global_max_pool(x):
    """(N, H, W, C) or (N, L, C) -> (N, C), the maximum of each channel."""
    return GlobalMaxPool()(x)


def global_avg_pool(x):
    """(N, H, W, C) or (N, L, C) -> (N, C), the mean of each channel (a composition)."""
    return mean(x, axis=tuple(range(1, x.ndim - 1)))


global_max_pool2d = global_max_pool1d = global_max_pool
global_avg_pool2d = global_avg_pool1d = global_avg_pool
