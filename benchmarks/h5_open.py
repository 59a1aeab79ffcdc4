"""What checking an h5 file before h5py opens it costs: the global-heap scan of
``minidl.io.keras_h5.open_h5`` against reading the same weights with h5py alone.

Writes a weight file of ``--megabytes`` of float32 kernels in minidl's layout with one global
heap (variable-length layer names, as Keras and older minidl files have), then times, median
of ``--repeat`` runs with the file in the page cache:

* ``h5py read``: h5py opens the file and reads every dataset;
* ``heap scan``: minidl's check of every global heap collection (mmap, find ``GCOL``, walk);
* ``minidl load_weights``: the whole checked load into a model of the same shapes.

    python benchmarks/h5_open.py [--megabytes 512] [--repeat 5]
"""
import argparse
import math
import mmap
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from minidl import layers, models
from minidl.io import keras_h5

UNITS = 4096  # a VGG16 fc-sized kernel: 4096 x 4096 float32 is 64 MB


def model_of(megabytes):
    """Dense layers of at most UNITS x UNITS whose kernels add up to about ``megabytes``."""
    units = min(UNITS, int(math.sqrt(megabytes * 2**20 / 4)))
    count = max(1, megabytes * 2**20 // (4 * units * units))
    return models.Sequential([layers.Input((units,))] +
                             [layers.Dense(units, name=f'fc{i}') for i in range(count)])


def write(model, path):
    """``model.save_weights(path)``, then its layer names rewritten variable-length."""
    model.save_weights(path)
    with h5py.File(path, 'r+') as f:
        group = f['model_weights']
        names = [n.decode() for n in group.attrs['layer_names']]
        group.attrs['layer_names'] = np.array(names, dtype=h5py.string_dtype())


def h5py_read(path):
    """Every dataset of the file, read by h5py with no checks."""
    arrays = []
    with h5py.File(path, 'r') as f:
        f['model_weights'].visititems(
            lambda _, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def heap_scan(path):
    """The global heaps of the file, each checked as minidl does before h5py opens it."""
    with open(path, 'rb') as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return keras_h5.check_global_heaps(path, data)


def median_s(fn, repeat):
    """The median wall time of ``repeat`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--megabytes', type=int, default=512,
                        help='megabytes of weights written; 512 is about VGG16 (default: %(default)s)')
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed runs of each step, whose median is printed (default: %(default)s)')
    args = parser.parse_args(argv)
    model = model_of(args.megabytes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'weights.h5'
        write(model, path)
        size = path.stat().st_size / 2**20
        heaps = heap_scan(path)
        print(f'{size:.0f} MB file, {len(heaps)} global heap(s), median of {args.repeat}:')
        for label, fn in (('h5py read', lambda: h5py_read(path)),
                          ('heap scan', lambda: heap_scan(path)),
                          ('minidl load_weights', lambda: model.load_weights(path))):
            print(f'  {label:<20} {median_s(fn, args.repeat):7.3f} s')


if __name__ == '__main__':
    main()
