"""Pooling layers: windowed max/average (2-D and 1-D) and global max/average. Each takes
Keras's ``data_format``; 'channels_first' inputs are transposed to channels-last and back."""
import minidl.functions as F
from minidl.functions.geometry import window_geometry
from minidl.layers import arguments
from minidl.layers.base import ChannelsLast, Layer, SymbolicTensor
from minidl.layers.embedding import mask_source


class Pooling2D(ChannelsLast, Layer):
    """Shared by MaxPooling2D and AveragePooling2D: ``strides`` defaults to ``pool_size``,
    the output is floored, ``W' = floor((W - F + 2P)/S) + 1``."""

    expected_ndim = 4
    pool = staticmethod(F.max_pool2d)

    def __init__(self, pool_size=2, strides=None, padding='valid', data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.data_format = arguments.data_format(self, data_format)
        self.pool_size = arguments.int_tuple(self, 'pool_size', pool_size, 2)
        self.strides = (self.pool_size if strides is None else
                        arguments.int_tuple(self, 'strides', strides, 2))
        self.padding = arguments.padding_mode(self, padding)

    def shape_last(self, input_shape):
        n, h, w, c = input_shape
        (oh, ow), *_ = window_geometry((h, w), self.pool_size, self.strides, self.padding,
                                       op=f'{self.name} ({type(self).__name__})')
        return (n, oh, ow, c)

    def call_last(self, x, training=False):
        return self.pool(x, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), 'pool_size': list(self.pool_size),
                'strides': list(self.strides), 'padding': self.padding,
                'data_format': self.data_format}


class MaxPooling2D(Pooling2D):
    pool = staticmethod(F.max_pool2d)


class AveragePooling2D(Pooling2D):
    pool = staticmethod(F.avg_pool2d)


class Pooling1D(ChannelsLast, Layer):
    """Shared by MaxPooling1D and AveragePooling1D on sequences (N, steps, C)."""

    expected_ndim = 3
    pool = staticmethod(F.max_pool1d)

    def __init__(self, pool_size=2, strides=None, padding='valid', data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.data_format = arguments.data_format(self, data_format)
        self.pool_size = arguments.int_tuple(self, 'pool_size', pool_size, 1)[0]
        self.strides = (self.pool_size if strides is None else
                        arguments.int_tuple(self, 'strides', strides, 1)[0])
        self.padding = arguments.padding_mode(self, padding)

    def shape_last(self, input_shape):
        n, steps, c = input_shape
        (_, length), *_ = window_geometry((1, steps), (1, self.pool_size), (1, self.strides),
                                          self.padding, op=f'{self.name} ({type(self).__name__})')
        return (n, length, c)

    def call_last(self, x, training=False):
        return self.pool(x, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), 'pool_size': self.pool_size, 'strides': self.strides,
                'padding': self.padding, 'data_format': self.data_format}


class MaxPooling1D(Pooling1D):
    pool = staticmethod(F.max_pool1d)


class AveragePooling1D(Pooling1D):
    pool = staticmethod(F.avg_pool1d)


class GlobalPooling(ChannelsLast, Layer):
    """(N, ..., C) -> (N, C): one number per channel, the max or the mean over positions;
    with ``keepdims`` the positions stay as axes of size 1, (N, 1, 1, C)."""

    pool = staticmethod(F.global_max_pool)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = arguments.data_format(self, data_format)
        self.keepdims = bool(keepdims)

    def shape_last(self, input_shape):
        kept = (1,) * (len(input_shape) - 2) if self.keepdims else ()
        return (input_shape[0],) + kept + (input_shape[-1],)

    def call_last(self, x, training=False):
        y = self.pool(x)
        return F.reshape(y, self.shape_last(x.shape)) if self.keepdims else y

    def get_config(self):
        return {**super().get_config(), 'data_format': self.data_format,
                'keepdims': self.keepdims}


class GlobalMaxPooling2D(GlobalPooling):
    expected_ndim = 4


class GlobalMaxPooling1D(GlobalPooling):
    expected_ndim = 3


class GlobalAveragePooling2D(GlobalPooling):
    expected_ndim = 4
    pool = staticmethod(F.global_avg_pool)


class GlobalAveragePooling1D(GlobalPooling):
    """The mean over steps. Keras averages only the steps an ``Embedding(mask_zero=True)``
    marks as real; minidl has no masks, so that graph is refused rather than averaged over the
    padding too."""

    expected_ndim = 3
    pool = staticmethod(F.global_avg_pool)

    def __call__(self, x, training=None):
        source = mask_source(x) if isinstance(x, SymbolicTensor) else None
        if source is not None:
            raise ValueError(
                f'{self.name} (GlobalAveragePooling1D): its input carries the mask of '
                f'{source.name} (Embedding with mask_zero=True), with which Keras averages the '
                f'non-padding steps only; minidl does not propagate masks. Use mask_zero=False '
                f'(the mean then counts padding steps too) or GlobalMaxPooling1D (where Keras '
                f'ignores the mask)')
        return super().__call__(x, training)
