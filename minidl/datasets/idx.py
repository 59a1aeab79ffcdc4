"""The gzipped IDX files of MNIST and Fashion-MNIST.

IDX layout: a big-endian uint32 magic number ``0x0800 + ndim`` (0x08 = unsigned bytes; 2051
for images, 2049 for labels), ``ndim`` big-endian uint32 sizes, then the raw bytes in C order.
"""
import gzip
import math
import zlib

import numpy as np

from minidl.datasets.files import read_upto


def read_idx(file, ndim, dataset, shape=None):
    """The uint8 array of ``ndim`` dimensions in the gzipped IDX ``file``, of ``shape`` when
    given (checked before any data is read); a damaged file is a ValueError naming
    ``dataset`` and ``file``. Memory is only taken as the file's data arrives, so a header
    announcing more than the file holds costs nothing."""
    header_size = 4 * (1 + ndim)
    try:
        with gzip.open(file) as f:
            header = f.read(header_size)
            if len(header) < header_size:
                raise ValueError(f'{dataset}: {file} is truncated: it ends inside the '
                                 f'{header_size}-byte IDX header')
            magic, *dims = (int(n) for n in np.frombuffer(header, '>u4'))
            if magic != 0x0800 + ndim:
                raise ValueError(f'{dataset}: {file} has a bad IDX magic number {magic} '
                                 f'(expected {0x0800 + ndim}: unsigned bytes in {ndim} '
                                 f'dimensions)')
            if shape is not None and tuple(dims) != tuple(shape):
                raise ValueError(f'{dataset}: {file} holds an array of shape {tuple(dims)}, '
                                 f'expected {tuple(shape)}')
            size = math.prod(dims)
            data = read_upto(f, size + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f'{dataset}: {file} is not a readable gzip file ({exc})') from exc
    if len(data) < size:
        raise ValueError(f'{dataset}: {file} is truncated: its header promises {size} bytes '
                         f'of data, it holds {len(data)}')
    if len(data) > size:
        raise ValueError(f'{dataset}: {file} has data beyond the {size} bytes its header '
                         f'announces')
    return np.frombuffer(data, np.uint8).reshape(dims)
