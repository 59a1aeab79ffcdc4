"""One seed for everything random in minidl.

``minidl.random.seed(n)`` makes weight initialisation, shuffling, augmentation and dropout
reproducible. Initialisers and shufflers draw from :func:`generator`; dropout draws a
``(seed, step)`` pair from :func:`dropout_key` and builds its mask with the counter-based RNG in
the kernels, so the CPU and the GPU give the same mask for the same seed.
"""
import numpy as np

_state = {'generator': np.random.default_rng(), 'dropout_seed': 0, 'dropout_step': 0}


def seed(n):
    """Reseed every source of randomness in minidl."""
    _state['generator'] = np.random.default_rng(n)
    _state['dropout_seed'] = int(n) & 0xFFFFFFFF
    _state['dropout_step'] = 0


def generator():
    """The NumPy Generator behind initialisation, shuffling and augmentation."""
    return _state['generator']


def dropout_key():
    """A fresh ``(seed, step)`` pair for one dropout mask: same sequence after the same seed."""
    _state['dropout_step'] += 1
    return _state['dropout_seed'], _state['dropout_step']
