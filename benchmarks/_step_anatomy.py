"""A helper of the benchmark scripts, not a script: where a training step's time goes.

:class:`StepAnatomy` wraps, for as long as it is active, every CPU kernel of
:mod:`minidl.backends.numba_cpu`, the convolution and matmul Functions (whose own time is their
GEMMs) and the bias-gradient sums, with a timer. Each wrapped call is charged its *exclusive*
time: a convolution's im2col runs inside ``Conv2d.forward`` and is charged to im2col, not to the
GEMM. What no wrapper claims is Python and autograd overhead (graph walk, dispatch, batching,
small NumPy ops). It also records every kernel call with its arguments, so that
``kernels_roofline.py`` can replay the exact calls of a real step, and the shapes of every GEMM,
so that their time can be compared with NumPy alone on the same shapes.
"""
import functools
import time
from collections import defaultdict

import numpy as np

from minidl.backends.kernels import KERNELS, get as implementation
from minidl.functions import activation, conv, math as math_ops

# kernel name -> the family it is reported under
FAMILIES = {name: family for family, names in {
    'im2col / col2im': ('im2col', 'col2im'),
    'pooling': ('maxpool2d_forward', 'maxpool2d_backward', 'avgpool2d_forward',
                'avgpool2d_backward', 'global_maxpool_forward', 'global_maxpool_backward'),
    'bias + activation': ('bias_act_forward', 'bias_act_backward'),
    'dropout': ('dropout_mask',),
    'softmax cross-entropy': ('softmax_xent_forward', 'softmax_xent_backward'),
    'embedding': ('embedding_backward',),
    'optimizer': ('sgd_update', 'rmsprop_update', 'adam_update', 'adagrad_update',
                  'adadelta_update', 'adamax_update', 'nadam_update'),
}.items() for name in names}
assert set(FAMILIES) == set(KERNELS), 'every kernel belongs to one reported family'


def _conv_gemms(fn, W, y, backward):
    """(M, K, N) of the GEMMs a Conv2d runs on kernel W with output (or output gradient) y:
    ``cols @ W`` forward; ``cols^T @ dY`` and ``dY @ W^T`` backward, each an (M, K) x (K, N)
    product of 2MKN flops."""
    m, k, n = y.size // y.shape[-1], W.size // W.shape[-1], W.shape[-1]
    if not backward:
        return [(m, k, n)]
    needs = fn.needs_input_grad
    return [(k, m, n)] * bool(needs[1]) + [(m, n, k)] * bool(needs[0])


def _matmul_gemms(fn, a, b, backward):
    m, k, n = a.size // a.shape[-1], a.shape[-1], b.shape[-1]
    if not backward:
        return [(m, k, n)]
    needs = fn.needs_input_grad
    return [(m, n, k)] * bool(needs[0]) + [(k, m, n)] * bool(needs[1])


class StepAnatomy:
    """``with StepAnatomy() as a: model.fit(...)`` then ``a.seconds`` ({part: s}),
    ``a.calls`` ([(kernel, args, kwargs)]) and ``a.gemms`` ([(M, K, N)])."""

    def __init__(self, record_calls=False):
        self.record_calls = record_calls
        self.seconds = defaultdict(float)
        self.calls, self.gemms = [], []
        self._nested = [0.0]  # time of wrapped calls inside the current one
        self._patches = []

    def _timed(self, part, function, on_call=None):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            self._nested.append(0.0)
            start = time.perf_counter()
            result = function(*args, **kwargs)
            elapsed = time.perf_counter() - start
            inner = self._nested.pop()
            self._nested[-1] += elapsed
            self.seconds[part] += elapsed - inner
            if on_call is not None:
                on_call(args, kwargs, result)
            return result
        return wrapper

    def _patch(self, owner, name, wrapper):
        self._patches.append((owner, name, getattr(owner, name)))
        setattr(owner, name, wrapper)

    def __enter__(self):
        numba = implementation('numba')
        for name in KERNELS:
            record = (lambda a, k, r, name=name: self.calls.append((name, a, k))) \
                if self.record_calls else None
            self._patch(numba, name, self._timed(FAMILIES[name], getattr(numba, name), record))
        sum_rows = self._timed('bias gradient (BLAS)', activation.sum_rows)
        for module in (activation, conv):
            self._patch(module, 'sum_rows', sum_rows)
        shapes = {
            (conv.Conv2d, 'forward'): lambda fn, a, r: _conv_gemms(fn, a[1], r, False),
            (conv.Conv2d, 'backward'): lambda fn, a, r: _conv_gemms(fn, fn.W, a[0], True),
            (math_ops.MatMul, 'forward'): lambda fn, a, r: _matmul_gemms(fn, a[0], a[1], False),
            (math_ops.MatMul, 'backward'): lambda fn, a, r: _matmul_gemms(fn, fn.a, fn.b, True),
        }
        for (cls, method), gemms in shapes.items():
            def on_call(args, kwargs, result, gemms=gemms):
                self.gemms.extend(gemms(args[0], args[1:], result))
            self._patch(cls, method, self._timed('GEMM (BLAS)', getattr(cls, method), on_call))
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches.clear()


def gemm_flops(gemms):
    return sum(2 * m * k * n for m, k, n in gemms)


def numpy_gemm_seconds(gemms, repeat=5):
    """Seconds NumPy alone takes for these (M, K, N) products on ready operands, float32
    (the median of ``repeat`` passes over all of them)."""
    rng = np.random.default_rng(0)
    operands = {shape: (rng.standard_normal(shape[:2], dtype=np.float32),
                        rng.standard_normal(shape[1:], dtype=np.float32))
                for shape in set(gemms)}
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        for shape in gemms:
            a, b = operands[shape]
            a @ b
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))
