"""Noise that regularizes at training: inverted dropout, additive Gaussian noise and Gaussian
(multiplicative) dropout. At inference all three are the identity.

Dropout zeroes each unit with probability ``rate`` and scales the kept ones by ``1 / (1 - rate)``
so that the expected value is unchanged. Its mask comes from the counter-based RNG in the
kernels: it depends only on a seed, a step number and each element's index, so the CPU and the
GPU draw the same mask, and ``minidl.random.seed`` (or a layer's own ``seed``) makes it
reproducible. A ``noise_shape`` with ones draws one decision for a whole row, map or channel and
broadcasts it (SpatialDropout drops whole feature maps that way).
"""
from minidl import random
from minidl.autograd import Function, as_array
from minidl.backends import get_array_module, kernels


class Dropout(Function):
    def __init__(self, rate, key, noise_shape):
        self.rate, self.key, self.noise_shape = rate, key, noise_shape

    def forward(self, x):
        self.mask = kernels.dropout_mask(self.noise_shape, self.rate, *self.key, dtype=x.dtype,
                                         like=x)
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def noise_shape_for(shape, noise_shape):
    """Keras's rule: ``noise_shape`` (None for the input's shape) with each None entry taken from
    ``shape``; every entry must be 1 or the input's size there, so the mask broadcasts."""
    if noise_shape is None:
        return tuple(shape)
    full = tuple(n if d is None else d for d, n in zip(noise_shape, shape))
    if len(noise_shape) != len(shape) or any(d not in (1, n) for d, n in zip(full, shape)):
        raise ValueError(f'dropout: noise_shape {tuple(noise_shape)} does not broadcast to the '
                         f'input shape {tuple(shape)} (each entry must be 1, None or the size)')
    return full


def dropout(x, rate, training=True, key=None, noise_shape=None):
    """Inverted dropout of ``x``; ``key=(seed, step)`` fixes the mask (default: next draw of
    ``minidl.random``); ``noise_shape`` as Keras's (see :func:`noise_shape_for`)."""
    if not 0 <= rate < 1:
        raise ValueError(f'dropout: rate must be in [0, 1), got {rate}')
    shape = noise_shape_for(as_array(x).shape, noise_shape)
    if not training or rate == 0:
        return x
    return Dropout(rate, key or random.dropout_key(), shape)(x)


def _normal(x, generator):
    """Standard normal noise shaped and typed as ``x``, on its device."""
    data = as_array(x)
    dtype = data.dtype if data.dtype.name in ('float32', 'float64') else 'float64'
    noise = (generator or random.generator()).standard_normal(data.shape, dtype=dtype)
    return get_array_module(data).asarray(noise.astype(data.dtype, copy=False))


def gaussian_noise(x, stddev, training=True, generator=None):
    """``x + stddev * N(0, 1)`` at training (a composition: the noise is a constant), drawn from
    ``generator`` (a NumPy Generator; default ``minidl.random.generator()``)."""
    if not training or stddev == 0:
        return x
    return x + stddev * _normal(x, generator)


def gaussian_dropout(x, rate, training=True, generator=None):
    """``x * N(1, rate / (1 - rate))`` at training: multiplicative noise with dropout's variance
    and mean 1, so inference needs no rescaling."""
    if not 0 <= rate < 1:
        raise ValueError(f'gaussian_dropout: rate must be in [0, 1), got {rate}')
    if not training or rate == 0:
        return x
    return x * (1 + (rate / (1 - rate)) ** 0.5 * _normal(x, generator))
