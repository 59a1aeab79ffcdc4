"""Conv2D and Conv1D on channels-last inputs."""
import minidl.functions as F
from minidl.functions.geometry import window_geometry
from minidl.layers import arguments
from minidl.layers.core import Activated
# Keras 2.0 also exported the pooling layers from keras.layers.convolutional, and lessons
# import MaxPooling2D from there.
from minidl.layers.pooling import (AveragePooling1D, AveragePooling2D,  # noqa: F401
                                   MaxPooling1D, MaxPooling2D)


class Conv2D(Activated):
    """``activation(conv2d(x, kernel) + bias)``; kernel (kh, kw, C, filters), input (N, H, W, C).

    Output size per axis: ``W' = (W - F + 2P)/S + 1`` ('valid': P = 0; 'same': ``ceil(W/S)``).
    """

    expected_ndim = 4
    rank = 2  # spatial axes of the arguments; Conv1D's are stored as (1, k)

    def __init__(self, filters, kernel_size, strides=1, padding='valid', dilation_rate=1,
                 activation=None, **kwargs):
        super().__init__(activation, **kwargs)
        self.filters = arguments.count(self, 'filters', filters)
        self.kernel_size = self._spatial('kernel_size', kernel_size)
        self.strides = self._spatial('strides', strides)
        self.dilation_rate = self._spatial('dilation_rate', dilation_rate)
        self.padding = arguments.padding_mode(self, padding)

    def _spatial(self, name, value):
        """A checked int-or-tuple argument as a (height, width) pair."""
        return (1,) * (2 - self.rank) + arguments.int_tuple(self, name, value, self.rank)

    def build(self, input_shape):
        self.add_kernel_and_bias(self.kernel_size + (input_shape[-1], self.filters))

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        if self.built and input_shape[-1] != self.kernel.shape[-2]:
            raise ValueError(f'{self.name} ({type(self).__name__}) expects '
                             f'{self.kernel.shape[-2]} input channels, got input shape '
                             f'{input_shape}')

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        (oh, ow), *_ = window_geometry((h, w), self.kernel_size, self.strides, self.padding,
                                       self.dilation_rate, exact=True,
                                       op=f'{self.name} ({type(self).__name__})')
        return (n, oh, ow, self.filters)

    def linear(self, x):
        return F.conv2d(x, self.kernel, None, self.strides, self.padding, self.dilation_rate)

    def multiplications(self):
        kh, kw, cin, cout = self.kernel.shape
        _, oh, ow, _ = self.output_shape
        return None if None in (oh, ow) else kh * kw * cin * oh * ow * cout

    def get_config(self):
        return {**super().get_config(), 'filters': self.filters,
                'kernel_size': list(self.kernel_size), 'strides': list(self.strides),
                'padding': self.padding, 'dilation_rate': list(self.dilation_rate)}


class Conv1D(Conv2D):
    """Conv2D with height 1 on sequences (N, steps, C); kernel (k, C, filters)."""

    expected_ndim = 3
    rank = 1

    def build(self, input_shape):
        self.add_kernel_and_bias(self.kernel_size[1:] + (input_shape[-1], self.filters))

    def compute_output_shape(self, input_shape):
        n, steps, c = input_shape
        _, _, length, filters = super().compute_output_shape((n, 1, steps, c))
        return (n, length, filters)

    def linear(self, x):
        return F.conv1d(x, self.kernel, None, self.strides[1], self.padding,
                        self.dilation_rate[1])

    def multiplications(self):
        k, cin, cout = self.kernel.shape
        steps = self.output_shape[1]
        return None if steps is None else k * cin * steps * cout

    def get_config(self):
        config = super().get_config()
        for key in ('kernel_size', 'strides', 'dilation_rate'):
            config[key] = config[key][1:]
        return config
