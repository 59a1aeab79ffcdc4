"""The CUDA simulator: minidl's CUDA kernels run on the CPU with CUDA's execution semantics.

Test and teaching infrastructure, not a backend to train with. It stands in for the two things
:mod:`minidl.backends.cuda` needs from CuPy: device arrays (NumPy memory here, see
:mod:`.cupy`) and ``RawModule(code, name_expressions).get_function(name)(grid, block, args)``.

* :class:`RawModule` compiles the CUDA C text unchanged with the host C++ compiler (``$CXX`` or
  g++) after ``cuda_runtime_sim.h``, which maps ``__global__``, ``threadIdx``, ``__shared__``,
  ``__syncthreads``, the ``__shfl_*_sync`` family and CUDA's math functions onto the host. Every
  name expression gets an ``extern "C"`` launch shim; the shared library is cached by a hash of
  everything that went into it under ``$MINIDL_CACHE/cuda-sim`` (default ``~/.cache/minidl``).
* A launch runs each block of the grid in turn, every thread of a block a fiber, so barriers
  and 32-lane warp shuffles wait for the threads they name (see ``cuda_runtime_sim.cpp``).
* It checks what a GPU hides: argument types against the kernel's signature, reads and writes
  outside every pointer argument (guarded copies), writes through const pointers, barriers and
  shuffles that a GPU would hang on or leave undefined; :func:`.cupy.empty` fills new arrays
  with NaN (floats) or 0xA5 bytes, so an output element a kernel forgets to write shows.

Selecting it: ``MINIDL_CUDA_SIMULATOR=1`` (or :func:`simulating` in a test) makes
:func:`minidl.backends.cupy_module` answer with the simulated CuPy whenever real CuPy sees no
device; a real GPU always wins.
"""
import collections
import contextlib
import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy

from minidl import backends

HERE = Path(__file__).resolve().parent
HEADER = HERE / 'cuda_runtime_sim.h'
RUNTIME = HERE / 'cuda_runtime_sim.cpp'
FLAGS = ('-O1', '-g', '-fPIC', '-shared', '-fvisibility=hidden', '-fno-extern-tls-init',
         '-Wall')
DYNAMIC_SHARED_BYTES = 48 * 1024   # each `extern __shared__` array, CUDA's default limit

# How many times each kernel instance has run, e.g. launches['sgd_kernel<float, int>'].
launches = collections.Counter()


class SimulatorError(RuntimeError):
    """A kernel did what a GPU would not report: an out-of-bounds access, a hung barrier, ..."""


def compiler():
    """The host C++ compiler's path, or None where there is none."""
    return shutil.which(os.environ.get('CXX', 'g++'))


def cache_dir():
    """Where the compiled modules live: ``$MINIDL_CACHE/cuda-sim`` or ``~/.cache/minidl/...``."""
    root = os.environ.get('MINIDL_CACHE') or Path.home() / '.cache' / 'minidl'
    return Path(root) / 'cuda-sim'


@contextlib.contextmanager
def simulating():
    """Inside the block, minidl's GPU path runs on the simulator (unless a real GPU answers)."""
    previous = os.environ.get(backends.SIMULATOR_ENV_VAR)
    os.environ[backends.SIMULATOR_ENV_VAR] = '1'
    backends._import_cupy.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            del os.environ[backends.SIMULATOR_ENV_VAR]
        else:
            os.environ[backends.SIMULATOR_ENV_VAR] = previous
        backends._import_cupy.cache_clear()


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------

_EXTERN_SHARED = re.compile(r'extern\s+__shared__\s+(?P<type>[^;\[\]]*?)\s*\b(?P<name>\w+)\s*'
                            r'\[\s*\]\s*;')


def _translation_unit(name_expressions, code):
    """The C++ file that g++ compiles: the header, a definition for every ``extern __shared__``
    array of ``code``, the kernel source itself (``kernel.cu``, included unchanged) and one
    launch shim and one signature function per name expression."""
    lines = ['#include "cuda_runtime_sim.h"']
    for match in {m['name']: m for m in _EXTERN_SHARED.finditer(code)}.values():
        lines.append(f'__shared__ {match["type"]} {match["name"]}'
                     f'[{DYNAMIC_SHARED_BYTES} / sizeof({match["type"]})];')
    lines.append('#include "kernel.cu"')
    for index, name in enumerate(name_expressions):
        lines += [f'MINIDL_SIM_EXPORT int minidl_sim_launch_{index}(',
                  '        const minidl_sim::LaunchConfig* config, void** args,',
                  '        const long long* sizes) {',
                  f'    return minidl_sim::launch(&{name}, config, args, sizes);',
                  '}',
                  f'MINIDL_SIM_EXPORT const char* minidl_sim_signature_{index}() {{',
                  f'    return minidl_sim::signature(&{name});',
                  '}']
    return '\n'.join(lines) + '\n'


@functools.cache
def _compiler_version(path):
    return subprocess.run([path, '--version'], capture_output=True, text=True).stdout


def build(code, name_expressions, options=()):
    """The path of the shared library for ``code`` and its name expressions, compiled on first
    use and then taken from the cache (a hash of the sources, the runtime, flags and compiler)."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError('minidl CUDA simulator: no C++ compiler found (install g++, or set '
                           'CXX to one)')
    unit = _translation_unit(name_expressions, code)
    flags = (*FLAGS, *options)
    digest = hashlib.sha256('\0'.join(
        [code, unit, HEADER.read_text(), RUNTIME.read_text(), *flags,
         _compiler_version(cxx)]).encode()).hexdigest()[:24]
    directory = cache_dir() / digest
    library = directory / 'module.so'
    if library.is_file():
        return library
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'kernel.cu').write_text(code)
    (directory / 'launch.cpp').write_text(unit)
    with tempfile.NamedTemporaryFile(dir=directory, suffix='.so', delete=False) as partial:
        pass
    result = subprocess.run([cxx, *flags, f'-I{HERE}', '-o', partial.name, 'launch.cpp',
                             str(RUNTIME), '-ldl'], cwd=directory, capture_output=True,
                            text=True)
    if result.returncode != 0:
        os.unlink(partial.name)
        raise RuntimeError(f'minidl CUDA simulator: {Path(cxx).name} failed on the kernel source '
                           f'(in {directory}):\n{result.stderr}')
    os.replace(partial.name, library)  # atomic: a parallel build of the same key is harmless
    return library


def _compiler_options(options):
    """NVRTC's options that mean something to g++ (``-std``, ``-D``, ``-U``); others raise."""
    kept = []
    for option in options:
        if not re.fullmatch(r'(-std=c\+\+\d\w|--std=c\+\+\d\w|-[DU]\w.*)', option):
            raise ValueError(f'minidl CUDA simulator: compiler option {option!r} has no host '
                             'equivalent; supported are -std=..., -D..., -U...')
        kept.append(option.replace('--std', '-std', 1))
    return tuple(kept)


# ---------------------------------------------------------------------------------------------
# Modules and launches
# ---------------------------------------------------------------------------------------------

class _Param(NamedTuple):
    """A kernel parameter: its NumPy dtype, whether it is a pointer and whether to const."""
    dtype: numpy.dtype
    pointer: bool
    const: bool

    @classmethod
    def parse(cls, code):
        pointer, const = code.startswith('*'), code.startswith('*c')
        return cls(numpy.dtype(code[2:] if const else code[1:] if pointer else code), pointer,
                   const)

    def __str__(self):
        return f'{"const " if self.const else ""}{self.dtype}{" *" if self.pointer else ""}'


class _LaunchConfig(ctypes.Structure):
    _fields_ = [('grid', ctypes.c_uint * 3), ('block', ctypes.c_uint * 3),
                ('shared_bytes', ctypes.c_uint64)]


class RawModule:
    """``cupy.RawModule`` for the simulator: compiles ``code`` with every template instance in
    ``name_expressions``, whose kernels :meth:`get_function` returns."""

    def __init__(self, code, options=(), name_expressions=(), **_cupy_only):
        self.name_expressions = list(name_expressions)
        self._library = ctypes.CDLL(str(build(code, self.name_expressions,
                                              _compiler_options(options))))
        self._library.minidl_sim_error.restype = ctypes.c_char_p

    def get_function(self, name):
        if name not in self.name_expressions:
            raise KeyError(f'minidl CUDA simulator: {name!r} is not one of the name expressions '
                           f'this module was compiled with: {self.name_expressions}')
        return Function(self, name, self.name_expressions.index(name))


def _dim3(value, what):
    sizes = (value,) if isinstance(value, int) else tuple(value)
    if not 1 <= len(sizes) <= 3 or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(f'minidl CUDA simulator: {what} must be 1 to 3 positive ints, got '
                         f'{value!r}')
    return (ctypes.c_uint * 3)(*sizes, *(1,) * (3 - len(sizes)))


def _as_scalar(arg):
    """An argument as the NumPy scalar whose bytes CuPy passes (Python int and float: 64-bit)."""
    if isinstance(arg, numpy.generic):
        return arg
    if isinstance(arg, bool):
        return numpy.bool_(arg)
    if isinstance(arg, int):
        return numpy.int64(arg)
    if isinstance(arg, float):
        return numpy.float64(arg)
    raise TypeError(f'unsupported argument type {type(arg).__name__}')


class _Where(NamedTuple):
    """'kernel: argument k (type)', formatted only when an error needs it."""
    kernel: str
    k: int
    param: _Param

    def __str__(self):
        return f'{self.kernel}: argument {self.k} ({self.param})'


class Function:
    """One kernel instance; calling it launches ``grid`` blocks of ``block`` threads."""

    def __init__(self, module, name, index):
        self.name = name
        self._module = module
        library = module._library
        self._launch = getattr(library, f'minidl_sim_launch_{index}')
        self._launch.argtypes = [ctypes.POINTER(_LaunchConfig), ctypes.c_void_p, ctypes.c_void_p]
        signature = getattr(library, f'minidl_sim_signature_{index}')
        signature.restype = ctypes.c_char_p
        codes = signature().decode()
        self.params = [_Param.parse(code) for code in codes.split(',')] if codes else []

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        from minidl.backends.cuda_simulator.cupy import ndarray
        if len(args) != len(self.params):
            raise TypeError(f'{self.name} takes {len(self.params)} arguments, got {len(args)}')
        if not 0 <= shared_mem <= DYNAMIC_SHARED_BYTES:
            raise ValueError(f'{self.name}: shared_mem={shared_mem} bytes; the simulator, like '
                             f'CUDA by default, allows up to {DYNAMIC_SHARED_BYTES}')
        slots = numpy.zeros(len(args), numpy.uint64)
        sizes = numpy.full(len(args), -1, numpy.int64)
        arrays = []
        for k, (arg, param) in enumerate(zip(args, self.params)):
            where = _Where(self.name, k, param)
            if param.pointer:
                if arg is None:
                    continue
                if not isinstance(arg, ndarray):
                    raise TypeError(f'{where} needs a device array or None, got '
                                    f'{type(arg).__name__}')
                if arg.dtype != param.dtype:
                    raise TypeError(f'{where} got an array of {arg.dtype}')
                if not arg.flags.c_contiguous:
                    raise ValueError(f'{where} got a non-contiguous array of shape {arg.shape} '
                                     f'and strides {arg.strides}; the kernel reads it as dense')
                for j, other in arrays:
                    same = (other.ctypes.data, other.nbytes) == (arg.ctypes.data, arg.nbytes)
                    if not same and numpy.shares_memory(arg, other):
                        raise ValueError(f'{where} overlaps argument {j} without being it')
                arrays.append((k, arg))
                slots[k] = arg.ctypes.data
                sizes[k] = arg.nbytes
            else:
                value = _as_scalar(arg)
                if value.dtype != param.dtype:
                    raise TypeError(f'{where} got {value} of {value.dtype}: CuPy would pass '
                                    f'its {value.dtype.itemsize} bytes as they are')
                slots[k:k + 1].view(numpy.uint8)[:value.dtype.itemsize] = numpy.frombuffer(
                    value.tobytes(), numpy.uint8)
        pointers = (ctypes.c_void_p * max(len(args), 1))(
            *(slots.ctypes.data + 8 * k for k in range(len(args))))
        config = _LaunchConfig(_dim3(grid, 'grid'), _dim3(block, 'block'), shared_mem)
        launches[self.name] += 1
        if self._launch(ctypes.byref(config), pointers, sizes.ctypes.data) != 0:
            message = self._module._library.minidl_sim_error().decode()
            raise SimulatorError(f'{self.name}: {message}')
