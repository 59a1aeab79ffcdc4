"""The CPU kernels, compiled by Numba: the fast twins of :mod:`minidl.backends.reference`.

Each public function has the reference's name and signature. It allocates the output with the
input's dtype and hands it to a jitted kernel (``_name``) that fills it. The kernels with real
work run in parallel (``_kernel``): windowed ones share out the output rows ``(n, i)``,
elementwise ones the flat elements. The innermost loop always runs over the channels, which
are contiguous in channels-last arrays. Each is compiled twice, and a call with under
:data:`PARALLEL_MIN` elements runs the serial twin: waking the thread pool would cost more than
it saves. The softmax over (N, K) logits only ever runs on one thread (``_serial``).

A pooling window whose taps all lie inside the input is reduced in one pass over its channels,
the taps unrolled from a tuple of their offsets (Numba compiles one loop per window size): a
vector loop per tap, at 32 channels, costs more to enter than to run. im2col departs from the
reference's memory layout for short window rows (:func:`im2col`), not from its values.

Backward kernels of windowed ops are *gathers*: each input element sums the few column
entries that read it, found through a tap table (:func:`_taps`). Every thread writes only its
own rows, so no atomics are needed, and each sum is taken in the reference's order.

``error_model='numpy'`` lets a division by zero give inf/nan as in NumPy instead of raising,
which keeps the checks out of the inner loops. Scalars are cast to the arrays' dtype, so
float32 arithmetic stays float32. Kernels are compiled on first use for each dtype and cached
on disk (``cache=True``), so a later process starts without the compilation cost (see
``benchmarks/kernels_jit.py``). A cold compile takes seconds (10-14 s for the MNIST
convnet's nine kernels, 11 loops with the serial twins, on two cores) with nothing else to
show for it, so the first real compilation in a process prints one line to stderr
(:class:`_CompileNotice`); a load from the cache is silent.

Parallel kernels run on Numba's OpenMP pool, next to OpenBLAS's own threads for the GEMMs. By
default OpenMP threads spin for a while after each kernel, and on a small machine they then
fight the BLAS threads for the cores (a training step ran 3x slower). ``OMP_WAIT_POLICY`` is
therefore set to passive here, before the pool first starts, unless the user chose a policy.
The runtime reads it once, when first loaded: a library that loaded it earlier (PyTorch does)
has fixed the policy already, which is why the benchmarks time PyTorch in its own process.

A training step allocates the same large arrays (columns, activations, gradients) every time.
glibc's malloc gives freed memory at the top of its heap back to the operating system, and
serves every block over 32 MB with a fresh ``mmap``, unmapped again when freed. Either way the
next step gets fresh pages, and each one faults when first written: two thousand faults and a
fifth of the CPU time of an MNIST training step, and where the kernel first compacts memory to
back NumPy's large arrays with huge pages, 60 ms instead of 2 ms for one bias + ReLU pass over a
VGG16 block1 output (``benchmarks/kernels_roofline.py``). :func:`_keep_freed_memory` therefore
asks malloc to keep ``MALLOC_TOP_PAD`` freed bytes for reuse and to serve large blocks from its
heap too, so a step reuses the pages of the step before (glibc only, and not when the user tuned
malloc through the environment).
"""
import ctypes
import os
import sys
import types

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np  # noqa: E402 - after the OpenMP setting above
from llvmlite import ir  # noqa: E402
from numba import njit, prange, uint32, uint64  # noqa: E402
from numba.extending import intrinsic  # noqa: E402
from numba.core import event  # noqa: E402
from tqdm import tqdm  # noqa: E402

from minidl.backends.reference import (ACTIVATIONS, adam_step_size, argmax_dtype,
                                       dropout_threshold, nadam_coefficients, output_size)

MALLOC_TOP_PAD = 256 * 2**20
_M_TOP_PAD, _M_MMAP_MAX = -2, -4  # mallopt's parameter numbers, from glibc's <malloc.h>


def _keep_freed_memory():
    """Let glibc's malloc keep MALLOC_TOP_PAD freed bytes instead of returning them at once,
    and serve every block from its heap (no ``mmap`` per large block)."""
    if any(name.startswith('MALLOC_') for name in os.environ) or 'GLIBC_TUNABLES' in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no mallopt to call: macOS, Windows
        return
    mallopt(_M_TOP_PAD, MALLOC_TOP_PAD)
    mallopt(_M_MMAP_MAX, 0)


_keep_freed_memory()

COMPILE_NOTICE = 'minidl: compiling the Numba CPU kernels, once: later runs load them from disk'


class _CompileNotice(event.Listener):
    """Prints :data:`COMPILE_NOTICE` when Numba starts compiling one of this module's kernels
    (not when it loads one from the cache), once per process.

    Numba signals a compilation with its ``numba:compile`` event; loads from the cache raise no
    event. The line goes through ``tqdm.write`` so that a live progress bar moves below it.
    """

    def __init__(self):
        self.shown = False

    def on_start(self, compilation):
        function = getattr(compilation.data['dispatcher'], 'py_func', None)  # any user's jit too
        if not self.shown and getattr(function, '__module__', None) == __name__:
            self.shown = True
            tqdm.write(COMPILE_NOTICE, file=sys.stderr)

    def on_end(self, compilation):
        """Nothing to do when a compilation ends."""


event.register('numba:compile', _CompileNotice())

_parallel = njit(parallel=True, cache=True, fastmath=False, error_model='numpy')
_serial = njit(cache=True, fastmath=False, error_model='numpy')

# Elements in a kernel's largest array below which it runs on the calling thread. Entering a
# parallel region costs 47 us here with the pool just used and 86 us after 1 ms idle (the
# passive threads sleep), and in a training step OpenBLAS's threads, spinning after each
# GEMM, hold the other core. One thread streams several MB through a kernel in that time (a
# 2 MB max-pool forward: 72 us on one thread, 122 in parallel; a 0.45 MB col2im tile: 9
# against 84; a VGG16 im2col tile of 345,600 columns: 20 against 56), so kernels go parallel
# from 2M elements. A VGG16 training step took 6% less time than with the former thresholds
# (512K elements, 64K for windowed kernels), a cats-and-dogs one 3-6%. Only MNIST's first
# im2col, which copies runs of one value, lost: 128 us in parallel, 181 on one thread, which
# its whole step does not notice.
PARALLEL_MIN = 2 ** 21


class _kernel:
    """A kernel loop compiled twice, across the thread pool and on the calling thread alone;
    a call runs the serial twin when its largest array has fewer than ``parallel_min``
    (:data:`PARALLEL_MIN`) elements.

    Each twin is compiled the first time it is needed. The serial one is compiled from a copy
    of the function under another name, so the two keep separate entries in Numba's cache.
    """

    def __init__(self, function):
        self.parallel_min = PARALLEL_MIN
        self.py_func = function  # as a Numba dispatcher names its Python source
        self.parallel = _parallel(function)
        twin = types.FunctionType(function.__code__, function.__globals__,
                                  f'{function.__name__}_serial', function.__defaults__,
                                  function.__closure__)
        twin.__qualname__ = f'{function.__qualname__}_serial'
        self.serial = _serial(twin)

    def __call__(self, *args):
        work = max(arg.size for arg in args if isinstance(arg, np.ndarray))
        return (self.serial if work < self.parallel_min else self.parallel)(*args)


_SHARED_LOOPS = {'col2im': '_gather', 'maxpool2d_backward': '_gather',
                 'avgpool2d_backward': '_gather'}


def jitted(name):
    """The Numba dispatchers behind kernel ``name`` (both twins of a :class:`_kernel`), for
    the benchmarks that count what Numba compiled or loaded from its cache."""
    loop = globals()[_SHARED_LOOPS.get(name, '_' + name)]
    return [loop.parallel, loop.serial] if isinstance(loop, _kernel) else [loop]


_LINEAR, _RELU, _SIGMOID, _TANH = (ACTIVATIONS.index(name) for name in
                                   ('linear', 'relu', 'sigmoid', 'tanh'))


def _output_shape(x_shape, ksize, stride, pad, dilation=(1, 1)):
    """(N, OH, OW) of a windowed op on an (N, H, W, C) input."""
    return (x_shape[0],) + tuple(output_size(x_shape[1 + a], ksize[a], stride[a], pad[a],
                                             dilation[a]) for a in (0, 1))


def _window(ksize, stride, pad, dilation=(1, 1)):
    """The window as every windowed kernel takes it: (kh, kw, sh, sw, top, left, dh, dw).

    The padding after the input (bottom, right) only sizes the output, allocated by then.
    """
    return (*ksize, *stride, pad[0][0], pad[1][0], *dilation)


@_serial
def _u(i):
    """An index as an unsigned integer. Numba checks every signed index for a negative
    (wrap-around) value, and those checks keep LLVM from vectorising a loop over flat
    indices; unsigned ones have no such check."""
    return uint64(i)


@_serial
def _row_col(r, rows):
    """Split a flat row number ``r`` of an (N, rows) grid into (n, row)."""
    return r // rows, r % rows


@_serial
def _taps(size, out, k, stride, before, dilation):
    """(size, k) int64: ``taps[s, t]`` is the output index whose window reads input index s
    through tap t (``s = o*stride + t*dilation - before``), or -1 when none does."""
    taps = np.full((size, k), -1, np.int64)
    for o in range(out):
        for t in range(k):
            s = o * stride + t * dilation - before
            if 0 <= s < size:
                taps[s, t] = o
    return taps


@_serial
def _tap_windows(taps):
    """(k, 2) int64: for each tap t, the first and one past the last window that reads an input
    through it (every window in between does too), from a tap table."""
    size, k = taps.shape
    ranges = np.zeros((k, 2), np.int64)
    for t in range(k):
        first = -1
        for s in range(size):
            if taps[s, t] >= 0:
                if first < 0:
                    first = taps[s, t]
                ranges[t, 0], ranges[t, 1] = first, taps[s, t] + 1
    return ranges


@_serial
def _counts(taps, out):
    """(out,) int64: how many input positions each window reads, from a tap table."""
    counts = np.zeros(out, np.int64)
    for s in range(taps.shape[0]):
        for t in range(taps.shape[1]):
            if taps[s, t] >= 0:
                counts[taps[s, t]] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------

@_kernel
def _im2col(x, cols, kh, kw, sh, sw, top, left, dh, dw):
    n_img, h_in, w_in, c_in = x.shape
    oh, ow = cols.shape[1:3]
    xs, out = x.reshape(-1), cols.reshape(-1)
    c_u, run = _u(c_in), _u(kw * c_in)
    window_step, row_step = _u(sw * c_in), _u(kh) * run
    for r in prange(n_img * oh):
        n, i = _row_col(r, oh)
        at = _u(r * ow) * row_step
        if (dw == 1 and left == 0 and (ow - 1) * sw + kw <= w_in and i * sh >= top
                and i * sh + (kh - 1) * dh - top < h_in):
            # No padding is read anywhere in this output row (always so for 'valid'): each
            # tap row p is a strided sweep of one input row, with no tests inside.
            for p in range(kh):
                source = _u((n * h_in + i * sh + p * dh - top) * w_in * c_in)
                target = at + _u(p) * run
                for j in range(_u(ow)):
                    s, t = source + j * window_step, target + j * row_step
                    if run == 3:  # a grayscale 3x3 layer: spelled out, a straight copy
                        out[t], out[t + 1], out[t + 2] = xs[s], xs[s + 1], xs[s + 2]
                    else:
                        for e in range(run):
                            out[t + e] = xs[s + e]
            continue
        for j in range(ow):
            w0 = j * sw - left
            inside = dw == 1 and w0 >= 0 and w0 + kw <= w_in
            for p in range(kh):
                h = i * sh + p * dh - top
                if not 0 <= h < h_in:
                    for e in range(run):
                        out[at + e] = 0
                elif inside:  # the window row is one contiguous run of x
                    source = _u(((n * h_in + h) * w_in + w0) * c_in)
                    for e in range(run):
                        out[at + e] = xs[source + e]
                else:
                    for q in range(kw):
                        w = w0 + q * dw
                        target = at + _u(q) * c_u
                        source = _u(((n * h_in + h) * w_in + max(w, 0)) * c_in)
                        for c in range(c_u):
                            out[target + c] = xs[source + c] if 0 <= w < w_in else 0
                at += run


# A window row (kw * C values) shorter than this is copied plane by plane (:func:`_im2col_by_tap`)
SHORT_ROW = 16


@_kernel
def _im2col_by_tap(planes, cols, kh, kw, sh, top, left, dh, dw):
    """im2col for short window rows at stride 1 across: channels-first ``planes`` (N, C, H, W)
    -> ``cols`` (kh, kw, C, N, OH, OW), every output row a contiguous run of one input row."""
    n_img, c_in, h_in, w_in = planes.shape
    oh, ow = cols.shape[4:6]
    xs, out, ow_u = planes.reshape(-1), cols.reshape(-1), _u(ow)
    windows = _tap_windows(_taps(w_in, ow, kw, 1, left, dw))  # the windows j tap q reads inside
    for plane in prange(kh * kw * c_in * n_img):
        tap_channel, n = _row_col(plane, n_img)
        tap, c = _row_col(tap_channel, c_in)
        p, q = _row_col(tap, kw)
        j0, j1 = windows[q, 0], windows[q, 1]
        for i in range(oh):
            h = i * sh + p * dh - top
            target = _u(plane * oh + i) * ow_u
            inside = 0 <= h < h_in
            for j in range(_u(j0) if inside else ow_u):
                out[target + j] = 0
            if not inside:
                continue
            source = _u(((n * c_in + c) * h_in + h) * w_in + j0 + q * dw - left)
            start = target + _u(j0)
            for j in range(_u(j1 - j0)):
                out[start + j] = xs[source + j]
            for j in range(_u(j1), ow_u):
                out[target + j] = 0


def im2col(x, ksize, stride, pad, dilation):
    """x (N, H, W, C) -> cols (N, OH, OW, kh, kw, C), zeros where padding is read.

    Window rows of under :data:`SHORT_ROW` values (the first layer of an image net: 3 or 9 per
    row) make runs too short to copy fast, so at stride 1 across, the columns are laid out
    tap by tap instead, from a channels-first copy of x: the same array, as the transposed view
    of a (kh, kw, C, N, OH, OW) one. Its column matrix ``reshape(N*OH*OW, -1)`` is still a view,
    in Fortran order, which the GEMM reads as it is. MNIST's first im2col: 180 -> 60 us.
    """
    x = np.ascontiguousarray(x)
    shape = _output_shape(x.shape, ksize, stride, pad, dilation)
    window = _window(ksize, stride, pad, dilation)
    if stride[1] == 1 and ksize[1] * x.shape[3] < SHORT_ROW:
        planes = np.ascontiguousarray(np.moveaxis(x, 3, 1))  # a view when C == 1
        cols = np.empty(tuple(ksize) + x.shape[3:] + shape, x.dtype)
        _im2col_by_tap(planes, cols, *window[:3], *window[4:])
        return cols.transpose(3, 4, 5, 0, 1, 2)
    cols = np.empty(shape + tuple(ksize) + x.shape[3:], x.dtype)
    _im2col(x, cols, *window)
    return cols


_SUM, _MAX, _MEAN = 0, 1, 2  # what _gather adds for each (window, tap) that read an input
# uint8, the argmax type of every window up to 16x16, so that col2im and both pooling backwards
# share one compiled _gather
_NO_ARGMAX = np.empty(0, argmax_dtype(1))


@_kernel
def _gather(source, argmax, dx, mode, kh, kw, sh, sw, top, left, dh, dw):
    """The backward of every windowed op: ``dx[n, h, w, :]`` sums, over the windows (i, j) and
    taps (p, q) that read (h, w), in the reference's order:

    * ``_SUM`` (col2im): the column entry ``source[n, i, j, p, q, :]``;
    * ``_MAX``: ``source[n, i, j, :]`` where ``argmax`` names tap p*kw + q as the winner;
    * ``_MEAN``: ``source[n, i, j, :]`` divided by the window's count of inputs (in the arrays'
      dtype, one float division, as in the reference).
    """
    n_img, h_in, w_in, c_in = dx.shape
    oh, ow = source.shape[1:3]
    rows, column_taps = _taps(h_in, oh, kh, sh, top, dh), _taps(w_in, ow, kw, sw, left, dw)
    row_counts = _counts(rows, oh).astype(dx.dtype)
    column_counts = _counts(column_taps, ow).astype(dx.dtype)
    windows = _tap_windows(column_taps)  # (kw, 2): the windows j whose column tap q reads inside
    grads, out, arg, c_u = source.reshape(-1), dx.reshape(-1), argmax.reshape(-1), _u(c_in)
    per_window = _u(kh * kw) if mode == _SUM else _u(1)  # entries of a window in source
    zero = np.zeros(1, dx.dtype)[0]
    for r in prange(n_img * h_in):
        n, h = _row_col(r, h_in)
        row = _u(r * w_in) * c_u
        for e in range(_u(w_in) * c_u):
            out[row + e] = 0
        for p in range(kh):
            i = rows[h, p]
            if i < 0:
                continue
            for q in range(kw):
                k = p * kw + q
                tap = _u(k) * c_u if mode == _SUM else _u(0)
                for j in range(windows[q, 0], windows[q, 1]):
                    target = row + _u(j * sw + q * dw - left) * c_u
                    window = _u((n * oh + i) * ow + j)
                    at = window * per_window * c_u + tap
                    if mode == _SUM:
                        for c in range(c_u):
                            out[target + c] += grads[at + c]
                    elif mode == _MAX:
                        for c in range(c_u):
                            g = grads[at + c]
                            out[target + c] += g if arg[window * c_u + c] == k else zero
                    else:
                        count = row_counts[i] * column_counts[j]
                        for c in range(c_u):
                            out[target + c] += grads[at + c] / count


def col2im(cols, x_shape, ksize, stride, pad, dilation):
    """cols (N, OH, OW, kh, kw, C) -> dx (N, H, W, C), the adjoint of :func:`im2col`."""
    dx = np.empty(tuple(x_shape), cols.dtype)
    _gather(np.ascontiguousarray(cols), _NO_ARGMAX, dx, _SUM,
            *_window(ksize, stride, pad, dilation))
    return dx


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

@_serial
def _beats(v, best):
    """Whether v replaces the running maximum: it is larger, or it is the first NaN (a NaN
    then stays), which is how np.argmax ranks values. ``not v <= best`` is true exactly when
    v is larger or either is NaN: two comparisons where spelling out both cases takes three."""
    return best == best and not v <= best


@_serial
def _valid_taps(out, k, stride, before, dilation, size):
    """(out, 2) int64: for each window o, the first and one past the last tap t whose position
    ``o*stride + t*dilation - before`` lies inside [0, size), a contiguous range."""
    ranges = np.empty((out, 2), np.int64)
    for o in range(out):
        first, stop = k, 0
        for t in range(k):
            if 0 <= o * stride + t * dilation - before < size:
                first, stop = min(first, t), t + 1
        ranges[o, 0], ranges[o, 1] = first, stop
    return ranges


# Windows of up to this many taps are pooled with their taps unrolled (:func:`_tap_offsets`)
UNROLLED_TAPS = 16


def _tap_offsets(x_shape, ksize):
    """The flat offset of each of a window's taps (p, q) from its top-left input in an
    (N, H, W, C) array, in tap order p*kw + q. A tuple, so that Numba compiles the pooling loops
    once per window size and LLVM unrolls the taps inside the channel loop; empty (every window
    taken tap by tap) for windows of over :data:`UNROLLED_TAPS` taps."""
    if ksize[0] * ksize[1] > UNROLLED_TAPS:
        return ()
    width, channels = x_shape[2:]
    return tuple(np.uint64((p * width + q) * channels)
                 for p in range(ksize[0]) for q in range(ksize[1]))


@_serial
def _window_max(xs, start, offsets, ys, arg, target, c_u, first=0, merge=False):
    """The maximum and its tap (plus ``first``) over a window with every tap inside the input,
    per channel: one pass over the channels with the window's taps unrolled inside, so the
    maximum stays in a register. With ``merge`` it replaces the maximum already in ``ys`` only
    where it beats it, as a later window's must."""
    for c in range(c_u):
        best, winner = xs[start + c], 0
        for k in range(1, len(offsets)):
            v = xs[start + offsets[k] + c]
            take = _beats(v, best)
            best, winner = (v, k) if take else (best, winner)
        take = not merge or _beats(best, ys[target + c])  # both stores unconditional
        ys[target + c] = best if take else ys[target + c]
        arg[target + c] = first + winner if take else arg[target + c]


@_kernel
def _maxpool2d_forward(x, y, argmax, offsets, kh, kw, sh, sw, top, left, dh, dw):
    n_img, h_in, w_in, c_in = x.shape
    oh, ow = y.shape[1:3]
    xs, ys, arg, c_u = x.reshape(-1), y.reshape(-1), argmax.reshape(-1), _u(c_in)
    rows, columns = _valid_taps(oh, kh, sh, top, dh, h_in), _valid_taps(ow, kw, sw, left, dw, w_in)
    for r in prange(n_img * oh):
        n, i = _row_col(r, oh)
        p0, p1 = rows[i, 0], rows[i, 1]  # the taps inside the input, once per window
        for j in range(ow):
            q0, q1 = columns[j, 0], columns[j, 1]
            target = _u(r * ow + j) * c_u
            corner = (n * h_in + i * sh - top) * w_in + j * sw - left
            if len(offsets) and p1 - p0 == kh and q1 - q0 == kw:
                _window_max(xs, _u(corner) * c_u, offsets, ys, arg, target, c_u)
                continue
            for p in range(p0, p1):  # otherwise tap by tap, over the taps inside the input
                for q in range(q0, q1):
                    source, k = _u(corner + p * dh * w_in + q * dw) * c_u, p * kw + q
                    if p == p0 and q == q0:  # the window's first input starts the maximum
                        for c in range(c_u):
                            ys[target + c], arg[target + c] = xs[source + c], k
                        continue
                    for c in range(c_u):  # both stores unconditional: the loop vectorises
                        v, best = xs[source + c], ys[target + c]
                        take = _beats(v, best)
                        ys[target + c] = v if take else best
                        arg[target + c] = k if take else arg[target + c]


def maxpool2d_forward(x, ksize, stride, pad):
    """x (N, H, W, C) -> y (N, OH, OW, C), argmax of ``argmax_dtype(kh * kw)`` = p*kw + q
    (first position on ties)."""
    x = np.ascontiguousarray(x)
    shape = _output_shape(x.shape, ksize, stride, pad) + x.shape[3:]
    y, argmax = np.empty(shape, x.dtype), np.empty(shape, argmax_dtype(ksize[0] * ksize[1]))
    _maxpool2d_forward(x, y, argmax, _tap_offsets(x.shape, ksize), *_window(ksize, stride, pad))
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape, ksize, stride, pad):
    """dy (N, OH, OW, C) -> dx (N, H, W, C): each input sums the dy of the windows it won."""
    dx = np.empty(tuple(x_shape), dy.dtype)
    _gather(np.ascontiguousarray(dy), np.ascontiguousarray(argmax), dx, _MAX,
            *_window(ksize, stride, pad))
    return dx


@_serial
def _window_sum(xs, start, offsets, ys, target, count, c_u):
    """The mean over a window with every tap inside the input, per channel, summed in tap
    order (as :func:`_window_max` runs its maximum)."""
    for c in range(c_u):
        total = xs[start + c]
        for k in range(1, len(offsets)):
            total += xs[start + offsets[k] + c]
        ys[target + c] = total / count


@_kernel
def _avgpool2d_forward(x, y, offsets, kh, kw, sh, sw, top, left, dh, dw):
    n_img, h_in, w_in, c_in = x.shape
    oh, ow = y.shape[1:3]
    row_counts = _counts(_taps(h_in, oh, kh, sh, top, dh), oh).astype(x.dtype)
    column_counts = _counts(_taps(w_in, ow, kw, sw, left, dw), ow).astype(x.dtype)
    xs, ys, c_u = x.reshape(-1), y.reshape(-1), _u(c_in)
    rows, columns = _valid_taps(oh, kh, sh, top, dh, h_in), _valid_taps(ow, kw, sw, left, dw, w_in)
    for r in prange(n_img * oh):
        n, i = _row_col(r, oh)
        p0, p1 = rows[i, 0], rows[i, 1]
        for j in range(ow):
            q0, q1 = columns[j, 0], columns[j, 1]
            target = _u(r * ow + j) * c_u
            corner = (n * h_in + i * sh - top) * w_in + j * sw - left
            count = row_counts[i] * column_counts[j]
            if len(offsets) and p1 - p0 == kh and q1 - q0 == kw:
                _window_sum(xs, _u(corner) * c_u, offsets, ys, target, count, c_u)
                continue
            for c in range(c_u):  # otherwise tap by tap, over the taps inside the input
                ys[target + c] = 0
            for p in range(p0, p1):
                for q in range(q0, q1):
                    source = _u(corner + p * dh * w_in + q * dw) * c_u
                    for c in range(c_u):
                        ys[target + c] += xs[source + c]
            for c in range(c_u):
                ys[target + c] /= count


def avgpool2d_forward(x, ksize, stride, pad):
    """x (N, H, W, C) -> y (N, OH, OW, C), the mean over each window's non-padding positions."""
    x = np.ascontiguousarray(x)
    y = np.empty(_output_shape(x.shape, ksize, stride, pad) + x.shape[3:], x.dtype)
    _avgpool2d_forward(x, y, _tap_offsets(x.shape, ksize), *_window(ksize, stride, pad))
    return y


def avgpool2d_backward(dy, x_shape, ksize, stride, pad):
    """dy (N, OH, OW, C) -> dx (N, H, W, C): each window spreads dy / count over its inputs."""
    dx = np.empty(tuple(x_shape), dy.dtype)
    _gather(np.ascontiguousarray(dy), _NO_ARGMAX, dx, _MEAN, *_window(ksize, stride, pad))
    return dx


# Global max pooling takes the positions in blocks of this many, unrolled (:func:`_window_max`)
GLOBAL_BLOCK = 4


@_kernel
def _global_maxpool_forward(x, y, argmax, block):
    n_img, length, c_in = x.shape
    xs, ys, arg, c_u = x.reshape(-1), y.reshape(-1), argmax.reshape(-1), _u(c_in)
    blocks = length // len(block)
    for n in prange(n_img):
        row, target = _u(n * length) * c_u, _u(n) * c_u
        for b in range(blocks):
            start = b * len(block)
            _window_max(xs, row + _u(start) * c_u, block, ys, arg, target, c_u, start, b > 0)
        for pos in range(blocks * len(block), length):  # the positions after the last block
            source = row + _u(pos) * c_u
            for c in range(c_u):
                v, best = xs[source + c], ys[target + c]
                take = pos == 0 or _beats(v, best)
                ys[target + c] = v if take else best
                arg[target + c] = pos if take else arg[target + c]


def global_maxpool_forward(x):
    """x (N, L, C) -> y (N, C) the maximum over L, argmax (N, C) of ``argmax_dtype(L)`` (first
    on ties)."""
    x = np.ascontiguousarray(x)
    y = np.empty((x.shape[0], x.shape[2]), x.dtype)
    argmax = np.empty(y.shape, argmax_dtype(x.shape[1]))
    block = _tap_offsets((x.shape[0], 1) + x.shape[1:], (1, GLOBAL_BLOCK))  # a 1 x 4 window
    _global_maxpool_forward(x, y, argmax, block)
    return y, argmax


@_serial
def _global_maxpool_backward(dy, argmax, dx):
    n_img, c_in = dy.shape
    for n in range(n_img):
        for c in range(c_in):
            dx[n, argmax[n, c], c] = dy[n, c]


def global_maxpool_backward(dy, argmax, L):
    """dy (N, C) -> dx (N, L, C), zero except ``dx[n, argmax[n, c], c] = dy[n, c]``."""
    dx = np.zeros((dy.shape[0], L, dy.shape[1]), dy.dtype)
    _global_maxpool_backward(np.ascontiguousarray(dy), np.ascontiguousarray(argmax), dx)
    return dx


# ---------------------------------------------------------------------------------------------
# Bias + activation
# ---------------------------------------------------------------------------------------------

@_serial
def _activate(z, code):
    """act(z) for one value (linear, relu or sigmoid); the sigmoid only ever exponentiates
    -|z|, so it cannot overflow."""
    if code == _RELU:
        return 0 if z < 0 else z                        # NaN passes, as in np.maximum
    if code == _SIGMOID:
        e = np.exp(-abs(z))
        return 1 / (1 + e) if z >= 0 else e / (1 + e)
    return z


@_serial
def _derivative_times(dy, y, code):
    """dy * act'(z) for one value, with act' written in terms of the output y."""
    if code == _RELU:
        return dy if y > 0 else dy * 0                  # dy * (y > 0): NaN stays NaN
    if code == _SIGMOID:
        return dy * y * (1 - y)
    if code == _TANH:
        return dy * (1 - y * y)
    return dy


@_kernel
def _bias_act_forward(x, b, y, code):
    rows, channels = x.shape
    for m in prange(rows):
        for c in range(channels):
            y[m, c] = _activate(x[m, c] + b[c], code)


def bias_act_forward(x, b, activation):
    """x (..., C), b (C,) or None -> y = act(x + b), bias add and activation in one pass.

    tanh is the exception: NumPy's tanh is SIMD-vectorised while compiled code calls the
    scalar libm one, ten times slower, so the kernel adds the bias and NumPy takes the tanh
    in place.
    """
    x = np.ascontiguousarray(x)
    b = np.zeros(x.shape[-1], x.dtype) if b is None else np.ascontiguousarray(b)
    y = np.empty_like(x)
    code = ACTIVATIONS.index(activation)
    _bias_act_forward(x.reshape(-1, x.shape[-1]), b, y.reshape(-1, x.shape[-1]),
                      _LINEAR if code == _TANH else code)
    if code == _TANH:
        np.tanh(y, out=y)
    return y


@_kernel
def _bias_act_backward(dy, y, dz, code):
    for i in prange(dz.size):
        dz[i] = _derivative_times(dy[i], y[i], code)


def bias_act_backward(dy, y, activation):
    """dy, y (..., C) -> dz = dy * act'(z), the derivative taken from the output y."""
    dz = np.empty(dy.shape, dy.dtype)
    _bias_act_backward(np.ascontiguousarray(dy).reshape(-1), np.ascontiguousarray(y).reshape(-1),
                       dz.reshape(-1), ACTIVATIONS.index(activation))
    return dz


# ---------------------------------------------------------------------------------------------
# Dropout masks from a counter-based RNG
# ---------------------------------------------------------------------------------------------

_STEP_OFFSET = np.uint64(0x9E3779B9)


@intrinsic
def _mix32(typingctx, value, key):
    """``mix32(uint32(value) ^ key)``, the reference's 'lowbias32' hash, as 32-bit LLVM
    instructions. Numba's integer typing widens every uint32 operation to 64 bits, and a
    vector of 64-bit products costs AVX-512 several times one of 32-bit products: written in
    Numba, the hash took 45 us for a 0.5 MB mask, and 17 like this."""
    def codegen(context, builder, signature, args):
        x, key = (context.cast(builder, arg, kind, uint32)
                  for arg, kind in zip(args, signature.args))

        def shift_xor(x, shift):
            return builder.xor(x, builder.lshr(x, ir.Constant(x.type, shift)))

        x = shift_xor(builder.xor(x, key), 16)
        x = shift_xor(builder.mul(x, ir.Constant(x.type, 0x7FEB352D)), 15)
        return shift_xor(builder.mul(x, ir.Constant(x.type, 0x846CA68B)), 16)
    return uint32(value, key), codegen


@_serial
def _dropout_key(seed, step):
    """:func:`reference.dropout_key` on two uint32 values (held in uint64): the same bits in
    well under a microsecond, where NumPy's operations on one-element arrays take 20."""
    return _mix32(seed, _mix32(step + _STEP_OFFSET, np.uint32(0)))


@_kernel
def _dropout_mask(mask, key, threshold, scale):
    for i in prange(mask.size):
        mask[i] = scale if _mix32(i, key) >= threshold else 0


def dropout_mask(shape, rate, seed, step, dtype):
    """Inverted-dropout mask of ``shape``: ``1/(1-rate)`` where kept, 0 where dropped; the
    same bits as every other implementation for the same (seed, step)."""
    mask = np.empty(shape, dtype)
    key = _dropout_key(np.uint64(int(seed) & 0xFFFFFFFF), np.uint64(int(step) & 0xFFFFFFFF))
    _dropout_mask(mask.reshape(-1), key,
                  np.uint32(dropout_threshold(rate)), mask.dtype.type(1.0 / (1.0 - rate)))
    return mask


# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy (one row at a time; sparse targets are class indices)
# ---------------------------------------------------------------------------------------------

@_serial
def _softmax_xent_forward(logits, labels, dense, sparse, loss, probs):
    rows, classes = logits.shape
    for n in range(rows):
        top = logits[n, 0]
        for k in range(1, classes):
            top = max(top, logits[n, k])
        total = 0.0
        for k in range(classes):
            probs[n, k] = np.exp(logits[n, k] - top)
            total += probs[n, k]
        for k in range(classes):
            probs[n, k] /= total
        log_total = np.log(total)
        if sparse:
            loss[n] = log_total - (logits[n, labels[n]] - top)
        else:
            acc = 0.0
            for k in range(classes):
                acc += dense[n, k] * (log_total - (logits[n, k] - top))
            loss[n] = acc


def _split_target(target, dtype):
    """(labels (N,) int64, dense (N, K), sparse): the target, with an empty stand-in for the
    form it is not in, so one compiled kernel serves both."""
    if target.ndim == 1:
        return np.ascontiguousarray(target, np.int64), np.empty((0, 0), dtype), True
    return np.empty(0, np.int64), np.ascontiguousarray(target, dtype), False


def softmax_xent_forward(logits, target):
    """logits (N, K), target int64 (N,) or float (N, K) -> loss (N,), probs (N, K)."""
    logits = np.ascontiguousarray(logits)
    loss = np.empty(logits.shape[0], logits.dtype)
    probs = np.empty_like(logits)
    _softmax_xent_forward(logits, *_split_target(target, logits.dtype), loss, probs)
    return loss, probs


@_serial
def _softmax_xent_backward(probs, labels, dense, sparse, g, dlogits):
    rows, classes = probs.shape
    for n in range(rows):
        if sparse:
            for k in range(classes):
                hit = 1.0 if k == labels[n] else 0.0
                dlogits[n, k] = g[n] * (probs[n, k] - hit)
        else:
            mass = 0.0
            for k in range(classes):
                mass += dense[n, k]
            for k in range(classes):
                dlogits[n, k] = g[n] * (probs[n, k] * mass - dense[n, k])


def softmax_xent_backward(probs, target, g):
    """probs (N, K), target (N,) or (N, K), g (N,) -> dlogits (N, K)."""
    probs = np.ascontiguousarray(probs)
    dlogits = np.empty_like(probs)
    _softmax_xent_backward(probs, *_split_target(target, probs.dtype),
                           np.ascontiguousarray(g, probs.dtype), dlogits)
    return dlogits


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------

_EMBEDDING_PARTS = 4  # the vocabulary is shared out in this many interleaved parts


@_kernel
def _embedding_backward(dy, ids, dW):
    # Each part sums the gradient rows of its own ids (those with id % parts == part), in
    # order, so repeated ids add up as in the reference and no two threads write one row;
    # every part reads all the ids, but only its own rows of dy.
    for part in prange(_EMBEDDING_PARTS):
        for k in range(ids.size):
            row = ids[k]
            if row % _EMBEDDING_PARTS != part:
                continue
            for d in range(dy.shape[1]):
                dW[row, d] += dy[k, d]


def embedding_backward(ids, dy, vocab_size):
    """ids (S...) integers, dy (S..., D) -> dW (vocab_size, D); repeated ids add up, in order."""
    d = dy.shape[-1]
    dW = np.zeros((vocab_size, d), dy.dtype)
    _embedding_backward(np.ascontiguousarray(dy).reshape(-1, d),
                        np.ascontiguousarray(ids, np.int64).reshape(-1), dW)
    return dW


# ---------------------------------------------------------------------------------------------
# Optimizer updates, in place over the flattened arrays
# ---------------------------------------------------------------------------------------------

def _flat(array):
    """The 1-D view of a state array updated in place (a copy would lose the update)."""
    if not array.flags.c_contiguous:
        raise ValueError('minidl: optimizer state must be C-contiguous to be updated in place, '
                         f'got an array with strides {array.strides}')
    return array.reshape(-1)


def _scalars(dtype, *values):
    """Hyperparameters in the arrays' dtype, so float32 updates stay in float32 arithmetic."""
    return tuple(dtype.type(value) for value in values)


def _optional(array, param):
    """The flat view of an optional state array, or an empty one standing for None."""
    return param[:0] if array is None else _flat(array)


@_kernel
def _sgd_update(param, grad, velocity, lr, momentum, nesterov):
    for i in prange(param.size):
        g = grad[i]
        if momentum == 0:
            param[i] -= lr * g
        else:
            v = momentum * velocity[i] - lr * g
            velocity[i] = v
            param[i] += momentum * v - lr * g if nesterov else v


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """Keras SGD in place: ``v = momentum*v - lr*g``, ``param += v`` (Nesterov:
    ``param += momentum*v - lr*g``); ``velocity`` may be None when momentum == 0."""
    param = _flat(param)
    _sgd_update(param, np.ascontiguousarray(grad).reshape(-1), _optional(velocity, param),
                *_scalars(param.dtype, lr, momentum), bool(nesterov))


@_kernel
def _rmsprop_update(param, grad, sq_avg, avg_grad, velocity, lr, rho, one_minus_rho, momentum,
                    eps):
    centered, has_momentum = avg_grad.size > 0, velocity.size > 0
    for i in prange(param.size):
        g = grad[i]
        a = rho * sq_avg[i] + one_minus_rho * g * g
        sq_avg[i] = a
        denominator = a + eps
        if centered:
            mg = rho * avg_grad[i] + one_minus_rho * g
            avg_grad[i] = mg
            denominator = a - mg * mg + eps
        step = lr * g / np.sqrt(denominator)
        if has_momentum:
            step = momentum * velocity[i] + step
            velocity[i] = step
        param[i] -= step


def rmsprop_update(param, grad, sq_avg, avg_grad, velocity, lr, rho, momentum, eps):
    """In place: ``a = rho*a + (1-rho)*g*g``; ``s = lr*g / sqrt(a + eps)`` (centered: minus
    ``mg*mg`` under the root); ``param -= s``, or through ``vel = momentum*vel + s``."""
    param = _flat(param)
    _rmsprop_update(param, np.ascontiguousarray(grad).reshape(-1), _flat(sq_avg),
                    _optional(avg_grad, param), _optional(velocity, param),
                    *_scalars(param.dtype, lr, rho, 1 - float(rho), momentum, eps))


@_kernel
def _adam_update(param, grad, m, v, v_max, lr_t, beta1, one_minus_beta1, beta2,
                 one_minus_beta2, eps):
    amsgrad = v_max.size > 0
    for i in prange(param.size):
        g = grad[i]
        m_i = beta1 * m[i] + one_minus_beta1 * g
        v_i = beta2 * v[i] + one_minus_beta2 * g * g
        m[i], v[i] = m_i, v_i
        if amsgrad:
            v_i = max(v_max[i], v_i)
            v_max[i] = v_i
        param[i] -= lr_t * m_i / (np.sqrt(v_i) + eps)


def adam_update(param, grad, m, v, v_max, lr, beta1, beta2, eps, t):
    """Adam in place at 1-based step t, the bias correction folded into the step size;
    AMSGrad when ``v_max`` is given."""
    beta1, beta2 = float(beta1), float(beta2)
    param = _flat(param)
    _adam_update(param, np.ascontiguousarray(grad).reshape(-1), _flat(m), _flat(v),
                 _optional(v_max, param),
                 *_scalars(param.dtype, adam_step_size(lr, beta1, beta2, t), beta1, 1 - beta1,
                           beta2, 1 - beta2, eps))


@_kernel
def _adagrad_update(param, grad, accumulator, lr, eps):
    for i in prange(param.size):
        g = grad[i]
        a = accumulator[i] + g * g
        accumulator[i] = a
        param[i] -= lr * g / np.sqrt(a + eps)


def adagrad_update(param, grad, accumulator, lr, eps):
    """In place: ``acc += g*g``; ``param -= lr*g / sqrt(acc + eps)``."""
    param = _flat(param)
    _adagrad_update(param, np.ascontiguousarray(grad).reshape(-1), _flat(accumulator),
                    *_scalars(param.dtype, lr, eps))


@_kernel
def _adadelta_update(param, grad, sq_avg, delta_sq_avg, lr, rho, one_minus_rho, eps):
    for i in prange(param.size):
        g = grad[i]
        a = rho * sq_avg[i] + one_minus_rho * g * g
        sq_avg[i] = a
        d = np.sqrt(delta_sq_avg[i] + eps) / np.sqrt(a + eps) * g
        delta_sq_avg[i] = rho * delta_sq_avg[i] + one_minus_rho * d * d
        param[i] -= lr * d


def adadelta_update(param, grad, sq_avg, delta_sq_avg, lr, rho, eps):
    """In place: ``a = rho*a + (1-rho)*g*g``; ``d = sqrt(D + eps) / sqrt(a + eps) * g``;
    ``D = rho*D + (1-rho)*d*d``; ``param -= lr*d``."""
    param = _flat(param)
    _adadelta_update(param, np.ascontiguousarray(grad).reshape(-1), _flat(sq_avg),
                     _flat(delta_sq_avg), *_scalars(param.dtype, lr, rho, 1 - float(rho), eps))


@_kernel
def _adamax_update(param, grad, m, u, lr_t, beta1, one_minus_beta1, beta2, eps):
    for i in prange(param.size):
        g = grad[i]
        m_i = beta1 * m[i] + one_minus_beta1 * g
        u_i = max(beta2 * u[i], abs(g))
        m[i], u[i] = m_i, u_i
        param[i] -= lr_t * m_i / (u_i + eps)


def adamax_update(param, grad, m, u, lr, beta1, beta2, eps, t):
    """Adamax in place at 1-based step t: ``u = max(b2*u, |g|)``, the bias correction of m
    folded into the step size ``lr / (1 - b1**t)``."""
    beta1 = float(beta1)
    param = _flat(param)
    _adamax_update(param, np.ascontiguousarray(grad).reshape(-1), _flat(m), _flat(u),
                   *_scalars(param.dtype, float(lr) / (1 - beta1 ** t), beta1, 1 - beta1,
                             beta2, eps))


@_kernel
def _nadam_update(param, grad, m, v, c_m, c_g, c_v, beta1, one_minus_beta1, beta2,
                  one_minus_beta2, eps):
    for i in prange(param.size):
        g = grad[i]
        m_i = beta1 * m[i] + one_minus_beta1 * g
        v_i = beta2 * v[i] + one_minus_beta2 * g * g
        m[i], v[i] = m_i, v_i
        param[i] -= (c_m * m_i + c_g * g) / (np.sqrt(v_i * c_v) + eps)


def nadam_update(param, grad, m, v, lr, beta1, beta2, eps, t, u_product):
    """Nadam in place at 1-based step t, the per-step coefficients computed once here."""
    beta1, beta2 = float(beta1), float(beta2)
    param = _flat(param)
    _nadam_update(param, np.ascontiguousarray(grad).reshape(-1), _flat(m), _flat(v),
                  *_scalars(param.dtype, *nadam_coefficients(lr, beta1, beta2, t, u_product),
                            beta1, 1 - beta1, beta2, 1 - beta2, eps))
