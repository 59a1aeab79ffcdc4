"""Reading known arrays from an ``.npz`` file without trusting its headers.

``np.load`` allocates whatever shape a member's ``.npy`` header declares, so a damaged or
hostile file declaring 10**12 bytes raises a MemoryError (or takes the machine's memory)
before any check can run. Here each member's header is parsed and compared with the shape and
dtype the caller expects first, and its size with the bytes the member holds; only then is its
data read, in exactly the announced size. Object arrays (imdb.npz's ragged reviews), which
``.npy`` stores as a pickle, are read by :mod:`minidl.datasets.pickled`: no pickle code runs.
"""
import math
import zipfile
import zlib

import numpy as np

from minidl.datasets import pickled
from minidl.datasets.files import read_upto

_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def read_arrays(file, expected, dataset):
    """``{name: array}`` for ``expected`` = ``{name: (shape, dtype)}`` from the ``.npz``
    ``file``; anything missing, mis-shaped, truncated or unreadable is a ValueError naming
    ``dataset`` and ``file``. A shape of None takes any shape; a dtype may be a NumPy type
    family such as ``np.integer``, or ``object`` for a pickled object array."""
    try:
        with zipfile.ZipFile(file) as archive:
            members = set(archive.namelist())
            missing = [name for name in expected if f'{name}.npy' not in members]
            if missing:
                raise ValueError(f'{dataset}: {file} lacks the array(s) {", ".join(missing)}')
            return {name: _read_npy(archive, name, *want, f'{dataset}: {name} in {file}')
                    for name, want in expected.items()}
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f'{dataset}: {file} is not a readable .npz file ({exc})') from exc


def _read_npy(archive, name, shape, dtype, where):
    """Member ``name.npy`` of ``archive``, which must hold a ``dtype`` array of ``shape``."""
    info = archive.getinfo(f'{name}.npy')
    with archive.open(info) as member:
        try:
            read_header = _NPY_HEADERS.get(np.lib.format.read_magic(member))
            if read_header is None:
                raise ValueError('unsupported .npy format version')
            stored_shape, fortran_order, stored_dtype = read_header(member)
        except ValueError as exc:
            raise ValueError(f'{where} has no valid .npy header ({exc})') from exc
        if not (np.issubdtype(stored_dtype, dtype) and
                (shape is None or tuple(stored_shape) == tuple(shape))):
            raise ValueError(f'{where} is {stored_dtype} {tuple(stored_shape)}, expected '
                             f'{_dtype_name(dtype)} '
                             f'{"of any shape" if shape is None else tuple(shape)}')
        size = info.file_size - member.tell()  # the bytes after the header
        if stored_dtype.hasobject:
            array = pickled.load(read_upto(member, size), where)
            if not (isinstance(array, np.ndarray) and array.dtype == object and
                    array.shape == tuple(stored_shape)):
                raise ValueError(f'{where}: its pickle does not hold the object array of shape '
                                 f'{tuple(stored_shape)} its header announces')
            return array
        nbytes = math.prod(stored_shape) * stored_dtype.itemsize
        if size != nbytes:
            raise ValueError(f'{where} does not hold exactly the {nbytes} bytes of data its '
                             f'header announces')
        array = np.empty(stored_shape[::-1] if fortran_order else stored_shape, stored_dtype)
        read = member.readinto(memoryview(array).cast('B'))
        if read < array.nbytes or member.read(1):
            raise ValueError(f'{where} does not hold exactly the {array.nbytes} bytes of data '
                             f'its header announces')
    return array.T if fortran_order else array


def _dtype_name(dtype):
    """``dtype``'s name, also for a type family such as ``np.integer``."""
    try:
        return str(np.dtype(dtype))
    except TypeError:
        return dtype.__name__
