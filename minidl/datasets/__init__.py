"""Datasets that load offline, as NumPy arrays, Keras-style:
``(x_train, y_train), (x_test, y_test) = mnist.load_data()``.

- :mod:`~minidl.datasets.mnist`: 28x28 handwritten digits, shipped with minidl.
- :mod:`~minidl.datasets.mnist1d`: MNIST-1D, 1-D digit signals for Conv1D, generated locally.
- :mod:`~minidl.datasets.cifar10`, :mod:`~minidl.datasets.fashion_mnist`,
  :mod:`~minidl.datasets.imdb`: read from the files Keras downloads (``~/.keras/datasets``),
  checked against their published hashes; minidl itself never downloads.

Generated files are cached under ``$MINIDL_HOME/datasets`` (``~/.minidl/datasets``), which is
also searched first for the files of the Keras datasets.
"""
from minidl.datasets import cifar10, fashion_mnist, imdb, mnist, mnist1d

__all__ = ['cifar10', 'fashion_mnist', 'imdb', 'mnist', 'mnist1d']
