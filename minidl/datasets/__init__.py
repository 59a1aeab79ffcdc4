"""Datasets that load offline, as NumPy arrays, Keras-style:
``(x_train, y_train), (x_test, y_test) = mnist.load_data()``.

- :mod:`~minidl.datasets.mnist`: 28x28 handwritten digits, shipped with minidl.
- :mod:`~minidl.datasets.mnist1d`: MNIST-1D, 1-D digit signals for Conv1D, generated locally.

Generated files are cached under ``$MINIDL_HOME/datasets`` (``~/.minidl/datasets``).
"""
from minidl.datasets import mnist, mnist1d

__all__ = ['mnist', 'mnist1d']
