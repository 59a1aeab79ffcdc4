"""Weight files written by other frameworks, and the exception every reader raises.

Keras's own h5 layout needs no reader here: minidl saves in it, and :mod:`minidl.saving` reads
both (see ``applications.VGG16(weights=...)``). A file that cannot be read raises
:class:`WeightFileError` (a ValueError) naming the file and what is wrong with it.
"""
from minidl.io.errors import WeightFileError
from minidl.io.torch_checkpoint import load_torch_weights, read_torch_checkpoint

__all__ = ['WeightFileError', 'load_torch_weights', 'read_torch_checkpoint']
