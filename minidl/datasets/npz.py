"""Reading known arrays from an ``.npz`` file without trusting its headers.

``np.load`` allocates whatever shape a member's ``.npy`` header declares, so a damaged or
hostile file declaring 10**12 bytes raises a MemoryError (or takes the machine's memory)
before any check can run. Here each member's header is parsed and compared with the shape and
dtype the caller expects first; only then is its data read, in exactly the announced size.
"""
import zipfile
import zlib

import numpy as np

_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def read_arrays(file, expected, dataset):
    """``{name: array}`` for ``expected`` = ``{name: (shape, dtype)}`` from the ``.npz``
    ``file``; anything missing, mis-shaped, truncated or unreadable is a ValueError naming
    ``dataset`` and ``file``."""
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
    with archive.open(f'{name}.npy') as member:
        try:
            read_header = _NPY_HEADERS.get(np.lib.format.read_magic(member))
            if read_header is None:
                raise ValueError('unsupported .npy format version')
            stored_shape, fortran_order, stored_dtype = read_header(member)
        except ValueError as exc:
            raise ValueError(f'{where} has no valid .npy header ({exc})') from exc
        if stored_dtype != np.dtype(dtype) or tuple(stored_shape) != tuple(shape):
            raise ValueError(f'{where} is {stored_dtype} {tuple(stored_shape)}, expected '
                             f'{np.dtype(dtype)} {tuple(shape)}')
        array = np.empty(shape[::-1] if fortran_order else shape, dtype)
        read = member.readinto(memoryview(array).cast('B'))
        if read < array.nbytes or member.read(1):
            raise ValueError(f'{where} does not hold exactly the {array.nbytes} bytes of data '
                             f'its header announces')
    return array.T if fortran_order else array
