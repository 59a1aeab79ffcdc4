"""The kernel dispatch point: ``from minidl.backends import kernels; kernels.im2col(x, ...)``.

Every kernel has three implementations with one name and signature: :mod:`reference` (NumPy,
the readable spec), :mod:`numba_cpu` (Numba) and :mod:`cuda` (CUDA C through CuPy). A call
here runs the one that fits its first argument: CuPy arrays go to CUDA; NumPy arrays go to
Numba, unless ``MINIDL_CPU_KERNELS=reference`` is set (read at every call, or overridden with
:func:`set_cpu_kernels`) or Numba cannot be imported, which warns once and uses the reference.

:func:`dropout_mask` has no array argument to go by: it takes the array it will mask as
``like=``. The fast modules are imported on first use, so importing minidl neither compiles
Numba kernels nor touches CuPy.
"""
import functools
import importlib
import inspect
import os
import warnings

from minidl.backends import gpu_available, is_gpu_array, reference

KERNELS = ('im2col', 'col2im', 'maxpool2d_forward', 'maxpool2d_backward', 'avgpool2d_forward',
           'avgpool2d_backward', 'global_maxpool_forward', 'global_maxpool_backward',
           'bias_act_forward', 'bias_act_backward', 'dropout_mask', 'softmax_xent_forward',
           'softmax_xent_backward', 'embedding_backward', 'sgd_update', 'rmsprop_update',
           'adam_update', 'adagrad_update', 'adadelta_update', 'adamax_update', 'nadam_update')

MODULES = {'reference': 'minidl.backends.reference', 'numba': 'minidl.backends.numba_cpu',
           'cuda': 'minidl.backends.cuda'}
CPU_KERNELS = ('numba', 'reference')
ENV_VAR = 'MINIDL_CPU_KERNELS'

_cpu_override = [None]


@functools.cache
def get(name):
    """The implementation module ``name`` ('reference', 'numba' or 'cuda'); ImportError when
    it cannot be loaded here (tests use this to call one implementation directly)."""
    if name not in MODULES:
        raise ValueError(f'minidl: unknown kernel implementation {name!r}; expected one of '
                         f'{tuple(MODULES)}')
    return importlib.import_module(MODULES[name])


def implementations():
    """The implementation names usable on this machine, e.g. ['reference', 'numba']."""
    names = ['reference']
    if _import_error('numba') is None:
        names.append('numba')
    if gpu_available() and _import_error('cuda') is None:
        names.append('cuda')
    return names


def _import_error(name):
    """The ImportError that loading implementation ``name`` raises here, or None."""
    try:
        get(name)
    except ImportError as exc:
        return exc
    return None


def set_cpu_kernels(name):
    """Run NumPy arrays on 'numba' or 'reference' kernels (None: follow ``MINIDL_CPU_KERNELS``
    again). Returns the previous setting, so a caller can restore it."""
    if name is not None:
        _check_cpu_kernels(name, 'set_cpu_kernels')
    previous, _cpu_override[0] = _cpu_override[0], name
    return previous


def _check_cpu_kernels(name, source):
    if name not in CPU_KERNELS:
        raise ValueError(f'minidl: {source} must be one of {CPU_KERNELS}, got {name!r}')
    return name


def _requested_cpu_kernels():
    if _cpu_override[0] is not None:
        return _cpu_override[0]
    return _check_cpu_kernels(os.environ.get(ENV_VAR, 'numba'), ENV_VAR)


@functools.cache
def _numba_loads():
    """Whether the Numba kernels import; the first failure warns (once per process)."""
    error = _import_error('numba')
    if error is not None:
        warnings.warn(f'minidl: Numba is not available ({error}), so the CPU runs the slow '
                      'NumPy reference kernels; `pip install numba` for the fast ones.',
                      RuntimeWarning, stacklevel=4)
    return error is None


def implementation_for(array):
    """'cuda', 'numba' or 'reference': the implementation a kernel call on ``array`` runs
    (``None`` stands for a CPU call without an array, as for :func:`dropout_mask`)."""
    if is_gpu_array(array):
        return 'cuda'
    if _requested_cpu_kernels() == 'numba' and _numba_loads():
        return 'numba'
    return 'reference'


def _dispatcher(name):
    """A function named like the kernel that calls the implementation for its first argument;
    it carries the reference's signature and docstring, the spec of the kernel."""
    spec = getattr(reference, name)
    first = next(iter(inspect.signature(spec).parameters))

    @functools.wraps(spec)
    def kernel(*args, **kwargs):
        array = args[0] if args else kwargs[first]
        return getattr(get(implementation_for(array)), name)(*args, **kwargs)
    return kernel


im2col = _dispatcher('im2col')
col2im = _dispatcher('col2im')
maxpool2d_forward = _dispatcher('maxpool2d_forward')
maxpool2d_backward = _dispatcher('maxpool2d_backward')
avgpool2d_forward = _dispatcher('avgpool2d_forward')
avgpool2d_backward = _dispatcher('avgpool2d_backward')
global_maxpool_forward = _dispatcher('global_maxpool_forward')
global_maxpool_backward = _dispatcher('global_maxpool_backward')
bias_act_forward = _dispatcher('bias_act_forward')
bias_act_backward = _dispatcher('bias_act_backward')
softmax_xent_forward = _dispatcher('softmax_xent_forward')
softmax_xent_backward = _dispatcher('softmax_xent_backward')
embedding_backward = _dispatcher('embedding_backward')
sgd_update = _dispatcher('sgd_update')
rmsprop_update = _dispatcher('rmsprop_update')
adam_update = _dispatcher('adam_update')
adagrad_update = _dispatcher('adagrad_update')
adadelta_update = _dispatcher('adadelta_update')
adamax_update = _dispatcher('adamax_update')
nadam_update = _dispatcher('nadam_update')


def dropout_mask(shape, rate, seed, step, dtype, like=None):
    """The dropout mask (see :func:`reference.dropout_mask`) on the device of ``like``.

    The mask has no array argument to dispatch on, so the caller names one: pass the array
    being dropped out as ``like`` to get a CuPy mask for a CuPy array (CPU when None).
    """
    return get(implementation_for(like)).dropout_mask(shape, rate, seed, step, dtype)
