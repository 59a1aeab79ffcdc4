"""The files of Keras and PyTorch, one module per format, and the exception every reader raises.

- :mod:`~minidl.io.keras_h5`: Keras 2's h5 layout (``model.save('x.h5')``, ``save_weights``),
  which minidl also saves in;
- :mod:`~minidl.io.keras3_weights`: Keras 3's ``.weights.h5``;
- :mod:`~minidl.io.keras_archive`: Keras 3's ``.keras`` zip;
- :mod:`~minidl.io.keras_config`: the one translator of Keras 2, Keras 3 and minidl configs;
- :mod:`~minidl.io.torch_checkpoint`: ``torch.save`` files, zip and legacy, read without
  PyTorch (:mod:`~minidl.io.safe_pickle` runs no code from them), and
  :mod:`~minidl.io.torch_weights`, which gives a state_dict to a minidl model.

:mod:`minidl.saving` is the front door that picks the format. A file that cannot be read raises
:class:`WeightFileError` (a ValueError) naming the file and what is wrong with it.
"""
from minidl.io.errors import WeightFileError
from minidl.io.torch_checkpoint import read_torch_checkpoint
from minidl.io.torch_weights import load_torch_weights

__all__ = ['WeightFileError', 'load_torch_weights', 'read_torch_checkpoint']
