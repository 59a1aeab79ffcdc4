"""Initializers: the random starting values of weights, Keras's recipes.

An initializer is a callable ``init(shape, dtype='float32') -> numpy array``. Layers take one by
name (``kernel_initializer='he_normal'``) or as an object (``initializers.RandomUniform(-0.1,
0.1)``); :func:`get` turns either into the callable. Random draws come from
:func:`minidl.random.generator`, so ``minidl.random.seed(n)`` makes them reproducible (or pass
``seed=`` to one initializer to fix just its values).

Why the scale matters: a unit summing ``fan_in`` inputs of variance ``s`` has output variance
``fan_in * s``, so weights of variance ``1 / fan_in`` (LeCun), ``2 / fan_in`` (He, for ReLU,
which zeroes half its inputs) or ``2 / (fan_in + fan_out)`` (Glorot, balancing the forward and
the backward pass) keep signals from growing or vanishing layer after layer.
"""
import math

import numpy as np

from minidl import random
from minidl.utils import Configurable, Registry


def compute_fans(shape):
    """``(fan_in, fan_out)`` of a weight of this shape, as Keras counts them.

    Dense ``(in, out)``: ``(in, out)``. A convolution kernel ``(kh, kw, cin, cout)`` (or
    ``(k, cin, cout)``) connects each output to a receptive field of ``kh * kw`` positions in
    each of ``cin`` channels, so ``fan_in = kh * kw * cin`` and ``fan_out = kh * kw * cout``.
    A vector ``(n,)`` counts ``n`` both ways; a scalar counts 1.
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer(Configurable):
    """Base class: ``__call__(shape, dtype)`` returns ``sample(shape)`` cast to ``dtype``.

    Subclasses keep each constructor argument under its own name (that is their config) and
    define ``sample(shape, rng)`` returning float64 values; ``rng`` is a NumPy Generator.
    """

    seed = None

    def __call__(self, shape, dtype='float32'):
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise ValueError(f'{type(self).__name__}: shape must not have negative sizes, '
                             f'got {shape}')
        rng = random.generator() if self.seed is None else np.random.default_rng(self.seed)
        return np.asarray(self.sample(shape, rng), dtype=dtype)

    def sample(self, shape, rng):
        raise NotImplementedError(f'{type(self).__name__} must define sample()')


class Zeros(Initializer):
    """All zeros: the default for biases."""

    def sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones (e.g. a scale that starts as the identity)."""

    def sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every entry equal to ``value``."""

    def __init__(self, value=0.0):
        self.value = value

    def sample(self, shape, rng):
        return np.full(shape, self.value)


class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)``; Keras's ``'uniform'`` (used by Embedding)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        if not minval <= maxval:
            raise ValueError(f'RandomUniform: minval ({minval}) must not exceed maxval '
                             f'({maxval})')
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)


class RandomNormal(Initializer):
    """Normal with the given ``mean`` and ``stddev``; Keras's ``'normal'``."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, _non_negative(self, 'stddev', stddev), seed

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)


class TruncatedNormal(Initializer):
    """Normal with the given ``mean`` and ``stddev``, redrawn until within two stddevs."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, _non_negative(self, 'stddev', stddev), seed

    def sample(self, shape, rng):
        return self.mean + self.stddev * _truncated_standard_normal(shape, rng)


class VarianceScaling(Initializer):
    """Random values of variance ``scale / n``, where ``n`` is picked by ``mode``.

    ``mode``: ``'fan_in'``, ``'fan_out'`` or ``'fan_avg'`` (their mean), see
    :func:`compute_fans`. ``distribution``: ``'uniform'`` draws from ``[-limit, limit]`` with
    ``limit = sqrt(3 * scale / n)``; ``'truncated_normal'`` draws a normal cut at two standard
    deviations, widened by 1/0.8796 so the variance after the cut is still ``scale / n``;
    ``'untruncated_normal'`` draws a plain normal.
    """

    MODES = ('fan_in', 'fan_out', 'fan_avg')
    DISTRIBUTIONS = ('uniform', 'truncated_normal', 'untruncated_normal')
    TRUNCATED_STDDEV = 0.87962566103423978  # stddev of a standard normal cut to [-2, 2]

    def __init__(self, scale=1.0, mode='fan_in', distribution='truncated_normal', seed=None):
        if not scale > 0:
            raise ValueError(f'VarianceScaling: scale must be positive, got {scale}')
        if mode not in self.MODES:
            raise ValueError(f'VarianceScaling: mode must be one of {self.MODES}, got {mode!r}')
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f'VarianceScaling: distribution must be one of '
                             f'{self.DISTRIBUTIONS}, got {distribution!r}')
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def sample(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        n = {'fan_in': fan_in, 'fan_out': fan_out, 'fan_avg': (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == 'uniform':
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == 'truncated_normal':
            stddev = math.sqrt(variance) / self.TRUNCATED_STDDEV
            return stddev * _truncated_standard_normal(shape, rng)
        return rng.normal(0.0, math.sqrt(variance), shape)


class GlorotUniform(VarianceScaling):
    """Glorot (Xavier) uniform, the default for kernels: ``U[-limit, limit]`` with
    ``limit = sqrt(6 / (fan_in + fan_out))``."""

    def __init__(self, seed=None):
        super().__init__(1.0, 'fan_avg', 'uniform', seed)


class GlorotNormal(VarianceScaling):
    """Glorot (Xavier) normal: truncated normal of variance ``2 / (fan_in + fan_out)``."""

    def __init__(self, seed=None):
        super().__init__(1.0, 'fan_avg', 'truncated_normal', seed)


class HeUniform(VarianceScaling):
    """He uniform, for ReLU layers: ``U[-limit, limit]`` with ``limit = sqrt(6 / fan_in)``."""

    def __init__(self, seed=None):
        super().__init__(2.0, 'fan_in', 'uniform', seed)


class HeNormal(VarianceScaling):
    """He normal, for ReLU layers: truncated normal of variance ``2 / fan_in``."""

    def __init__(self, seed=None):
        super().__init__(2.0, 'fan_in', 'truncated_normal', seed)


class LecunUniform(VarianceScaling):
    """LeCun uniform: ``U[-limit, limit]`` with ``limit = sqrt(3 / fan_in)``."""

    def __init__(self, seed=None):
        super().__init__(1.0, 'fan_in', 'uniform', seed)


class LecunNormal(VarianceScaling):
    """LeCun normal: truncated normal of variance ``1 / fan_in``."""

    def __init__(self, seed=None):
        super().__init__(1.0, 'fan_in', 'truncated_normal', seed)


# Keras's lowercase aliases: ``initializers.he_normal()`` is ``initializers.HeNormal()``.
zeros, ones, constant = Zeros, Ones, Constant
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal

_REGISTRY = Registry('initializer', {
    'glorot_uniform': GlorotUniform, 'glorot_normal': GlorotNormal,
    'he_uniform': HeUniform, 'he_normal': HeNormal,
    'lecun_uniform': LecunUniform, 'lecun_normal': LecunNormal,
    'zeros': Zeros, 'ones': Ones, 'constant': Constant,
    'random_uniform': RandomUniform, 'uniform': RandomUniform,
    'random_normal': RandomNormal, 'normal': RandomNormal,
    'truncated_normal': TruncatedNormal, 'variance_scaling': VarianceScaling,
})


def get(identifier):
    """An initializer from a name (``'glorot_uniform'``, ``'uniform'``, ``'he_normal'``, ...;
    case and underscores do not matter), a Keras-style config dict
    (``{'class_name': 'RandomUniform', 'config': {...}}``), or any callable, returned as is.
    ``None`` stays ``None``."""
    if identifier is None or callable(identifier):
        return identifier
    return _REGISTRY.build(identifier, 'a callable init(shape, dtype)')


def _truncated_standard_normal(shape, rng):
    """Standard normal values in ``[-2, 2]``: draw, then redraw those outside until none is."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values


def _non_negative(initializer, name, value):
    if value < 0:
        raise ValueError(f'{type(initializer).__name__}: {name} must be >= 0, got {value}')
    return value
