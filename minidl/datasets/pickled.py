"""NumPy arrays out of pickles, without running pickle code.

CIFAR-10's batches are pickled dicts holding a uint8 array, and imdb.npz keeps its ragged
reviews as object arrays, which ``.npy`` can only store as a pickle. A pickled array names three
globals: ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')`` makes an empty
array, ``numpy.dtype(typecode, align, copy)`` its dtype, and BUILD hands the array its state
``(version, shape, dtype, fortran_order, data)``. :func:`load` gives those names to stand-ins
(:class:`~minidl.io.safe_pickle.SafeUnpickler` imports nothing), which make the array from
the state only once its data is proven to be exactly the size its shape announces.
"""
import math
import pickle
import re
import struct

import numpy as np

from minidl.io.safe_pickle import SafeUnpickler

_TYPECODES = re.compile(r'b1|[iu][1248]|f[248]|O8')
_BYTE_ORDERS = {'<', '>', '|', '='}
# what a damaged pickle can raise inside the pure-Python unpickler
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, IndexError, KeyError, TypeError,
                  ValueError, AttributeError, struct.error, UnicodeDecodeError)


class _DType:
    """Stand-in for ``numpy.dtype(typecode, align, copy)``; BUILD gives its byte order."""

    def __init__(self, typecode, align=False, copy=True):
        if isinstance(typecode, bytes):
            typecode = typecode.decode('latin-1')
        if not (isinstance(typecode, str) and _TYPECODES.fullmatch(typecode)):
            raise pickle.UnpicklingError(f'dtype {typecode!r} is not a plain numeric or '
                                         f'object type')
        self.typecode, self.byteorder = typecode, '|'

    def set_state(self, state):
        byteorder = state[1].decode('latin-1') if isinstance(state[1], bytes) else state[1]
        if byteorder not in _BYTE_ORDERS:
            raise pickle.UnpicklingError(f'dtype byte order {byteorder!r} is not one of '
                                         f'{sorted(_BYTE_ORDERS)}')
        self.byteorder = byteorder

    def numpy(self):
        return np.dtype(object) if self.typecode == 'O8' else np.dtype(self.byteorder +
                                                                        self.typecode)


class _NDArray:
    """Stand-in for ``numpy.ndarray``: only passed to ``_reconstruct``."""


class _Array:
    """Stand-in for the empty array ``_reconstruct`` makes; BUILD fills in ``array``."""
    array = None

    def set_state(self, state):
        if not (type(state) is tuple and len(state) == 5 and isinstance(state[2], _DType)):
            raise pickle.UnpicklingError('array state is not (version, shape, dtype, '
                                         'fortran_order, data)')
        _, shape, dtype, fortran_order, data = state
        if not (type(shape) is tuple and all(type(n) is int and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f'array shape {shape!r} is not a tuple of sizes')
        dtype, size, order = dtype.numpy(), math.prod(shape), 'F' if fortran_order else 'C'
        if dtype == object:
            if type(data) is not list or len(data) != size:
                raise pickle.UnpicklingError(f'object array of shape {shape} does not hold '
                                             f'its {size} items')
            self.array = np.empty(size, object)
            for i, item in enumerate(data):  # item by item: lists must not become an axis
                self.array[i] = _resolved(item)
        else:
            if not isinstance(data, (bytes, bytearray)) or len(data) != size * dtype.itemsize:
                raise pickle.UnpicklingError(f'{dtype} array of shape {shape} does not hold '
                                             f'its {size * dtype.itemsize} bytes')
            self.array = np.frombuffer(data, dtype).copy()
        self.array = self.array.reshape(shape, order=order)


def _reconstruct(cls, shape, typecode):
    if cls is not _NDArray:
        raise pickle.UnpicklingError('_reconstruct is called on something other than '
                                     'numpy.ndarray')
    return _Array()


def _resolved(value):
    """``value``, or the array it stands for."""
    if isinstance(value, _Array):
        if value.array is None:
            raise pickle.UnpicklingError('an array is used before its state is set')
        return value.array
    return value


_GLOBALS = {('numpy', 'ndarray'): _NDArray, ('numpy', 'dtype'): _DType,
            ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
            ('numpy._core.multiarray', '_reconstruct'): _reconstruct}


class _ArrayUnpickler(SafeUnpickler):
    """Plain data and NumPy arrays; Python 2 strings stay bytes (CIFAR's pixels are one)."""

    def __init__(self, data):
        super().__init__(data, _GLOBALS, lambda module, name: pickle.UnpicklingError(
            f'pickle names {module}.{name}; only NumPy arrays and plain data are allowed'))
        self.encoding = 'bytes'

    def build(self, instance, state):
        if not isinstance(instance, (_DType, _Array)):
            raise pickle.UnpicklingError('pickle opcode BUILD is only allowed on arrays')
        instance.set_state(state)


def load(data, where):
    """What the pickle ``data`` holds, with arrays made NumPy arrays (at the top or as the
    values of a top-level dict); anything else is a ValueError naming ``where``."""
    try:
        value = _ArrayUnpickler(data).load()
        if isinstance(value, dict):
            return {key: _resolved(item) for key, item in value.items()}
        return _resolved(value)
    except _PICKLE_ERRORS as exc:
        raise ValueError(f'{where} is not a pickle of NumPy arrays and plain data '
                         f'({type(exc).__name__}: {exc})') from exc
