"""The GPU kernels: CUDA C from ``kernels/*.cu``, compiled at run time, on CuPy arrays.

Every function here has the name and signature of its twin in :mod:`minidl.backends.reference`
(the readable NumPy spec): it takes CuPy arrays and returns new CuPy arrays, except the
optimizer updates, which work in place. GEMMs are not here: they are ``cupy.matmul`` (cuBLAS).

How a call reaches the GPU:

* The sources, one file per kernel family (``im2col.cu``, ``pooling.cu``, ...), are read once
  and compiled by ``cupy.RawModule`` (NVRTC) the first time a kernel of that family runs on a
  device; the module is cached per (family, device). CuPy also keeps the binaries on disk, so a
  later process skips the compilation.
* Each kernel is a C++ template over the element type (``float``, ``double``) and the index
  type (``int``, ``long long``). A call uses 32-bit indices when everything it touches has
  fewer than about 2**31 elements, since 64-bit integer division is much slower on the GPU.
  The max-pooling kernels take a third type, their argmax's (``unsigned char``, ``int``,
  ``long long``: :func:`minidl.backends.reference.argmax_dtype`).
* Launches use 256 threads per block and grid-stride loops, so the grid can be capped at
  65536 blocks however large the array is.

CuPy is imported only when a kernel runs, so importing this module never needs a GPU.
"""
import functools
import importlib.resources
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy

from minidl.backends import cupy_module
from minidl.backends.reference import adam_step_size, argmax_dtype, nadam_coefficients

# The kernels of each family, named as in kernels/<family>.cu.
FAMILIES = {
    'im2col': ('im2col_kernel', 'col2im_kernel'),
    'pooling': ('maxpool2d_forward_kernel', 'maxpool2d_backward_kernel',
                'avgpool2d_forward_kernel', 'avgpool2d_backward_kernel',
                'global_maxpool_forward_kernel', 'global_maxpool_backward_kernel'),
    'elementwise': ('bias_act_forward_kernel', 'bias_act_backward_kernel'),
    'random': ('dropout_mask_kernel',),
    'loss': ('softmax_xent_forward_kernel', 'softmax_xent_backward_kernel'),
    'optimizers': ('sgd_kernel', 'rmsprop_kernel', 'adam_kernel', 'adagrad_kernel',
                   'adadelta_kernel', 'adamax_kernel', 'nadam_kernel'),
    'embedding': ('embedding_backward_kernel',),
}
_FAMILY_OF = {kernel: family for family, kernels in FAMILIES.items() for kernel in kernels}

# The C++ template arguments for each NumPy dtype.
ELEMENT_TYPES = {numpy.dtype(numpy.float32): 'float', numpy.dtype(numpy.float64): 'double'}
INDEX_TYPES = {numpy.dtype(numpy.int32): 'int', numpy.dtype(numpy.int64): 'long long'}
ARGMAX_TYPES = {numpy.dtype(numpy.uint8): 'unsigned char', **INDEX_TYPES}
# The kernels with an argmax array, whose type is their third template argument.
_ARGMAX_KERNELS = {'maxpool2d_forward_kernel', 'maxpool2d_backward_kernel',
                   'global_maxpool_forward_kernel', 'global_maxpool_backward_kernel'}

# The activation codes of `enum Activation` in kernels/elementwise.cu.
_ACTIVATIONS = {'linear': 0, 'relu': 1, 'sigmoid': 2, 'tanh': 3}

_THREADS = 256            # per block; a multiple of the warp size, as loss.cu requires
_MAX_BLOCKS = 2 ** 16     # grid cap: grid-stride loops cover the rest
_WARP_SIZE = 32           # the loss kernels give each row one warp
# 32-bit indices are safe when every index, and i + grid stride in the loops, stays < 2**31.
_INT32_LIMIT = 2 ** 31 - 1 - _MAX_BLOCKS * _THREADS


# ---------------------------------------------------------------------------------------------
# Sources, compilation and launch
# ---------------------------------------------------------------------------------------------

def kernel_dir():
    """The directory holding the ``.cu`` sources.

    In a source checkout they are the top-level ``kernels/`` directory, next to the ``minidl``
    package being run; an installed minidl ships them as package data of ``minidl.kernels``.
    The checkout comes first, so a second checkout (a git worktree) run against an editable
    install of the first compiles its own sources, the ones that match its Python code.
    """
    checkout = Path(__file__).resolve().parents[2] / 'kernels'
    if all((checkout / f'{family}.cu').is_file() for family in FAMILIES):
        return checkout
    return importlib.resources.files('minidl.kernels')


_INCLUDE = re.compile(r'^#include "(?P<name>[^"]+)"$', re.MULTILINE)


def kernel_source(family):
    """The CUDA C text of one family, with its ``#include "common.cuh"`` pasted in.

    Pasting instead of passing an include path keeps every byte the compiler sees in the text
    CuPy hashes for its on-disk cache, so an edit to the header recompiles every family; and it
    works when the package data is not a real directory (a zip import).
    """
    directory = kernel_dir()
    source = directory.joinpath(f'{family}.cu').read_text()
    return _INCLUDE.sub(lambda match: directory.joinpath(match['name']).read_text(), source)


def instance_name(kernel, dtype, index_dtype, argmax_type=None):
    """The template instance for its dtypes, e.g. 'im2col_kernel<float, int>', or
    'maxpool2d_forward_kernel<float, int, unsigned char>' with an argmax dtype."""
    types = [ELEMENT_TYPES[numpy.dtype(dtype)], INDEX_TYPES[numpy.dtype(index_dtype)]]
    if argmax_type is not None:
        types.append(ARGMAX_TYPES[numpy.dtype(argmax_type)])
    return f'{kernel}<{", ".join(types)}>'


def name_expressions(family):
    """Every template instance of a family, the ones NVRTC is asked to compile."""
    return [instance_name(kernel, dtype, index_dtype, argmax_type)
            for kernel in FAMILIES[family] for dtype in ELEMENT_TYPES
            for index_dtype in INDEX_TYPES
            for argmax_type in (ARGMAX_TYPES if kernel in _ARGMAX_KERNELS else [None])]


@functools.cache
def _module(family, device_id):
    """The compiled RawModule of a family on a device (NVRTC runs here, once)."""
    return cupy_module().RawModule(code=kernel_source(family), options=('-std=c++14',),
                                   name_expressions=name_expressions(family))


@functools.cache
def _function(kernel, dtype, index_dtype, argmax_type, device_id):
    return _module(_FAMILY_OF[kernel], device_id).get_function(
        instance_name(kernel, dtype, index_dtype, argmax_type))


def _launch(kernel, dtype, threads, *args, argmax_type=None):
    """Run ``kernel<dtype, index>`` on at least ``threads`` threads (grid-stride covers the rest);
    a max-pooling kernel is ``kernel<dtype, index, argmax_type>``.

    Arguments go to the kernel in order. Python ints become the index type ``I``, Python floats
    the element type ``T``; arrays (passed as pointers), ``None`` (a null pointer) and NumPy
    scalars (``numpy.uint32`` seeds, ``numpy.int32`` codes, ``numpy.bool_`` flags) pass as
    they are. Every index a kernel computes is below the size of one of its arrays or below
    ``threads``, which is how the index type is chosen.
    """
    if threads == 0:
        return
    cupy = cupy_module()
    largest = max([threads] + [arg.size for arg in args if isinstance(arg, cupy.ndarray)])
    index_type = numpy.int32 if largest <= _INT32_LIMIT else numpy.int64
    element_type = numpy.dtype(dtype).type

    def typed(arg):
        if type(arg) is int:
            return index_type(arg)
        if type(arg) is float:
            return element_type(arg)
        return arg

    function = _function(kernel, numpy.dtype(dtype), numpy.dtype(index_type),
                         None if argmax_type is None else numpy.dtype(argmax_type),
                         cupy.cuda.runtime.getDevice())
    blocks = min(-(-threads // _THREADS), _MAX_BLOCKS)
    function((blocks,), (_THREADS,), tuple(typed(arg) for arg in args))


def _contiguous(array):
    return None if array is None else cupy_module().ascontiguousarray(array)


class _Window(NamedTuple):
    """The geometry of a windowed op on (N, H, W, C), in the parameter order of the kernels in
    im2col.cu and pooling.cu, so ``*win`` passes it to them."""
    n: int
    h: int
    w: int
    c: int
    oh: int
    ow: int
    kh: int
    kw: int
    sh: int
    sw: int
    top: int
    left: int

    @property
    def input_shape(self):
        return self.n, self.h, self.w, self.c

    @property
    def output_shape(self):
        return self.n, self.oh, self.ow, self.c


def _window(x_shape, ksize, stride, pad, dilation=(1, 1)):
    """The window geometry, with ``OH = (H + top + bottom - dh*(kh-1) - 1) // sh + 1`` and
    likewise OW (the rows and columns of padding after the input only shape OH and OW)."""
    n, h, w, c = (int(size) for size in x_shape)
    (kh, kw), (sh, sw), (dh, dw) = ((int(a), int(b)) for a, b in (ksize, stride, dilation))
    (top, bottom), (left, right) = ((int(a), int(b)) for a, b in pad)
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    return _Window(n, h, w, c, oh, ow, kh, kw, sh, sw, top, left)


# ---------------------------------------------------------------------------------------------
# im2col.cu
# ---------------------------------------------------------------------------------------------

def im2col(x, ksize, stride, pad, dilation):
    """x (N, H, W, C) -> cols (N, OH, OW, kh, kw, C); zeros where a window reads padding."""
    cupy = cupy_module()
    x = cupy.ascontiguousarray(x)
    win = _window(x.shape, ksize, stride, pad, dilation)
    cols = cupy.empty(win.output_shape[:3] + (win.kh, win.kw, win.c), dtype=x.dtype)
    _launch('im2col_kernel', x.dtype, cols.size, x, cols, *win, *map(int, dilation))
    return cols


def col2im(cols, x_shape, ksize, stride, pad, dilation):
    """cols (N, OH, OW, kh, kw, C) -> dx (N, H, W, C), the adjoint of im2col (a gather)."""
    cupy = cupy_module()
    cols = cupy.ascontiguousarray(cols)
    win = _window(x_shape, ksize, stride, pad, dilation)
    dx = cupy.empty(win.input_shape, dtype=cols.dtype)
    _launch('col2im_kernel', cols.dtype, dx.size, cols, dx, *win, *map(int, dilation))
    return dx


# ---------------------------------------------------------------------------------------------
# pooling.cu
# ---------------------------------------------------------------------------------------------

def maxpool2d_forward(x, ksize, stride, pad):
    """x (N, H, W, C) -> y (N, OH, OW, C) and argmax (same shape, ``argmax_dtype(kh * kw)``)
    = p*kw + q."""
    cupy = cupy_module()
    x = cupy.ascontiguousarray(x)
    win = _window(x.shape, ksize, stride, pad)
    y = cupy.empty(win.output_shape, dtype=x.dtype)
    argmax = cupy.empty(y.shape, dtype=argmax_dtype(win.kh * win.kw))
    _launch('maxpool2d_forward_kernel', x.dtype, y.size, x, y, argmax, *win,
            argmax_type=argmax.dtype)
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape, ksize, stride, pad):
    """dy (N, OH, OW, C) -> dx (N, H, W, C): each dy goes to its window's argmax."""
    cupy = cupy_module()
    dy = cupy.ascontiguousarray(dy)
    argmax = cupy.ascontiguousarray(argmax)
    win = _window(x_shape, ksize, stride, pad)
    dx = cupy.empty(win.input_shape, dtype=dy.dtype)
    _launch('maxpool2d_backward_kernel', dy.dtype, dx.size, dy, argmax, dx, *win,
            argmax_type=argmax.dtype)
    return dx


def avgpool2d_forward(x, ksize, stride, pad):
    """x (N, H, W, C) -> y (N, OH, OW, C), the mean over each window's non-padding positions."""
    cupy = cupy_module()
    x = cupy.ascontiguousarray(x)
    win = _window(x.shape, ksize, stride, pad)
    y = cupy.empty(win.output_shape, dtype=x.dtype)
    _launch('avgpool2d_forward_kernel', x.dtype, y.size, x, y, *win)
    return y


def avgpool2d_backward(dy, x_shape, ksize, stride, pad):
    """dy (N, OH, OW, C) -> dx (N, H, W, C), the adjoint of avgpool2d_forward."""
    cupy = cupy_module()
    dy = cupy.ascontiguousarray(dy)
    win = _window(x_shape, ksize, stride, pad)
    dx = cupy.empty(win.input_shape, dtype=dy.dtype)
    _launch('avgpool2d_backward_kernel', dy.dtype, dx.size, dy, dx, *win)
    return dx


def global_maxpool_forward(x):
    """x (N, L, C) -> y (N, C) = max over L, argmax (N, C) in [0, L), ``argmax_dtype(L)``."""
    cupy = cupy_module()
    x = cupy.ascontiguousarray(x)
    n, length, c = x.shape
    y = cupy.empty((n, c), dtype=x.dtype)
    argmax = cupy.empty((n, c), dtype=argmax_dtype(length))
    _launch('global_maxpool_forward_kernel', x.dtype, y.size, x, y, argmax, n, length, c,
            argmax_type=argmax.dtype)
    return y, argmax


def global_maxpool_backward(dy, argmax, L):
    """dy (N, C) -> dx (N, L, C), zero except dx[n, argmax[n, c], c] = dy[n, c]."""
    cupy = cupy_module()
    dy = cupy.ascontiguousarray(dy)
    argmax = cupy.ascontiguousarray(argmax)
    n, c = dy.shape
    dx = cupy.empty((n, int(L), c), dtype=dy.dtype)
    _launch('global_maxpool_backward_kernel', dy.dtype, dx.size, dy, argmax, dx, n, int(L), c,
            argmax_type=argmax.dtype)
    return dx


# ---------------------------------------------------------------------------------------------
# elementwise.cu
# ---------------------------------------------------------------------------------------------

def bias_act_forward(x, b, activation):
    """y = act(x + b) for x (..., C), b (C,) or None."""
    cupy = cupy_module()
    x = cupy.ascontiguousarray(x)
    y = cupy.empty_like(x)
    _launch('bias_act_forward_kernel', x.dtype, x.size, x, _contiguous(b), y, x.size,
            x.shape[-1], numpy.int32(_ACTIVATIONS[activation]))
    return y


def bias_act_backward(dy, y, activation):
    """The gradient w.r.t. the pre-activation x + b, from the output y."""
    cupy = cupy_module()
    dy, y = cupy.ascontiguousarray(dy), cupy.ascontiguousarray(y)
    dz = cupy.empty_like(dy)
    _launch('bias_act_backward_kernel', dy.dtype, dy.size, dy, y, dz, dy.size,
            numpy.int32(_ACTIVATIONS[activation]))
    return dz


# ---------------------------------------------------------------------------------------------
# random.cu
# ---------------------------------------------------------------------------------------------

def dropout_mask(shape, rate, seed, step, dtype):
    """Inverted-dropout mask of ``shape``: 1/(1-rate) where kept, else 0; same bits as the CPU."""
    cupy = cupy_module()
    rate = float(rate)
    mask = cupy.empty(shape, dtype=dtype)
    threshold = min(math.floor(rate * 2 ** 32), 2 ** 32 - 1)
    _launch('dropout_mask_kernel', mask.dtype, mask.size, mask, mask.size,
            numpy.uint32(int(seed) & 0xFFFFFFFF), numpy.uint32(int(step) & 0xFFFFFFFF),
            numpy.uint32(threshold), 1.0 / (1.0 - rate))
    return mask


# ---------------------------------------------------------------------------------------------
# loss.cu
# ---------------------------------------------------------------------------------------------

def _split_target(target):
    """(labels, dense): int64 class indices (N,) or a distribution (N, K); the other is None."""
    cupy = cupy_module()
    if target.ndim == 1:
        return cupy.ascontiguousarray(target, dtype=cupy.int64), None
    return None, cupy.ascontiguousarray(target)


def softmax_xent_forward(logits, target):
    """logits (N, K) -> loss (N,) per-sample cross-entropy and probs (N, K) = softmax."""
    cupy = cupy_module()
    logits = cupy.ascontiguousarray(logits)
    n, k = logits.shape
    labels, dense = _split_target(target)
    loss = cupy.empty(n, dtype=logits.dtype)
    probs = cupy.empty_like(logits)
    _launch('softmax_xent_forward_kernel', logits.dtype, n * _WARP_SIZE,
            logits, labels, dense, loss, probs, n, k)
    return loss, probs


def softmax_xent_backward(probs, target, g):
    """dlogits (N, K) = g[:, None] * (probs * target.sum(1, keepdims=True) - target)."""
    cupy = cupy_module()
    probs, g = cupy.ascontiguousarray(probs), cupy.ascontiguousarray(g)
    n, k = probs.shape
    labels, dense = _split_target(target)
    dlogits = cupy.empty_like(probs)
    _launch('softmax_xent_backward_kernel', probs.dtype, n * _WARP_SIZE,
            probs, labels, dense, g, dlogits, n, k)
    return dlogits


# ---------------------------------------------------------------------------------------------
# embedding.cu
# ---------------------------------------------------------------------------------------------

def embedding_backward(ids, dy, vocab_size):
    """ids (S...), dy (S..., D) -> dW (vocab_size, D), repeated ids accumulating; deterministic.

    The ids are sorted stably into runs of equal ids; the kernel sums each run (see embedding.cu).
    """
    cupy = cupy_module()
    ids = cupy.ascontiguousarray(ids, dtype=cupy.int64).reshape(-1)
    d = dy.shape[-1]
    dy = cupy.ascontiguousarray(dy).reshape(ids.size, d)
    dW = cupy.zeros((int(vocab_size), d), dtype=dy.dtype)
    if ids.size == 0:
        return dW
    order = cupy.argsort(ids)  # CuPy's sort is always stable
    sorted_ids = ids[order]
    # Sorted position k starts a run when its id differs from the one before; n closes the last.
    is_start = cupy.ones(ids.size + 1, dtype=bool)
    is_start[1:-1] = sorted_ids[1:] != sorted_ids[:-1]
    starts = cupy.flatnonzero(is_start)
    runs = starts.size - 1
    _launch('embedding_backward_kernel', dy.dtype, runs * d,
            order, sorted_ids, starts, dy, dW, runs, d)
    return dW


# ---------------------------------------------------------------------------------------------
# optimizers.cu: in place; param and the state arrays must be C-contiguous (minidl allocates
# them so), because a copy would take the update with it.
# ---------------------------------------------------------------------------------------------

def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """Keras SGD with optional (Nesterov) momentum; without momentum, velocity is unused."""
    momentum = float(momentum)
    _launch('sgd_kernel', param.dtype, param.size, param, _contiguous(grad),
            velocity if momentum else None, param.size, float(lr), momentum,
            numpy.bool_(nesterov))


def rmsprop_update(param, grad, sq_avg, avg_grad, velocity, lr, rho, momentum, eps):
    """Keras RMSprop, centered when ``avg_grad`` is given, with momentum when ``velocity`` is."""
    _launch('rmsprop_kernel', param.dtype, param.size, param, _contiguous(grad), sq_avg,
            avg_grad, velocity, param.size, float(lr), float(rho), 1.0 - float(rho),
            float(momentum), float(eps))


def adam_update(param, grad, m, v, v_max, lr, beta1, beta2, eps, t):
    """Adam at 1-based step t, the bias correction folded into the step size; AMSGrad when
    ``v_max`` is given."""
    beta1, beta2 = float(beta1), float(beta2)
    _launch('adam_kernel', param.dtype, param.size, param, _contiguous(grad), m, v, v_max,
            param.size, adam_step_size(lr, beta1, beta2, t), beta1, 1.0 - beta1, beta2,
            1.0 - beta2, float(eps))


def adagrad_update(param, grad, accumulator, lr, eps):
    """acc += g^2;  param -= lr g / sqrt(acc + eps)."""
    _launch('adagrad_kernel', param.dtype, param.size, param, _contiguous(grad), accumulator,
            param.size, float(lr), float(eps))


def adadelta_update(param, grad, sq_avg, delta_sq_avg, lr, rho, eps):
    """Adadelta: running averages of g^2 and of the squared steps set each step's size."""
    _launch('adadelta_kernel', param.dtype, param.size, param, _contiguous(grad), sq_avg,
            delta_sq_avg, param.size, float(lr), float(rho), 1.0 - float(rho), float(eps))


def adamax_update(param, grad, m, u, lr, beta1, beta2, eps, t):
    """Adamax at 1-based step t, m's bias correction folded into the step size."""
    beta1 = float(beta1)
    _launch('adamax_kernel', param.dtype, param.size, param, _contiguous(grad), m, u,
            param.size, float(lr) / (1.0 - beta1 ** t), beta1, 1.0 - beta1, float(beta2),
            float(eps))


def nadam_update(param, grad, m, v, lr, beta1, beta2, eps, t, u_product):
    """Nadam at 1-based step t, the per-step coefficients computed once on the host."""
    beta1, beta2 = float(beta1), float(beta2)
    _launch('nadam_kernel', param.dtype, param.size, param, _contiguous(grad), m, v,
            param.size, *nadam_coefficients(lr, beta1, beta2, t, u_product), beta1,
            1.0 - beta1, beta2, 1.0 - beta2, float(eps))
