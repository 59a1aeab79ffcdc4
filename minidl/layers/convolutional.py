"""The convolution layers: Conv1D/2D (with ``groups``), DepthwiseConv2D, SeparableConv1D/2D
and Conv1DTranspose/2DTranspose.

They compute on channels-last tensors, (N, H, W, C) or (N, steps, C); with
``data_format='channels_first'`` the input is transposed to that layout and the output back.
Kernels are stored as Keras stores them, so Keras's weight lists load unchanged. A 'valid'
window that does not tile its input is floored as in Keras, and the layer warns once with the
sizing formula filled in.
"""
import math
import warnings

import minidl.functions as F
from minidl import constraints, regularizers
from minidl.functions.geometry import transposed_length, untiled, window_geometry
from minidl.layers import arguments
from minidl.layers.base import format_shape
from minidl.layers.core import Activated, _name
# Keras 2.0 also exported the pooling layers from keras.layers.convolutional, and lessons
# import MaxPooling2D from there.
from minidl.layers.pooling import (AveragePooling1D, AveragePooling2D,  # noqa: F401
                                   MaxPooling1D, MaxPooling2D)

DATA_FORMATS = ('channels_last', 'channels_first')


class Conv(Activated):
    """What the convolution layers share: the spatial arguments (stored as (height, width)
    pairs; a 1-D layer's height is 1), padding, ``data_format``, the fused bias and activation,
    the output size ``W' = floor((W - F + 2P)/S) + 1`` and the summary's counts.

    Subclasses give ``kernel_shapes(channels)`` (Keras's weight names and shapes, in Keras's
    order), ``output_channels(channels)`` and ``linear(x)`` on channels-last tensors.
    """

    expected_ndim = 4
    rank = 2
    paddings = ('valid', 'same')
    axes = ('rows', 'columns')  # how the untiled warning names the spatial axes

    def __init__(self, kernel_size, strides=1, padding='valid', data_format=None,
                 dilation_rate=1, activation=None, **kwargs):
        super().__init__(activation, **kwargs)
        self.kernel_size = self._spatial('kernel_size', kernel_size)
        self.strides = self._spatial('strides', strides)
        self.dilation_rate = self._spatial('dilation_rate', dilation_rate)
        self.padding = arguments.padding_mode(self, padding, self.paddings)
        data_format = 'channels_last' if data_format is None else data_format
        self.data_format = data_format.lower() if isinstance(data_format, str) else data_format
        if self.data_format not in DATA_FORMATS:
            raise ValueError(f'{self.name} ({type(self).__name__}): data_format must be one of '
                             f'{DATA_FORMATS}, got {data_format!r}')
        self.warned = False

    def _spatial(self, name, value):
        """A checked int-or-tuple argument as a (height, width) pair."""
        return (1,) * (2 - self.rank) + arguments.int_tuple(self, name, value, self.rank)

    def _keras_tuple(self, pair):
        return list(pair[2 - self.rank:])

    # --- channels_first: the same computation between two transposes ----------------------
    def _last(self, shape):
        """``shape`` in channels-last order."""
        shape = tuple(shape)
        if self.data_format == 'channels_first':
            return (shape[0],) + shape[2:] + (shape[1],)
        return shape

    def _restore(self, shape):
        """A channels-last ``shape`` in this layer's data_format."""
        if self.data_format == 'channels_first':
            return (shape[0], shape[-1]) + tuple(shape[1:-1])
        return tuple(shape)

    def _channels_last(self, compute, x):
        if self.data_format == 'channels_last':
            return compute(x)
        last = (0,) + tuple(range(2, x.ndim)) + (1,)
        y = compute(F.transpose(x, last))
        return F.transpose(y, (0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))

    def call(self, x, training=False):
        return self._channels_last(lambda t: super(Conv, self).call(t, training), x)

    def call_logits(self, x, training=False):
        return self._channels_last(lambda t: super(Conv, self).call_logits(t, training), x)

    # --- weights and shapes ---------------------------------------------------------------
    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        if self._last(input_shape)[-1] is None:
            raise ValueError(f'{self.name} ({type(self).__name__}) needs a known number of '
                             f'channels, got input shape {format_shape(input_shape)}')

    def build(self, input_shape):
        channels = self._last(input_shape)[-1]
        for name, shape in self.kernel_shapes(channels).items():
            prefix = name[:-len('_kernel')] if name.endswith('_kernel') else name
            setattr(self, name, self.add_weight(
                name, shape, getattr(self, f'{prefix}_initializer'),
                constraint=getattr(self, f'{prefix}_constraint'),
                regularizer=getattr(self, f'{prefix}_regularizer')))
        if self.use_bias:
            self.bias = self.add_weight('bias', (self.output_channels(channels),),
                                        self.bias_initializer, constraint=self.bias_constraint,
                                        regularizer=self.bias_regularizer)

    def compute_output_shape(self, input_shape):
        shape = self._last(input_shape)
        spatial = (1,) * (2 - self.rank) + tuple(shape[1:-1])
        out = self.output_spatial(spatial)[2 - self.rank:]
        return self._restore((shape[0],) + out + (self.output_channels(shape[-1]),))

    def output_spatial(self, spatial):
        """(H', W') for an (H, W) input; warns, once per layer, of windows that do not tile."""
        op = f'{self.name} ({type(self).__name__})'
        geometry = (self.kernel_size, self.strides, self.padding, self.dilation_rate)
        out, *_ = window_geometry(spatial, *geometry, op=op)
        note = None if self.warned else untiled(spatial, *geometry, self.axes, op)
        if note:
            warnings.warn(note, stacklevel=6)  # the line that called the layer
            self.warned = True
        return out

    def positions(self):
        """The spatial positions whose windows each cost ``kernel sizes`` multiplications."""
        return self._last(self.output_shape)[1:-1]

    def multiplications(self):
        positions = self.positions()
        if None in positions:
            return None
        kernels = self.kernel_shapes(self._last(self.input_shape)[-1]).values()
        return math.prod(positions) * sum(math.prod(shape) for shape in kernels)

    def get_config(self):
        return {**super().get_config(), 'kernel_size': self._keras_tuple(self.kernel_size),
                'strides': self._keras_tuple(self.strides), 'padding': self.padding,
                'data_format': self.data_format,
                'dilation_rate': self._keras_tuple(self.dilation_rate)}


class Conv2D(Conv):
    """``activation(conv2d(x, kernel) + bias)``; kernel (kh, kw, C/groups, filters), input
    (N, H, W, C). With ``groups`` g, each of g slices of C/g channels makes filters/g outputs.

    Output size per axis: ``W' = floor((W - F + 2P)/S) + 1`` ('valid': P = 0; 'same':
    ``ceil(W/S)``).
    """

    def __init__(self, filters, kernel_size, strides=1, padding='valid', data_format=None,
                 dilation_rate=1, groups=1, activation=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         **kwargs)
        self.filters = arguments.count(self, 'filters', filters)
        self.groups = arguments.count(self, 'groups', groups)
        if self.filters % self.groups:
            raise ValueError(f'{self.name} ({type(self).__name__}): filters={self.filters} '
                             f'cannot be split into groups={self.groups}')

    def kernel_shapes(self, channels):
        if channels % self.groups:
            raise ValueError(f'{self.name} ({type(self).__name__}): {channels} input channels '
                             f'cannot be split into groups={self.groups}')
        return {'kernel': self.kernel_size[2 - self.rank:] +
                (channels // self.groups, self.filters)}

    def output_channels(self, channels):
        return self.filters

    def linear(self, x):
        return F.conv2d(x, self.kernel, None, self.strides, self.padding, self.dilation_rate,
                        self.groups)

    def get_config(self):
        return {**super().get_config(), 'filters': self.filters, 'groups': self.groups}


class Conv1D(Conv2D):
    """Conv2D with height 1 on sequences (N, steps, C); kernel (k, C/groups, filters).
    ``padding='causal'`` puts all ``dilation*(k-1)`` zeros before the sequence."""

    expected_ndim = 3
    rank = 1
    paddings = ('valid', 'same', 'causal')
    axes = ('rows', 'steps')

    def linear(self, x):
        return F.conv1d(x, self.kernel, None, self.strides[1], self.padding,
                        self.dilation_rate[1], self.groups)


class DepthwiseConv2D(Conv):
    """Each input channel convolved alone with ``depth_multiplier`` kernels: (N, H, W, C) ->
    (N, H', W', C*depth_multiplier); depthwise_kernel (kh, kw, C, depth_multiplier), output
    channel ``c*depth_multiplier + m``. MobileNet's spatial filtering, at 1/C of Conv2D's cost.
    """

    def __init__(self, kernel_size, strides=1, padding='valid', depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer='glorot_uniform', bias_initializer='zeros',
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, name=None, trainable=True,
                 input_shape=None, batch_input_shape=None, dtype='float32'):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias=use_bias, bias_initializer=bias_initializer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         bias_constraint=bias_constraint, name=name, trainable=trainable,
                         input_shape=input_shape, batch_input_shape=batch_input_shape,
                         dtype=dtype)
        self.depth_multiplier = arguments.count(self, 'depth_multiplier', depth_multiplier)
        self.depthwise_initializer = depthwise_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def kernel_shapes(self, channels):
        return {'depthwise_kernel': self.kernel_size + (channels, self.depth_multiplier)}

    def output_channels(self, channels):
        return None if channels is None else channels * self.depth_multiplier

    def linear(self, x):
        return F.depthwise_conv2d(x, self.depthwise_kernel, None, self.strides, self.padding,
                                  self.dilation_rate)

    def get_config(self):
        return {**_kernel_settings(super().get_config(), self, ('depthwise',)),
                'depth_multiplier': self.depth_multiplier}


class SeparableConv2D(Conv):
    """A depthwise convolution (depthwise_kernel (kh, kw, C, depth_multiplier)) followed by a
    pointwise one (pointwise_kernel (1, 1, C*depth_multiplier, filters)), then the bias:
    (N, H, W, C) -> (N, H', W', filters). Stride, padding and dilation are the depthwise step's.
    """

    def __init__(self, filters, kernel_size, strides=1, padding='valid', data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer='glorot_uniform', pointwise_initializer='glorot_uniform',
                 bias_initializer='zeros', depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 name=None, trainable=True, input_shape=None, batch_input_shape=None,
                 dtype='float32'):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias=use_bias, bias_initializer=bias_initializer,
                         bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer,
                         bias_constraint=bias_constraint, name=name, trainable=trainable,
                         input_shape=input_shape, batch_input_shape=batch_input_shape,
                         dtype=dtype)
        self.filters = arguments.count(self, 'filters', filters)
        self.depth_multiplier = arguments.count(self, 'depth_multiplier', depth_multiplier)
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def kernel_shapes(self, channels):
        middle = channels * self.depth_multiplier
        return {'depthwise_kernel': self.kernel_size[2 - self.rank:] +
                (channels, self.depth_multiplier),
                'pointwise_kernel': (1,) * self.rank + (middle, self.filters)}

    def output_channels(self, channels):
        return self.filters

    def linear(self, x):
        return F.separable_conv2d(x, self.depthwise_kernel, self.pointwise_kernel, None,
                                  self.strides, self.padding, self.dilation_rate)

    def get_config(self):
        return {**_kernel_settings(super().get_config(), self, ('depthwise', 'pointwise')),
                'filters': self.filters, 'depth_multiplier': self.depth_multiplier}


class SeparableConv1D(SeparableConv2D):
    """SeparableConv2D on sequences (N, steps, C): depthwise_kernel (k, C, depth_multiplier),
    pointwise_kernel (1, C*depth_multiplier, filters)."""

    expected_ndim = 3
    rank = 1
    paddings = ('valid', 'same', 'causal')
    axes = ('rows', 'steps')

    def linear(self, x):
        return F.separable_conv1d(x, self.depthwise_kernel, self.pointwise_kernel, None,
                                  self.strides[1], self.padding, self.dilation_rate[1])


class Conv2DTranspose(Conv):
    """The transposed convolution ("deconvolution") that upsamples by its strides: kernel
    (kh, kw, filters, C) as Keras stores it, (N, H, W, C) -> (N, H', W', filters) with
    ``H' = (H - 1) S + F - 2P + output_padding`` (see :func:`F.conv2d_transpose`). It is the
    input gradient of a Conv2D with the same kernel, strides and padding.
    """

    def __init__(self, filters, kernel_size, strides=1, padding='valid', output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         **kwargs)
        self.filters = arguments.count(self, 'filters', filters)
        self.output_padding = None if output_padding is None else self._spatial_padding(
            output_padding)

    def _spatial_padding(self, value):
        extra = (0,) * (2 - self.rank) + arguments.int_tuple(self, 'output_padding', value,
                                                             self.rank, minimum=0)
        if any(e >= s for e, s in zip(extra, self.strides)):
            raise ValueError(f'{self.name} ({type(self).__name__}): output_padding '
                             f'{value!r} must be smaller than the strides '
                             f'{self._keras_tuple(self.strides)}')
        return extra

    def kernel_shapes(self, channels):
        return {'kernel': self.kernel_size[2 - self.rank:] + (self.filters, channels)}

    def output_channels(self, channels):
        return self.filters

    def output_spatial(self, spatial):
        extra = self.output_padding or (None, None)
        return tuple(transposed_length(*axis) for axis in zip(
            spatial, self.kernel_size, self.strides, (self.padding,) * 2, extra,
            self.dilation_rate))

    def positions(self):
        """Every input position spreads its window: kernel-size multiplications each."""
        return self._last(self.input_shape)[1:-1]

    def linear(self, x):
        return F.conv2d_transpose(x, self.kernel, None, self.strides, self.padding,
                                  self.output_padding, self.dilation_rate)

    def get_config(self):
        extra = None if self.output_padding is None else self._keras_tuple(self.output_padding)
        return {**super().get_config(), 'filters': self.filters, 'output_padding': extra}


class Conv1DTranspose(Conv2DTranspose):
    """Conv2DTranspose on sequences (N, steps, C); kernel (k, filters, C)."""

    expected_ndim = 3
    rank = 1

    def linear(self, x):
        extra = None if self.output_padding is None else self.output_padding[1]
        return F.conv1d_transpose(x, self.kernel, None, self.strides[1], self.padding, extra,
                                  self.dilation_rate[1])


def _kernel_settings(config, layer, prefixes):
    """A config without the settings of one ``kernel`` (what Activated writes), with those of
    the kernels named by ``prefixes`` instead (``depthwise_initializer``, ...), as Keras names
    them."""
    config = {k: v for k, v in config.items()
              if k not in ('kernel_initializer', 'kernel_regularizer', 'kernel_constraint')}
    for prefix in prefixes:
        config[f'{prefix}_initializer'] = _name(getattr(layer, f'{prefix}_initializer'))
        config[f'{prefix}_regularizer'] = regularizers.serialize(
            getattr(layer, f'{prefix}_regularizer'))
        config[f'{prefix}_constraint'] = constraints.serialize(
            getattr(layer, f'{prefix}_constraint'))
    return config
