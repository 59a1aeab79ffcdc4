"""Pooling layers: windowed max/average (2-D and 1-D) and global max/average."""
import minidl.functions as F
from minidl.functions.geometry import window_geometry
from minidl.layers import arguments
from minidl.layers.base import Layer


class Pooling2D(Layer):
    """Shared by MaxPooling2D and AveragePooling2D: ``strides`` defaults to ``pool_size``,
    the output is floored, ``W' = floor((W - F + 2P)/S) + 1``."""

    expected_ndim = 4
    pool = staticmethod(F.max_pool2d)

    def __init__(self, pool_size=2, strides=None, padding='valid', **kwargs):
        super().__init__(**kwargs)
        self.pool_size = arguments.int_tuple(self, 'pool_size', pool_size, 2)
        self.strides = (self.pool_size if strides is None else
                        arguments.int_tuple(self, 'strides', strides, 2))
        self.padding = arguments.padding_mode(self, padding)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        (oh, ow), *_ = window_geometry((h, w), self.pool_size, self.strides, self.padding,
                                       op=f'{self.name} ({type(self).__name__})')
        return (n, oh, ow, c)

    def call(self, x, training=False):
        return self.pool(x, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), 'pool_size': list(self.pool_size),
                'strides': list(self.strides), 'padding': self.padding}


class MaxPooling2D(Pooling2D):
    pool = staticmethod(F.max_pool2d)


class AveragePooling2D(Pooling2D):
    pool = staticmethod(F.avg_pool2d)


class Pooling1D(Layer):
    """Shared by MaxPooling1D and AveragePooling1D on sequences (N, steps, C)."""

    expected_ndim = 3
    pool = staticmethod(F.max_pool1d)

    def __init__(self, pool_size=2, strides=None, padding='valid', **kwargs):
        super().__init__(**kwargs)
        self.pool_size = arguments.int_tuple(self, 'pool_size', pool_size, 1)[0]
        self.strides = (self.pool_size if strides is None else
                        arguments.int_tuple(self, 'strides', strides, 1)[0])
        self.padding = arguments.padding_mode(self, padding)

    def compute_output_shape(self, input_shape):
        n, steps, c = input_shape
        (_, length), *_ = window_geometry((1, steps), (1, self.pool_size), (1, self.strides),
                                          self.padding, op=f'{self.name} ({type(self).__name__})')
        return (n, length, c)

    def call(self, x, training=False):
        return self.pool(x, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), 'pool_size': self.pool_size, 'strides': self.strides,
                'padding': self.padding}


class MaxPooling1D(Pooling1D):
    pool = staticmethod(F.max_pool1d)


class AveragePooling1D(Pooling1D):
    pool = staticmethod(F.avg_pool1d)


class GlobalPooling(Layer):
    """(N, ..., C) -> (N, C): one number per channel, the max or the mean over positions."""

    pool = staticmethod(F.global_max_pool)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def call(self, x, training=False):
        return self.pool(x)


class GlobalMaxPooling2D(GlobalPooling):
    expected_ndim = 4


class GlobalMaxPooling1D(GlobalPooling):
    expected_ndim = 3


class GlobalAveragePooling2D(GlobalPooling):
    expected_ndim = 4
    pool = staticmethod(F.global_avg_pool)


class GlobalAveragePooling1D(GlobalPooling):
    expected_ndim = 3
    pool = staticmethod(F.global_avg_pool)
