"""Layers that only move values (Keras 3's ``layers/reshaping``): Flatten, Reshape, Permute,
RepeatVector, ZeroPadding1D/2D, Cropping1D/2D and UpSampling1D/2D. Their backward is the
inverse movement, so each is a composition of the shape functions."""
import numpy as np

import minidl.functions as F
from minidl.layers import arguments
from minidl.layers.base import ChannelsLast, Layer, format_shape


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def call(self, x, training=False):
        return F.flatten(x)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else int(np.prod(rest)))


class Reshape(Layer):
    """Reshape each example to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = arguments.target_shape(self, target_shape)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape[1:]))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if (-1 in self.target_shape and size % known) or \
                (-1 not in self.target_shape and size != known):
            raise ValueError(f'{self.name} (Reshape): cannot reshape {format_shape(input_shape)} '
                             f'into (None, {str(self.target_shape)[1:]}')
        return (input_shape[0],) + tuple(size // known if d == -1 else d
                                         for d in self.target_shape)

    def call(self, x, training=False):
        return F.reshape(x, (x.shape[0],) + self.target_shape)

    def get_config(self):
        return {**super().get_config(), 'target_shape': list(self.target_shape)}


class Permute(Layer):
    """Reorder the axes of each example: ``dims`` numbers them from 1 (the batch axis stays
    first), so ``Permute((2, 1))`` turns (N, steps, C) into (N, C, steps)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else None
        if dims is None or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f'{self.name} (Permute): dims must be a permutation of 1..rank-1, '
                             f'got {dims!r}')
        self.dims = tuple(int(d) for d in dims)

    def check_input_shape(self, input_shape):
        if len(input_shape) != len(self.dims) + 1:
            raise ValueError(f'{self.name} (Permute): dims {self.dims} reorder {len(self.dims)} '
                             f'axes, the input {format_shape(input_shape)} has '
                             f'{len(input_shape) - 1}')
        super().check_input_shape(input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def call(self, x, training=False):
        return F.transpose(x, (0,) + self.dims)

    def get_config(self):
        return {**super().get_config(), 'dims': list(self.dims)}


class RepeatVector(Layer):
    """(N, features) -> (N, n, features): the vector repeated ``n`` times."""

    expected_ndim = 2

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = arguments.count(self, 'n', n)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def call(self, x, training=False):
        return F.repeat(F.expand_dims(x, 1), self.n, axis=1)

    def get_config(self):
        return {**super().get_config(), 'n': self.n}


def _pairs(layer, name, value, n):
    """``(before, after)`` for each of ``n`` spatial axes from Keras's spellings: an int (all
    sides), ``n`` ints (both sides of each axis; for n=1 the pair itself) or ``n`` pairs."""
    nested = isinstance(value, (tuple, list)) and len(value) == n and all(
        isinstance(p, (tuple, list)) for p in value)
    if n == 1 and not nested and isinstance(value, (tuple, list)):
        value, nested = [value], True
    pairs = value if nested else [(p, p) for p in arguments.int_tuple(
        layer, name, value, n, minimum=0)]
    return tuple(arguments.int_tuple(layer, name, p, 2, minimum=0) for p in pairs)


class Spatial(ChannelsLast, Layer):
    """Shared by the padding, cropping and upsampling layers: ``n`` spatial axes between the
    batch and the channels, ``data_format`` as Keras's."""

    spatial = 2
    writes_data_format = True  # tf-keras's 1-D layers have no data_format: written if not last

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = arguments.data_format(self, data_format)

    @property
    def expected_ndim(self):
        return self.spatial + 2

    def shape_last(self, input_shape):
        return (input_shape[0],) + tuple(
            None if d is None else self.resized(d, i)
            for i, d in enumerate(input_shape[1:-1])) + (input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        if self.writes_data_format or self.data_format != 'channels_last':
            config['data_format'] = self.data_format
        return config


class ZeroPadding(Spatial):
    """Pad with zeros: ``padding`` = int, one per axis, or ``(before, after)`` per axis."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pairs(self, 'padding', padding, self.spatial)

    def resized(self, size, axis):
        return size + sum(self.padding[axis])

    def call_last(self, x, training=False):
        return F.pad(x, ((0, 0),) + self.padding + ((0, 0),))

    def get_config(self):
        padding = [list(p) for p in self.padding]
        return {**super().get_config(), 'padding': padding[0] if self.spatial == 1 else padding}


class ZeroPadding1D(ZeroPadding):
    """(N, steps, C) -> (N, left + steps + right, C)."""

    spatial = 1
    writes_data_format = False


class ZeroPadding2D(ZeroPadding):
    """(N, H, W, C) -> (N, top + H + bottom, left + W + right, C)."""


class Cropping(Spatial):
    """Remove ``cropping`` rows/steps: int, one per axis, or ``(before, after)`` per axis."""

    def __init__(self, cropping=1, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pairs(self, 'cropping', cropping, self.spatial)

    def resized(self, size, axis):
        kept = size - sum(self.cropping[axis])
        if kept < 1:
            raise ValueError(f'{self.name} ({type(self).__name__}): cropping {self.cropping} '
                             f'leaves {kept} of the {size} positions of spatial axis {axis}')
        return kept

    def call_last(self, x, training=False):
        self.shape_last(x.shape)
        return F.getitem(x, (slice(None),) + tuple(
            slice(lo, n - hi) for (lo, hi), n in zip(self.cropping, x.shape[1:-1])))

    def get_config(self):
        cropping = [list(p) for p in self.cropping]
        return {**super().get_config(),
                'cropping': cropping[0] if self.spatial == 1 else cropping}


class Cropping1D(Cropping):
    """(N, steps, C) -> (N, steps - before - after, C)."""

    spatial = 1
    writes_data_format = False

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, **kwargs)


class Cropping2D(Cropping):
    """(N, H, W, C) -> (N, H - top - bottom, W - left - right, C)."""

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(cropping, **kwargs)


class UpSampling(Spatial):
    """Enlarge by ``size`` along each spatial axis: 'nearest' repeats each row/step, 'bilinear'
    (2-D) interpolates with half-pixel centres, as Keras's (TensorFlow's, PyTorch's) resize."""

    def __init__(self, size=2, interpolation='nearest', **kwargs):
        super().__init__(**kwargs)
        self.size = arguments.int_tuple(self, 'size', size, self.spatial)
        if interpolation not in ('nearest', 'bilinear'):
            raise ValueError(f"{self.name} ({type(self).__name__}): interpolation must be "
                             f"'nearest' or 'bilinear', got {interpolation!r}")
        self.interpolation = interpolation

    def resized(self, size, axis):
        return size * self.size[axis]

    def call_last(self, x, training=False):
        for axis, factor in enumerate(self.size, start=1):
            x = F.repeat(x, factor, axis) if self.interpolation == 'nearest' else \
                F.resize_linear(x, axis, x.shape[axis] * factor)
        return x


class UpSampling1D(UpSampling):
    """(N, steps, C) -> (N, steps * size, C), each step repeated."""

    spatial = 1
    writes_data_format = False

    def __init__(self, size=2, **kwargs):
        super().__init__(size, **kwargs)

    def get_config(self):
        return {**super().get_config(), 'size': self.size[0]}


class UpSampling2D(UpSampling):
    """(N, H, W, C) -> (N, H * size[0], W * size[1], C)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation='nearest', **kwargs):
        super().__init__(size, interpolation, data_format=data_format, **kwargs)

    def get_config(self):
        return {**super().get_config(), 'size': list(self.size),
                'interpolation': self.interpolation}
