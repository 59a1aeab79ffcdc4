"""Layers that act only in training, to regularize (Keras 3's ``layers/regularization``):
Dropout and SpatialDropout1D/2D (zero units, or whole feature maps), GaussianNoise (add noise)
and GaussianDropout (multiply by noise around 1). At inference each is the identity.

``seed=None`` draws from ``minidl.random`` (reproducible after ``minidl.random.seed``); an
integer gives the layer its own sequence, as Keras's seed generator does: the same masks, call
after call, in every run, whatever else draws random numbers.
"""
import numpy as np

import minidl.functions as F
from minidl.layers import arguments
from minidl.layers.base import Layer


class Seeded(Layer):
    """A layer drawing random numbers at training, from its own ``seed`` when one is given."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = None if seed is None else arguments.integer(self, 'seed', seed)
        self.draws = 0
        self.generator = None if seed is None else np.random.default_rng(self.seed)

    def dropout_key(self):
        """The ``(seed, step)`` of the next dropout mask: the layer's own, or None (the global
        sequence's)."""
        if self.seed is None:
            return None
        self.draws += 1
        return self.seed & 0xFFFFFFFF, self.draws

    def get_config(self):
        return {**super().get_config(), 'seed': self.seed}


class Dropout(Seeded):
    """Inverted dropout of ``rate`` at training; ``noise_shape`` (None entries: the input's
    size) shares one keep-or-drop decision along its axes of size 1."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = arguments.fraction(self, 'rate', rate)
        self.noise_shape = None if noise_shape is None else tuple(
            None if d is None else arguments.count(self, 'noise_shape', d)
            for d in noise_shape)

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        if self.noise_shape is not None and len(self.noise_shape) != len(input_shape):
            raise ValueError(f'{self.name} ({type(self).__name__}): noise_shape '
                             f'{self.noise_shape} has {len(self.noise_shape)} axes, inputs '
                             f'{len(input_shape)}')

    def call(self, x, training=False):
        if not training:
            return x
        return F.dropout(x, self.rate, training, self.dropout_key(), self.mask_shape(x))

    def mask_shape(self, x):
        return self.noise_shape

    def get_config(self):
        return {**super().get_config(), 'rate': self.rate,
                'noise_shape': None if self.noise_shape is None else list(self.noise_shape)}


class SpatialDropout(Dropout):
    """Shared by SpatialDropout1D/2D: the noise shape is theirs, not an argument; their config
    has no ``trainable`` either (they hold no weights, and Keras 3's constructors refuse it)."""

    def get_config(self):
        config = super().get_config()
        del config['noise_shape'], config['trainable']
        return config


class SpatialDropout1D(SpatialDropout):
    """Drops whole channels of sequences (N, steps, C): one decision per example and channel,
    as for feature maps whose neighbouring steps are strongly correlated."""

    expected_ndim = 3

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)

    def mask_shape(self, x):
        return (x.shape[0], 1, x.shape[2])


class SpatialDropout2D(SpatialDropout):
    """Drops whole feature maps of images (N, H, W, C), or (N, C, H, W) with
    ``data_format='channels_first'``: one decision per example and channel."""

    expected_ndim = 4

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = arguments.data_format(self, data_format)

    def mask_shape(self, x):
        if self.data_format == 'channels_first':
            return tuple(x.shape[:2]) + (1, 1)
        return (x.shape[0], 1, 1, x.shape[3])

    def get_config(self):
        return {**super().get_config(), 'data_format': self.data_format}


class GaussianNoise(Seeded):
    """Adds ``stddev * N(0, 1)`` noise at training (a noisy input or activation)."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.stddev = arguments.fraction(self, 'stddev', stddev, high=float('inf'))

    def call(self, x, training=False):
        return F.gaussian_noise(x, self.stddev, training, self.generator)

    def get_config(self):
        return {**super().get_config(), 'stddev': self.stddev}


class GaussianDropout(Seeded):
    """Multiplies by ``N(1, rate / (1 - rate))`` noise at training: dropout's variance without
    zeros, and no rescaling needed at inference."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = arguments.fraction(self, 'rate', rate)

    def call(self, x, training=False):
        return F.gaussian_dropout(x, self.rate, training, self.generator)

    def get_config(self):
        return {**super().get_config(), 'rate': self.rate}
