"""Weight files written by other frameworks, and the exception every reader raises.

Keras 2's h5 layout, which minidl also saves in, is read and written by
:mod:`minidl.io.keras_h5`, behind :mod:`minidl.saving` (and ``applications.VGG16(weights=...)``).
A file that cannot be read raises :class:`WeightFileError` (a ValueError) naming the file and
what is wrong with it.
"""
from minidl.io.errors import WeightFileError
from minidl.io.torch_checkpoint import read_torch_checkpoint
from minidl.io.torch_weights import load_torch_weights

__all__ = ['WeightFileError', 'load_torch_weights', 'read_torch_checkpoint']
