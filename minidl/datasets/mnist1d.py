"""MNIST-1D (Greydanus, 2020): ``(x_train, y_train), (x_test, y_test) = load_data()``.

Ten 1-D templates of the digits, each shifted, scaled, sheared, padded and made noisy, then
resampled to 40 points: a small benchmark on which a convnet (about 94% test accuracy) clearly
beats an MLP (about 68%) and logistic regression (about 32%), because the patterns appear at
any position. Returns ``x_train`` ``(4000, 40)`` and ``x_test`` ``(1000, 40)`` float32
(standardised), ``y_train`` ``(4000,)`` and ``y_test`` ``(1000,)`` int64 labels 0..9. For
Conv1D, which wants ``(N, steps, channels)``, add a channel axis: ``x_train[..., None]``.

The data is regenerated locally by the ``mnist1d`` package with the paper's settings (nothing
is downloaded), then cached in ``$MINIDL_HOME/datasets/mnist1d/mnist1d.npz``.
"""
import random
import warnings

import numpy as np

from minidl.datasets.npz import read_arrays
from minidl.utils import atomic_write, cache_dir

SHAPES = {'x_train': (4000, 40), 'y_train': (4000,), 'x_test': (1000, 40), 'y_test': (1000,)}
DTYPES = {'x': np.float32, 'y': np.int64}


def load_data():
    """``((x_train, y_train), (x_test, y_test))``; see the module doc for shapes and dtypes."""
    file = cache_dir('datasets', 'mnist1d') / 'mnist1d.npz'
    arrays = _read_cache(file)
    if arrays is None:
        arrays = _generate()
        _write_cache(file, arrays)
    return (arrays['x_train'], arrays['y_train']), (arrays['x_test'], arrays['y_test'])


def _generate():
    """The dataset from the ``mnist1d`` package, leaving the global random states untouched.

    ``mnist1d`` seeds Python's and NumPy's global generators for reproducibility; they are
    restored afterwards so that loading data does not change a user's random numbers.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ImportError('minidl.datasets.mnist1d needs the mnist1d package to generate '
                          'the data: pip install mnist1d') from exc
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {'x_train': data['x'].astype(np.float32), 'y_train': data['y'].astype(np.int64),
            'x_test': data['x_test'].astype(np.float32), 'y_test': data['y_test'].astype(np.int64)}


def _read_cache(file):
    """The cached arrays, or None when the cache is absent or not what we wrote."""
    if not file.is_file():
        return None
    try:
        arrays = read_arrays(file, {name: (shape, DTYPES[name[0]])
                                    for name, shape in SHAPES.items()}, 'MNIST-1D')
    except ValueError as exc:
        warnings.warn(f'MNIST-1D: ignoring the unreadable cache {file} ({exc}); regenerating',
                      RuntimeWarning, stacklevel=3)
        return None
    return arrays


def _write_cache(file, arrays):
    """Save the arrays atomically; a folder we cannot write to only costs a warning."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(file) as tmp:
            np.savez(tmp, **arrays)
    except OSError as exc:
        warnings.warn(f'MNIST-1D: could not cache the data in {file} ({exc}); it will be '
                      'generated again next time', RuntimeWarning, stacklevel=3)
