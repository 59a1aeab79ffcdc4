"""Inverted dropout: at training, zero each unit with probability ``rate`` and scale the kept
ones by ``1 / (1 - rate)`` so that inference needs no change (it is the identity).

The mask comes from the counter-based RNG in the kernels: it depends only on the seed, a step
number and each element's index, so the CPU and the GPU draw the same mask, and
``minidl.random.seed`` makes it reproducible.
"""
from minidl import random
from minidl.autograd import Function
from minidl.backends import kernels


class Dropout(Function):
    def __init__(self, rate, key):
        self.rate, self.key = rate, key

    def forward(self, x):
        self.mask = kernels.dropout_mask(x.shape, self.rate, *self.key, dtype=x.dtype, like=x)
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def dropout(x, rate, training=True, key=None):
    """Inverted dropout of ``x``; ``key=(seed, step)`` fixes the mask (default: next draw)."""
    if not 0 <= rate < 1:
        raise ValueError(f'dropout: rate must be in [0, 1), got {rate}')
    if not training or rate == 0:
        return x
    return Dropout(rate, key or random.dropout_key())(x)
