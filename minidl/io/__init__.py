"""Weight files written by other frameworks. Keras's own h5 layout needs no reader here: minidl
saves in it, and :mod:`minidl.saving` reads both (see ``applications.VGG16(weights=...)``)."""
from minidl.io.torch_checkpoint import load_torch_weights, read_torch_checkpoint

__all__ = ['load_torch_weights', 'read_torch_checkpoint']
