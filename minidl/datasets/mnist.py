"""MNIST handwritten digits, offline: ``(x_train, y_train), (x_test, y_test) = load_data()``.

Returns uint8 arrays as Keras does: images ``(60000, 28, 28)`` and ``(10000, 28, 28)`` with
pixels in 0..255, labels ``(60000,)`` and ``(10000,)`` with digits 0..9.

minidl never downloads. It reads the first of these that holds the data:

1. ``path=``: a Keras-style ``mnist.npz`` (arrays ``x_train``, ``y_train``, ``x_test``,
   ``y_test``) or a folder holding the four IDX files (``train-images-idx3-ubyte.gz``, ...);
2. the cache folder ``$MINIDL_HOME/datasets/mnist`` (``~/.minidl/datasets/mnist`` by
   default), holding either of those;
3. the copy of the four IDX files that ships inside the minidl package.

Every array is checked against the SHA-256 of its bytes before it is returned. Checking the
data rather than the file means any faithful copy passes (the IDX files from any mirror,
however they were gzip-compressed, or Keras's ``mnist.npz``), and a damaged one fails with a
ValueError naming the file.
"""
import hashlib
from pathlib import Path

import numpy as np

from minidl.datasets.idx import read_idx
from minidl.datasets.npz import read_arrays
from minidl.utils import cache_dir

PACKAGED = Path(__file__).parent / 'data' / 'mnist'

# array name -> (IDX file, shape, SHA-256 of the array's C-order bytes)
ARRAYS = {
    'x_train': ('train-images-idx3-ubyte.gz', (60000, 28, 28),
                '741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757'),
    'y_train': ('train-labels-idx1-ubyte.gz', (60000,),
                '1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13'),
    'x_test': ('t10k-images-idx3-ubyte.gz', (10000, 28, 28),
               '6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161'),
    'y_test': ('t10k-labels-idx1-ubyte.gz', (10000,),
               'ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5'),
}
NPZ_NAME = 'mnist.npz'


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))`` as uint8 NumPy arrays (see the module doc).

    ``path``: an ``.npz`` file or a folder with the IDX files; by default the cache folder,
    then the packaged copy. Raises FileNotFoundError when ``path`` does not exist and
    ValueError when a file is not intact MNIST.
    """
    source = _find_source(path)
    if source.suffix == '.npz':
        arrays = _read_npz(source)
    else:
        arrays = {name: _read_idx(source / file, name) for name, (file, _, _) in ARRAYS.items()}
    return (arrays['x_train'], arrays['y_train']), (arrays['x_test'], arrays['y_test'])


def _find_source(path):
    """The ``.npz`` file or the IDX folder to read, following the module doc's order."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f'MNIST: {path} does not exist')
        if path.is_file() and path.suffix != '.npz':
            raise ValueError(f'MNIST: path must be an .npz file or a folder, got {path}')
        source = path if path.is_file() else _source_in(path)
        if source is None:
            raise ValueError(f'MNIST: {path} holds neither {NPZ_NAME} nor all four IDX files '
                             f'({", ".join(file for file, _, _ in ARRAYS.values())})')
        return source
    for folder in (cache_dir('datasets', 'mnist'), PACKAGED):
        source = _source_in(folder)
        if source is not None:
            return source
    raise FileNotFoundError(f'MNIST: the copy packaged with minidl is missing from {PACKAGED} '
                            f'(reinstall minidl), and {cache_dir("datasets", "mnist")} holds '
                            f'no copy either')


def _source_in(folder):
    """``folder`` if it holds the four IDX files, else its ``mnist.npz``, else None."""
    if all((folder / file).is_file() for file, _, _ in ARRAYS.values()):
        return folder
    npz = folder / NPZ_NAME
    return npz if npz.is_file() else None


def _read_idx(file, name):
    """The verified MNIST array ``name`` from its gzipped IDX ``file``."""
    _, shape, _ = ARRAYS[name]
    return _verified(name, read_idx(file, len(shape), 'MNIST', shape), file)


def _read_npz(file):
    """The four arrays of a Keras-style ``mnist.npz``, headers checked before reading, then
    verified."""
    arrays = read_arrays(file, {name: (shape, np.uint8) for name, (_, shape, _) in
                                ARRAYS.items()}, 'MNIST')
    return {name: _verified(name, array, file) for name, array in arrays.items()}


def _verified(name, array, file):
    """``array`` if it is exactly MNIST's ``name`` array, else a ValueError naming ``file``."""
    _, shape, sha256 = ARRAYS[name]
    if array.dtype != np.uint8 or array.shape != shape:
        raise ValueError(f'MNIST: {name} in {file} is {array.dtype} {array.shape}, expected '
                         f'uint8 {shape}')
    digest = hashlib.sha256(np.ascontiguousarray(array)).hexdigest()
    if digest != sha256:
        raise ValueError(f'MNIST: checksum mismatch for {name} in {file}: SHA-256 {digest}, '
                         f'expected {sha256}; the file is damaged or is not MNIST')
    return array
