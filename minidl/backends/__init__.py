"""Where arrays live: the one module that knows NumPy from CuPy.

Everything else asks ``get_array_module(x)`` for ``xp`` and writes code once. CuPy is imported
lazily, the first time a GPU is asked for or a CuPy array is seen, so a CPU-only install never
pays for it. The kernels that run on those arrays are chosen in :mod:`minidl.backends.kernels`.

Where CuPy sees no device, ``MINIDL_CUDA_SIMULATOR=1`` puts the CUDA simulator's stand-in for
CuPy in its place (:mod:`minidl.backends.cuda_simulator`): the same GPU code path, on the CPU.
"""
import functools
import os
import sys

import numpy

DEVICES = ('cpu', 'gpu')
SIMULATOR_ENV_VAR = 'MINIDL_CUDA_SIMULATOR'
_SIMULATED_CUPY = 'minidl.backends.cuda_simulator.cupy'

_GPU_HELP = ("minidl: the GPU was requested but {why}. Install the GPU extra with "
             "`pip install minidl[gpu]` (CuPy for CUDA 12) on a machine with an NVIDIA GPU, "
             "or use device='cpu'.")


@functools.cache
def _import_cupy():
    """Return the cupy module if it imports and sees a device, else the simulated one when
    ``MINIDL_CUDA_SIMULATOR=1``, else the reason there is none."""
    cupy, why = _import_real_cupy()
    if cupy is None and os.environ.get(SIMULATOR_ENV_VAR) == '1':
        from minidl.backends.cuda_simulator import cupy
        return cupy, None
    return cupy, why


def _import_real_cupy():
    try:
        import cupy
    except ImportError as exc:
        return None, f'CuPy is not installed ({exc})'
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, 'CuPy sees no CUDA device'
    except Exception as exc:  # CUDA driver errors come in many types
        return None, f'CuPy cannot reach a CUDA device ({exc})'
    return cupy, None


def gpu_available():
    """True when CuPy is installed and at least one CUDA device answers."""
    return _import_cupy()[0] is not None


def cupy_module():
    """The cupy module, or one clear RuntimeError saying how to get it."""
    cupy, why = _import_cupy()
    if cupy is None:
        raise RuntimeError(_GPU_HELP.format(why=why))
    return cupy


def is_gpu_array(array):
    """True for a CuPy (or simulated CuPy) array; never imports CuPy just to answer."""
    if type(array) is numpy.ndarray:  # the common case, asked dozens of times a step
        return False
    for name in ('cupy', _SIMULATED_CUPY):
        cupy = sys.modules.get(name)
        if cupy is not None and isinstance(array, cupy.ndarray):
            return True
    return False


def get_array_module(*arrays):
    """``numpy`` or ``cupy`` for the given arrays; mixing devices is a ValueError."""
    if all(type(a) is numpy.ndarray for a in arrays):
        return numpy
    devices = {device_of(a) for a in arrays if a is not None and not numpy.isscalar(a)}
    if len(devices) > 1:
        raise ValueError('minidl: arrays live on different devices (cpu and gpu); move them '
                         "to one device first with .to('cpu') or .to('gpu').")
    return cupy_module() if devices == {'gpu'} else numpy


def device_of(array):
    """'gpu' for a CuPy array, 'cpu' for anything else."""
    return 'gpu' if is_gpu_array(array) else 'cpu'


def check_device(device):
    """Validate a device name and return it."""
    if device not in DEVICES:
        raise ValueError(f"minidl: device must be one of {DEVICES}, got {device!r}")
    return device


def to_device(array, device):
    """Copy ``array`` to 'cpu' (NumPy) or 'gpu' (CuPy); a no-op when it is already there."""
    check_device(device)
    if device == 'gpu':
        return cupy_module().asarray(array)
    return array.get() if is_gpu_array(array) else numpy.asarray(array)
