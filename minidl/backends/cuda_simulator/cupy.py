"""The slice of CuPy that minidl uses, over NumPy memory: the simulator's "device".

:class:`ndarray` is a NumPy array that minidl treats as GPU memory (``is_gpu_array`` is true
for it). Where real CuPy differs from NumPy in a way minidl's GPU path could trip on, this
module behaves like CuPy:

* an operation mixing a device array with a NumPy array raises TypeError (CuPy never copies
  host memory implicitly); NumPy and Python scalars mix freely;
* :func:`empty` and :func:`empty_like` return garbage, not zeros (NaN for floats, 0xA5 bytes
  otherwise), as uninitialised GPU memory would;
* :func:`argsort` and ``ndarray.argsort`` are stable, as CuPy's always are;
* reductions and indexing give 0-d device arrays, never NumPy scalars.

Every other NumPy function is here under its own name (``zeros``, ``exp``, ``matmul``: NumPy's
BLAS matmul stands in for cuBLAS) and returns device arrays. :class:`RawModule` compiles CUDA C
with the host compiler (see :mod:`minidl.backends.cuda_simulator`). ``cuda.nccl`` is NCCL's
all-reduce over MPI (:mod:`.nccl`), with the streams and events it needs (:mod:`.streams`).
"""
import ctypes
import types

import numpy

from minidl.backends import cuda_simulator
from minidl.backends.cuda_simulator import nccl, streams

__version__ = 'minidl CUDA simulator'
RawModule = cuda_simulator.RawModule

_GARBAGE_BYTE = 0xA5


class ndarray(numpy.ndarray):
    """A simulated device array: NumPy memory that must not mix with host NumPy arrays."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        for value in inputs + (out or ()):
            if isinstance(value, numpy.ndarray) and not isinstance(value, ndarray):
                raise TypeError(f'minidl CUDA simulator: numpy.{ufunc.__name__} got a NumPy '
                                f'array {value.shape} beside a device array; CuPy does not '
                                'mix host and device memory: move it with cupy.asarray first')
        inputs = tuple(_host(value) for value in inputs)
        if out is not None:
            kwargs['out'] = tuple(_host(value) for value in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return _device(result) if out is None else out[0] if len(out) == 1 else out

    def __array_wrap__(self, array, context=None, return_scalar=False):
        return array.view(ndarray)

    def __getitem__(self, key):
        return _device(super().__getitem__(key))

    def get(self, stream=None, order='C', out=None):
        """A NumPy copy in host memory (``cupy.ndarray.get``)."""
        if out is not None:
            out[...] = _host(self)
            return out
        return numpy.array(_host(self), order=order)

    def argsort(self, axis=-1, kind=None, order=None):
        return _device(numpy.argsort(_host(self), axis=axis, kind='stable', order=order))

    @property
    def __cuda_array_interface__(self):
        """The CUDA array interface (version 3) a CuPy array offers: shape, dtype, strides and
        the device pointer that libraries taking raw pointers, such as NCCL, are given."""
        return {'shape': self.shape, 'typestr': self.dtype.str, 'version': 3,
                'data': (self.ctypes.data if self.size else 0, not self.flags.writeable),
                'strides': None if self.flags.c_contiguous else self.strides}

    def __repr__(self):
        return f'{numpy.array_repr(_host(self))[:-1]}, device=simulated)'


def _returning_arrays(method):
    """An ndarray method whose scalar results become 0-d device arrays."""
    def run(self, *args, **kwargs):
        return _device(method(self, *args, **kwargs))
    run.__name__ = run.__qualname__ = method.__name__
    run.__doc__ = method.__doc__
    return run


for _name in ('all', 'any', 'argmax', 'argmin', 'max', 'mean', 'min', 'prod', 'std', 'sum', 'var'):
    setattr(ndarray, _name, _returning_arrays(getattr(numpy.ndarray, _name)))


def _host(value):
    return value.view(numpy.ndarray) if isinstance(value, ndarray) else value


def _device(value):
    """Results as device arrays: arrays (and those in a tuple or list) are viewed as ndarray,
    NumPy scalars become 0-d arrays."""
    if isinstance(value, numpy.ndarray):
        return value.view(ndarray)
    if isinstance(value, numpy.generic):
        return numpy.asarray(value).view(ndarray)
    if isinstance(value, (tuple, list)):
        return type(value)(_device(v) for v in value)
    return value


def _unwrapped(args):
    return [_unwrapped(a) if isinstance(a, (list, tuple)) else _host(a) for a in args]


def _on_device(function):
    """A NumPy function taking and returning device arrays."""
    def run(*args, **kwargs):
        return _device(function(*_unwrapped(args),
                                **{k: _host(v) for k, v in kwargs.items()}))
    run.__name__ = run.__qualname__ = getattr(function, '__name__', 'function')
    run.__doc__ = function.__doc__
    return run


def __getattr__(name):
    """NumPy's functions on device arrays; its types, dtypes, ufuncs and constants as they are
    (ufuncs reach :meth:`ndarray.__array_ufunc__` by themselves)."""
    value = getattr(numpy, name)
    if isinstance(value, (type, numpy.ufunc, types.ModuleType)) or not callable(value):
        return value
    return _on_device(value)


def asarray(a, dtype=None, order=None):
    """A device array of ``a`` (a copy when ``a`` is host memory, ``a`` itself when it already
    is a device array of that dtype)."""
    if isinstance(a, ndarray) and (dtype is None or numpy.dtype(dtype) == a.dtype):
        return a
    return numpy.array(_host(a), dtype=dtype, order=order or 'K').view(ndarray)


def asnumpy(a, stream=None, order='C', out=None):
    """A NumPy copy of a device (or host) array."""
    return a.get(order=order, out=out) if isinstance(a, ndarray) else numpy.asarray(a, order=order)


def empty(shape, dtype=float, order='C'):
    """Uninitialised device memory: NaN for floats, 0xA5 bytes for every other dtype."""
    return _garbage(numpy.empty(shape, dtype=dtype, order=order))


def empty_like(prototype, dtype=None, order='K', subok=None, shape=None):
    """Uninitialised device memory shaped like ``prototype`` (see :func:`empty`)."""
    return _garbage(numpy.empty_like(_host(prototype), dtype=dtype, order=order, shape=shape))


def _garbage(array):
    if numpy.issubdtype(array.dtype, numpy.inexact):
        array.fill(numpy.nan)
    else:
        ctypes.memset(array.ctypes.data, _GARBAGE_BYTE, array.nbytes)
    return array.view(ndarray)


def argsort(a, axis=-1, kind=None, order=None):
    """Stable, as CuPy's argsort always is."""
    return _device(numpy.argsort(_host(a), axis=axis, kind='stable', order=order))


class _Runtime:
    """``cupy.cuda.runtime``: one simulated device, number 0."""

    @staticmethod
    def getDevice():
        return 0

    @staticmethod
    def getDeviceCount():
        return 1


cuda = types.SimpleNamespace(runtime=_Runtime(), nccl=nccl, Stream=streams.Stream,
                             Event=streams.Event, get_current_stream=streams.get_current_stream)
