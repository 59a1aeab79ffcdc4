"""The CPU kernels: the NumPy reference against first-principles definitions, the Numba kernels
against the reference, and the dispatch in :mod:`minidl.backends.kernels`.

Correctness tests run on every CPU implementation (``impl``); parity tests draw shapes, strides,
asymmetric paddings and dilations with hypothesis and demand the Numba result equal the
reference to the dtype's tolerance (indices and dropout masks exactly).
"""
import inspect
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl
from minidl.backends import kernels, reference

try:
    numba_cpu = kernels.get('numba')
except ImportError:
    numba_cpu = None

needs_numba = pytest.mark.skipif(numba_cpu is None, reason='Numba is not installed')
CPU_IMPLEMENTATIONS = [reference, pytest.param(numba_cpu, marks=needs_numba)]
DTYPES = (np.float32, np.float64)
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}
PARITY = settings(max_examples=15, deadline=None)


@pytest.fixture(scope='module', params=CPU_IMPLEMENTATIONS, ids=['reference', 'numba'])
def impl(request):
    """A CPU implementation module: reference, and numba where it is installed."""
    return request.param


@pytest.fixture(scope='module', autouse=True, params=['serial', 'parallel'])
def numba_twin(request):
    """Every test twice: with the kernels' own thresholds, under which the small arrays drawn
    here run the serial twins, and with every Numba kernel forced onto its parallel twin."""
    if request.param == 'serial' or numba_cpu is None:
        yield request.param
        return
    twins = [k for k in vars(numba_cpu).values() if isinstance(k, numba_cpu._kernel)]
    with pytest.MonkeyPatch.context() as patch:
        for twin in twins:
            patch.setattr(twin, 'parallel_min', 0)
        yield request.param


# ---------------------------------------------------------------------------------------------
# Drawing cases
# ---------------------------------------------------------------------------------------------

@st.composite
def windows(draw, pooling=False):
    """(x_shape, geometry) of a windowed kernel with at least one output position.

    Pooling has no dilation and pads at most k - 1 per side, so every window holds an input
    position (the callers guarantee this; a window of pure padding has no maximum).
    """
    ksize = tuple(draw(st.integers(1, 4)) for _ in range(2))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
    dilation = (1, 1) if pooling else tuple(draw(st.integers(1, 3)) for _ in range(2))
    spans = [d * (k - 1) + 1 for k, d in zip(ksize, dilation)]
    pad = tuple(tuple(draw(st.integers(0, k - 1 if pooling else span)) for _ in range(2))
                for k, span in zip(ksize, spans))
    sizes = [max(draw(st.integers(1, 9)), span - sum(p)) for span, p in zip(spans, pad)]
    shape = (draw(st.integers(1, 3)), *sizes, draw(st.integers(1, 5)))
    geometry = dict(ksize=ksize, stride=stride, pad=pad)
    if not pooling:
        geometry['dilation'] = dilation
    return shape, geometry


seeds = st.integers(0, 2 ** 32 - 1)


def normal(seed, shape, dtype, ties=False):
    """Random values of ``shape``; with ``ties``, small integers so that maxima repeat."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    return values.astype(dtype)


def out_shape(x_shape, geometry):
    """(N, OH, OW, C) of a windowed kernel, from the output-size formula."""
    dilation = geometry.get('dilation', (1, 1))
    return (x_shape[0],) + tuple(
        reference.output_size(x_shape[1 + a], geometry['ksize'][a], geometry['stride'][a],
                              geometry['pad'][a], dilation[a]) for a in (0, 1)) + x_shape[3:]


def assert_same(actual, expected, dtype):
    """Equal type, shape and dtype; floats to the dtype's tolerance, integers exactly."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e, dtype)
        return
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if np.issubdtype(expected.dtype, np.integer):
        np.testing.assert_array_equal(actual, expected)
    else:
        assert expected.dtype == dtype
        np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


def both(name, *args):
    """The Numba and the reference result of one kernel on the same arguments."""
    return getattr(numba_cpu, name)(*args), getattr(reference, name)(*args)


def inner(a, b):
    """The dot product <a, b> of two arrays, in float64."""
    return float(np.vdot(a.astype(np.float64), b.astype(np.float64)))


# ---------------------------------------------------------------------------------------------
# Windows: im2col and col2im
# ---------------------------------------------------------------------------------------------

def naive_im2col(x, ksize, stride, pad, dilation):
    """The definition, one window tap at a time:
    ``cols[n, i, j, p, q] = xpad[n, i*sh + p*dh, j*sw + q*dw]``."""
    n_img, h_in, w_in, c_in = x.shape
    _, oh, ow, _ = out_shape(x.shape, dict(ksize=ksize, stride=stride, pad=pad,
                                           dilation=dilation))
    cols = np.zeros((n_img, oh, ow) + tuple(ksize) + (c_in,), x.dtype)
    for n, i, j, p, q in np.ndindex(n_img, oh, ow, *ksize):
        h = i * stride[0] + p * dilation[0] - pad[0][0]
        w = j * stride[1] + q * dilation[1] - pad[1][0]
        if 0 <= h < h_in and 0 <= w < w_in:
            cols[n, i, j, p, q] = x[n, h, w]
    return cols


@settings(max_examples=10, deadline=None)
@given(case=windows(), seed=seeds)
def test_im2col_follows_its_definition(impl, case, seed):
    shape, geometry = case
    x = normal(seed, shape, np.float64)
    cols = impl.im2col(x, **geometry)
    np.testing.assert_array_equal(cols, naive_im2col(x, **geometry))
    rows = cols.reshape(-1, np.prod(cols.shape[3:]))  # the column matrix the GEMM reads
    assert np.shares_memory(rows, cols) and (rows.flags.c_contiguous or rows.flags.f_contiguous)


@settings(max_examples=10, deadline=None)
@given(case=windows(), seed=seeds)
def test_col2im_is_the_adjoint_of_im2col(impl, case, seed):
    shape, geometry = case
    x = normal(seed, shape, np.float64)
    c = normal(seed + 1, out_shape(shape, geometry)[:3] + geometry['ksize'] + shape[3:],
               np.float64)
    lhs = inner(impl.im2col(x, **geometry), c)
    rhs = inner(x, impl.col2im(c, shape, **geometry))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@PARITY
@given(case=windows(), seed=seeds)
def test_im2col_col2im_parity(dtype, case, seed):
    shape, geometry = case
    x = normal(seed, shape, dtype)
    cols = numba_cpu.im2col(x, **geometry)
    assert_same(cols, reference.im2col(x, **geometry), dtype)
    assert_same(*both('col2im', cols, shape, *geometry.values()), dtype)


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

def test_maxpool_ties_pick_the_first_position(impl):
    x = np.ones((1, 3, 3, 2), np.float32)
    geometry = dict(ksize=(2, 2), stride=(1, 1), pad=((1, 0), (1, 1)))
    _, argmax = impl.maxpool2d_forward(x, **geometry)
    # Every value ties, so each window's first position inside the input wins. Windows in the
    # first row start on padding (p = 0) and those in the first column too (q = 0).
    expected = np.array([[3, 2, 2, 2], [1, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(argmax[0, :, :, 0], expected)
    np.testing.assert_array_equal(argmax[0, :, :, 1], expected)


def test_maxpool_padding_never_wins(impl):
    x = -np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    y, argmax = impl.maxpool2d_forward(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -1, -2], [-1, -1, -2], [-4, -4, -5]])
    assert argmax.dtype == np.uint8


def test_maxpool_padding_never_wins_over_minus_infinity(impl):
    # A window of -inf ties with the -inf padding: its first position inside the input wins.
    x = np.full((1, 2, 2, 1), -np.inf, np.float32)
    y, argmax = impl.maxpool2d_forward(x, (2, 2), (1, 1), ((1, 0), (1, 0)))
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[3, 2], [1, 0]])


def test_maxpool_backward_routes_to_the_winners(impl):
    x = np.array([[1, 5, 2], [0, 3, 4], [7, 6, 8]], np.float64).reshape(1, 3, 3, 1)
    geometry = dict(ksize=(2, 2), stride=(1, 1), pad=((0, 0), (0, 0)))
    y, argmax = impl.maxpool2d_forward(x, **geometry)
    dx = impl.maxpool2d_backward(np.array([1., 10, 100, 1000]).reshape(1, 2, 2, 1), argmax,
                                 x.shape, **geometry)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 5], [7, 8]])
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 11, 0], [0, 0, 0], [100, 0, 1000]])


def test_avgpool_excludes_padding_from_the_mean(impl):
    x = np.ones((2, 5, 4, 3), np.float32)
    y = impl.avgpool2d_forward(x, (3, 2), (2, 2), ((1, 1), (0, 1)))
    np.testing.assert_array_equal(y, np.ones_like(y))


@settings(max_examples=10, deadline=None)
@given(case=windows(pooling=True), seed=seeds)
def test_avgpool_backward_is_the_adjoint(impl, case, seed):
    shape, geometry = case
    x = normal(seed, shape, np.float64)
    dy = normal(seed + 1, out_shape(shape, geometry), np.float64)
    lhs = inner(impl.avgpool2d_forward(x, **geometry), dy)
    rhs = inner(x, impl.avgpool2d_backward(dy, shape, **geometry))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_global_maxpool_ties_and_routing(impl):
    x = np.array([[[1, 4], [3, 4], [3, 0]]], np.float32)        # (N=1, L=3, C=2)
    y, argmax = impl.global_maxpool_forward(x)
    np.testing.assert_array_equal(y, [[3, 4]])
    np.testing.assert_array_equal(argmax, [[1, 0]])
    dx = impl.global_maxpool_backward(np.array([[2, 5]], np.float32), argmax, 3)
    np.testing.assert_array_equal(dx, [[[0, 5], [2, 0], [0, 0]]])
    assert dx.dtype == np.float32 and argmax.dtype == np.uint8


def test_argmax_dtype_is_the_narrowest_that_holds_the_positions():
    assert [reference.argmax_dtype(n) for n in (1, 2**8, 2**8 + 1, 2**31, 2**31 + 1)] == [
        np.uint8, np.uint8, np.int32, np.int32, np.int64]


def test_argmax_widens_past_256_positions(impl):
    # A 17x17 window (289 taps) and a map of 578 positions go past uint8: int32 holds them.
    x = normal(0, (2, 17, 17, 3), np.float32)
    y, argmax = impl.maxpool2d_forward(x, (17, 17), (1, 1), ((0, 0), (0, 0)))
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax.reshape(2, 3), x.reshape(2, -1, 3).argmax(axis=1))
    dx = impl.maxpool2d_backward(y, argmax, x.shape, (17, 17), (1, 1), ((0, 0), (0, 0)))
    np.testing.assert_array_equal(dx, np.where(x == x.max(axis=(1, 2), keepdims=True), x, 0))
    y, argmax = impl.global_maxpool_forward(x.reshape(2, 289, 3).repeat(2, axis=1))
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax, 2 * x.reshape(2, -1, 3).argmax(axis=1))


def test_nan_propagates_as_in_numpy(impl):
    # A NaN must reach the loss, or training cannot stop on it: relu passes NaN on, and
    # max-pooling ranks it above every number (the first NaN wins, as in np.argmax).
    x = np.array([1, np.nan, 3, np.nan]).reshape(1, 2, 2, 1)
    y, argmax = impl.maxpool2d_forward(x, (2, 2), (2, 2), ((0, 0), (0, 0)))
    assert np.isnan(y).all() and argmax.item() == 1
    y, argmax = impl.global_maxpool_forward(x.reshape(1, 4, 1))
    assert np.isnan(y).all() and argmax.item() == 1
    z = np.array([[np.nan, -1, 2]])
    np.testing.assert_array_equal(impl.bias_act_forward(z, None, 'relu'), [[np.nan, 0, 2]])
    np.testing.assert_array_equal(
        impl.bias_act_backward(np.array([[np.nan, 1, 1]]), np.array([[0, 0, 2.0]]), 'relu'),
        [[np.nan, 0, 1]])


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@PARITY
@given(case=windows(pooling=True), seed=seeds, ties=st.booleans())
def test_pooling_parity(dtype, case, seed, ties):
    shape, geometry = case
    x = normal(seed, shape, dtype, ties)
    args = tuple(geometry.values())
    y, argmax = numba_cpu.maxpool2d_forward(x, *args)
    assert_same((y, argmax), reference.maxpool2d_forward(x, *args), dtype)
    dy = normal(seed + 1, y.shape, dtype)
    assert_same(*both('maxpool2d_backward', dy, argmax, shape, *args), dtype)
    assert_same(*both('avgpool2d_forward', x, *args), dtype)
    assert_same(*both('avgpool2d_backward', dy, shape, *args), dtype)


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@PARITY
@given(n=st.integers(1, 3), length=st.integers(1, 40), c=st.integers(1, 6), seed=seeds,
       ties=st.booleans())
def test_global_maxpool_parity(dtype, n, length, c, seed, ties):
    x = normal(seed, (n, length, c), dtype, ties)
    y, argmax = numba_cpu.global_maxpool_forward(x)
    assert_same((y, argmax), reference.global_maxpool_forward(x), dtype)
    assert_same(*both('global_maxpool_backward', normal(seed + 1, y.shape, dtype), argmax,
                      length), dtype)


# ---------------------------------------------------------------------------------------------
# Bias + activation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', DTYPES)
def test_sigmoid_is_stable_for_huge_inputs(impl, dtype):
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype)
    with warnings.catch_warnings(), np.errstate(over='raise', invalid='raise', divide='raise'):
        warnings.simplefilter('error')
        y = impl.bias_act_forward(x, None, 'sigmoid')
    np.testing.assert_allclose(y, [[0, 0, 0.5, 1, 1]], atol=1e-30)
    assert y.dtype == dtype


@pytest.mark.parametrize('activation', reference.ACTIVATIONS)
def test_bias_act_backward_is_the_derivative(impl, activation):
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (4, 5))
    x[np.abs(x) < 0.01] = 0.5                              # keep away from relu's kink
    b = rng.standard_normal(5)
    dy = rng.standard_normal((4, 5))
    eps = 1e-6
    numeric = (impl.bias_act_forward(x + eps, b, activation)
               - impl.bias_act_forward(x - eps, b, activation)) / (2 * eps)
    y = impl.bias_act_forward(x, b, activation)
    np.testing.assert_allclose(impl.bias_act_backward(dy, y, activation), dy * numeric,
                               rtol=1e-6, atol=1e-8)


def test_bias_act_adds_the_bias_per_channel(impl):
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = impl.bias_act_forward(x, np.array([-2, 1], np.float32), 'relu')
    np.testing.assert_array_equal(y, [[0, 2], [0, 4], [2, 6]])
    assert y is not x and impl.bias_act_forward(x, None, 'linear') is not x


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('activation', reference.ACTIVATIONS)
@settings(max_examples=5, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=4), seed=seeds,
       bias=st.booleans())
def test_bias_act_parity(dtype, activation, shape, seed, bias):
    x = 4 * normal(seed, shape, dtype)
    b = normal(seed + 1, shape[-1:], dtype) if bias else None
    y = numba_cpu.bias_act_forward(x, b, activation)
    assert_same(y, reference.bias_act_forward(x, b, activation), dtype)
    dy = normal(seed + 2, shape, dtype)
    assert_same(*both('bias_act_backward', dy, y, activation), dtype)


# ---------------------------------------------------------------------------------------------
# Dropout: the counter-based hash
# ---------------------------------------------------------------------------------------------

MASK32 = 0xFFFFFFFF


def mix32_int(x):
    """lowbias32 on a Python int, straight from the spec."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    x ^= x >> 16
    return x


def keep_int(i, rate, seed, step):
    """Whether flat element i survives, from the spec with Python ints."""
    key = mix32_int((seed & MASK32) ^ mix32_int((step + 0x9E3779B9) & MASK32))
    return mix32_int((i & MASK32) ^ key) >= min(math.floor(rate * 2 ** 32), 2 ** 32 - 1)


def test_mix32_known_values():
    # By hand for x = 1: x ^= x >> 16 -> 1; * 0x7FEB352D -> 0x7FEB352D; ^ (>> 15 = 0xFFD6)
    # -> 0x7FEBCAFB; * 0x846CA68B = 0x422BDF5B_6889F849 -> 0x6889F849 mod 2**32;
    # ^ (>> 16 = 0x6889) -> 0x688990C0.
    assert mix32_int(0) == 0
    assert mix32_int(1) == 0x688990C0
    assert reference.mix32(np.array([0, 1], np.uint32)).tolist() == [0, 0x688990C0]


def test_dropout_known_mask(impl):
    # seed 0, step 0: key = mix32(0 ^ mix32(0x9E3779B9)) = mix32(0x01FCE552) = 0xAE6F80F1;
    # the hashes of elements 0, 1, 2 are 0x944FB554, 0xB2FCF063, 0xFDD0CAF2, and rate 0.7
    # drops those below floor(0.7 * 2**32) = 0xB3333333: the first two.
    assert mix32_int(0x01FCE552) == 0xAE6F80F1
    assert [mix32_int(i ^ 0xAE6F80F1) for i in range(3)] == \
        [0x944FB554, 0xB2FCF063, 0xFDD0CAF2]
    mask = impl.dropout_mask(3, 0.7, 0, 0, np.float64)
    np.testing.assert_array_equal(mask, [0, 0, 1 / (1 - 0.7)])


def test_mix32_matches_python_integers():
    x = np.random.default_rng(0).integers(0, 2 ** 32, 1000, dtype=np.uint64).astype(np.uint32)
    assert reference.mix32(x).tolist() == [mix32_int(int(v)) for v in x]


def test_dropout_mask_matches_the_spec_bit_for_bit(impl):
    rate, seed, step = 0.4, 12345, 7
    mask = impl.dropout_mask((10, 30), rate, seed, step, np.float32)
    expected = [np.float32(1 / (1 - rate)) if keep_int(i, rate, seed, step) else 0
                for i in range(300)]
    np.testing.assert_array_equal(mask.reshape(-1), np.array(expected, np.float32))
    assert mask.dtype == np.float32 and mask.shape == (10, 30)


def test_dropout_mask_statistics_and_reproducibility(impl):
    mask = impl.dropout_mask((200, 500), 0.3, 42, 1, np.float64)
    assert abs((mask == 0).mean() - 0.3) < 0.005                    # 3.4 sigma for 1e5 draws
    assert set(np.unique(mask)) == {0.0, 1 / 0.7}
    np.testing.assert_array_equal(mask, impl.dropout_mask((200, 500), 0.3, 42, 1, np.float64))
    changed = (mask != impl.dropout_mask((200, 500), 0.3, 42, 2, np.float64)).mean()
    assert abs(changed - 2 * 0.3 * 0.7) < 0.01                      # independent masks
    assert (impl.dropout_mask(7, 0.0, 1, 1, np.float32) == 1).all()


def test_dropout_seed_and_step_wrap_modulo_2_32(impl):
    np.testing.assert_array_equal(impl.dropout_mask(64, 0.5, 3 + 2 ** 32, -1, np.float32),
                                  impl.dropout_mask(64, 0.5, 3, 2 ** 32 - 1, np.float32))


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@PARITY
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
       rate=st.floats(0, 0.99), seed=st.integers(-2 ** 40, 2 ** 40), step=st.integers(0, 10 ** 6))
def test_dropout_mask_parity(dtype, shape, rate, seed, step):
    mask, expected = both('dropout_mask', tuple(shape), rate, seed, step, dtype)
    assert mask.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(mask, expected)


# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('dtype', DTYPES)
def test_softmax_xent_is_finite_for_huge_logits(impl, dtype):
    logits = np.array([[1e4, -1e4, 0], [-1e4, -1e4, 1e4]], dtype)
    loss, probs = impl.softmax_xent_forward(logits, np.array([0, 0]))
    assert np.isfinite(loss).all() and np.isfinite(probs).all()
    np.testing.assert_allclose(loss, [0, 2e4], rtol=1e-6)
    np.testing.assert_allclose(probs, [[1, 0, 0], [0, 0, 1]])
    assert loss.dtype == probs.dtype == dtype


def test_softmax_xent_matches_log_sum_exp(impl):
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
    loss, probs = impl.softmax_xent_forward(logits, labels)
    lse = np.log(np.exp(logits).sum(axis=1))
    np.testing.assert_allclose(loss, lse - logits[np.arange(6), labels], rtol=1e-12)
    np.testing.assert_allclose(probs, np.exp(logits - lse[:, None]), rtol=1e-12)
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(impl.softmax_xent_forward(logits, onehot)[0], loss, rtol=1e-12)
    g = rng.standard_normal(6)
    np.testing.assert_allclose(impl.softmax_xent_backward(probs, labels, g),
                               g[:, None] * (probs - onehot), rtol=1e-12)


def test_softmax_xent_backward_is_the_gradient_for_soft_labels(impl):
    rng = np.random.default_rng(2)
    logits, target = rng.standard_normal((3, 5)), rng.random((3, 5))   # rows do not sum to 1
    g, eps = rng.standard_normal(3), 1e-6
    numeric = np.empty_like(logits)
    for index in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[index] = eps
        diff = (impl.softmax_xent_forward(logits + step, target)[0]
                - impl.softmax_xent_forward(logits - step, target)[0])
        numeric[index] = g @ diff / (2 * eps)
    probs = impl.softmax_xent_forward(logits, target)[1]
    np.testing.assert_allclose(impl.softmax_xent_backward(probs, target, g), numeric,
                               rtol=1e-6, atol=1e-8)


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@PARITY
@given(n=st.integers(1, 6), k=st.integers(1, 12), seed=seeds, sparse=st.booleans(),
       scale=st.sampled_from([1.0, 30.0, 1e4]))
def test_softmax_xent_parity(dtype, n, k, seed, sparse, scale):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.standard_normal((n, k))).astype(dtype)
    target = rng.integers(0, k, n) if sparse else rng.random((n, k)).astype(dtype)
    loss, probs = numba_cpu.softmax_xent_forward(logits, target)
    assert_same((loss, probs), reference.softmax_xent_forward(logits, target), dtype)
    g = rng.standard_normal(n).astype(dtype)
    assert_same(*both('softmax_xent_backward', probs, target, g), dtype)


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------

def test_embedding_backward_accumulates_repeated_ids(impl):
    ids = np.array([[1, 3], [1, 1]])
    dy = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    dW = impl.embedding_backward(ids, dy, 5)
    np.testing.assert_array_equal(dW, [[0, 0], [0 + 4 + 6, 1 + 5 + 7], [0, 0], [2, 3], [0, 0]])
    assert dW.dtype == np.float32


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@PARITY
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), depth=st.integers(1, 150),
       vocab=st.integers(1, 8), seed=seeds)
def test_embedding_backward_parity(dtype, shape, depth, vocab, seed):
    ids = np.random.default_rng(seed).integers(0, vocab, shape)
    dy = normal(seed, tuple(shape) + (depth,), dtype)
    assert_same(*both('embedding_backward', ids, dy, vocab), dtype)


# ---------------------------------------------------------------------------------------------
# Optimizer updates
# ---------------------------------------------------------------------------------------------

def sgd_formula(w, g, v, lr, momentum, nesterov):
    if momentum == 0:
        return w - lr * g, v
    v = momentum * v - lr * g
    return (w + momentum * v - lr * g if nesterov else w + v), v


def rmsprop_formula(w, g, a, mg, vel, lr, rho, momentum, eps):
    a = rho * a + (1 - rho) * g * g
    if mg is not None:
        mg = rho * mg + (1 - rho) * g
    step = lr * g / np.sqrt(a - (0 if mg is None else mg * mg) + eps)
    if vel is not None:
        vel = momentum * vel + step
        step = vel
    return w - step, a, mg, vel


def adam_formula(w, g, m, v, v_max, lr, b1, b2, eps, t):
    """The paper's bias-corrected form, whose epsilon is Keras's over sqrt(1 - b2**t)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    v_max = None if v_max is None else np.maximum(v_max, v)
    m_hat, v_hat = m / (1 - b1 ** t), (v if v_max is None else v_max) / (1 - b2 ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - b2 ** t)), m, v, v_max


def adagrad_formula(w, g, acc, lr, eps):
    acc = acc + g * g
    return w - lr * g / np.sqrt(acc + eps), acc


def adadelta_formula(w, g, a, big_d, lr, rho, eps):
    """Zeiler's Adadelta (eq. 14: RMS[dx]_{t-1} / RMS[g]_t), times Keras's learning rate."""
    a = rho * a + (1 - rho) * g * g
    dx = -np.sqrt(big_d + eps) / np.sqrt(a + eps) * g
    return w + lr * dx, a, rho * big_d + (1 - rho) * dx * dx


def adamax_formula(w, g, m, u, lr, b1, b2, eps, t):
    m = b1 * m + (1 - b1) * g
    u = np.maximum(b2 * u, np.abs(g))
    return w - lr / (1 - b1 ** t) * m / (u + eps), m, u


def nadam_formula(w, g, m, v, lr, b1, b2, eps, t, u_product):
    """Dozat's Nadam as Keras writes it: m_hat mixes the next momentum's look-ahead on m with
    the current gradient, each with its own bias correction."""
    mu = [b1 * (1 - 0.5 * 0.96 ** s) for s in (t, t + 1)]
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = mu[1] * m / (1 - u_product * mu[1]) + (1 - mu[0]) * g / (1 - u_product)
    return w - lr * m_hat / (np.sqrt(v / (1 - b2 ** t)) + eps), m, v


def u_product(b1, t):
    return math.prod(b1 * (1 - 0.5 * 0.96 ** s) for s in range(1, t + 1))


# name: (formula, [(state kinds, hyperparameters)]); a state is signed ('s'), non-negative
# ('p'), at least 1 ('q', above any centered mean squared), a small mean ('c') or absent (None).
OPTIMIZERS = {
    'sgd_update': (sgd_formula, [((None,), (0.1, 0.0, False)), (('s',), (0.05, 0.9, False)),
                                 (('s',), (0.05, 0.9, True))]),
    'rmsprop_update': (rmsprop_formula, [(('p', None, None), (0.01, 0.9, 0.0, 1e-7)),
                                         (('p', None, 's'), (0.01, 0.9, 0.8, 1e-7)),
                                         (('q', 'c', None), (0.01, 0.8, 0.0, 1e-7)),
                                         (('q', 'c', 's'), (0.01, 0.8, 0.5, 1e-7))]),
    'adam_update': (adam_formula, [(('s', 'p', None), (0.01, 0.9, 0.999, 1e-7, t))
                                   for t in (1, 2, 10)] +
                    [(('s', 'p', 'p'), (0.01, 0.9, 0.999, 1e-7, t)) for t in (1, 7)]),
    'adagrad_update': (adagrad_formula, [(('p',), (0.01, 1e-7))]),
    'adadelta_update': (adadelta_formula, [(('p', 'p'), (1.0, 0.95, 1e-7)),
                                           (('p', 'p'), (0.01, 0.5, 1e-3))]),
    'adamax_update': (adamax_formula, [(('s', 'p'), (0.01, 0.9, 0.999, 1e-7, t))
                                       for t in (1, 5)]),
    'nadam_update': (nadam_formula, [(('s', 'p'), (0.01, 0.9, 0.999, 1e-7, t, u_product(0.9, t)))
                                     for t in (1, 3, 40)]),
}
OPTIMIZER_CASES = [(name, kinds, hyper) for name, (_, cases) in OPTIMIZERS.items()
                   for kinds, hyper in cases]
STATE = {'s': lambda x: x, 'p': np.abs, 'q': lambda x: 1 + np.abs(x),
         'c': lambda x: 0.1 * np.tanh(x)}


def optimizer_arrays(kinds, dtype, seed, shape=(3, 4)):
    """param, grad and the state arrays of ``kinds`` (None where a state is absent)."""
    rng = np.random.default_rng(seed)
    param, grad = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    return [param, grad] + [None if kind is None else
                            STATE[kind](rng.standard_normal(shape)).astype(dtype)
                            for kind in kinds]


@pytest.mark.parametrize('name, kinds, hyper', OPTIMIZER_CASES)
def test_optimizer_updates_follow_the_formulas(impl, name, kinds, hyper):
    param, grad, *state = optimizer_arrays(kinds, np.float64, 3)
    expected = OPTIMIZERS[name][0](param, grad, *state, *hyper)
    arrays = [param, *state]
    getattr(impl, name)(param, grad, *state, *hyper)
    for actual, want in zip(arrays, expected):
        assert (actual is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(actual, want, rtol=1e-12, atol=1e-15)


def test_sgd_without_momentum_needs_no_velocity(impl):
    param = np.ones(4, np.float32)
    impl.sgd_update(param, np.full(4, 2, np.float32), None, 0.25, 0.0, False)
    np.testing.assert_array_equal(param, np.full(4, 0.5, np.float32))
    assert param.dtype == np.float32


@needs_numba
def test_numba_refuses_to_update_a_copy():
    param = np.ones((4, 4), np.float32)[:, ::2]
    with pytest.raises(ValueError, match='C-contiguous'):
        numba_cpu.sgd_update(param, np.ones_like(param), None, 0.1, 0.0, False)


@needs_numba
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('name, kinds, hyper', OPTIMIZER_CASES)
@settings(max_examples=5, deadline=None)
@given(shape=st.lists(st.integers(1, 50), min_size=1, max_size=3), seed=seeds)
def test_optimizer_parity(dtype, name, kinds, hyper, shape, seed):
    fast = optimizer_arrays(kinds, dtype, seed, tuple(shape))
    slow = [None if a is None else a.copy() for a in fast]
    getattr(numba_cpu, name)(*fast, *hyper)
    getattr(reference, name)(*slow, *hyper)
    for actual, expected in zip(fast, slow):
        if expected is not None:
            assert_same(actual, expected, dtype)


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def cpu_setting():
    """Restores the CPU kernel choice after a test changes it."""
    previous = kernels.set_cpu_kernels(None)
    yield
    kernels.set_cpu_kernels(previous)


@pytest.mark.parametrize('name', kernels.KERNELS)
def test_every_implementation_has_the_reference_signature(name):
    expected = inspect.signature(getattr(reference, name))
    for module in [kernels.get('cuda')] + ([numba_cpu] if numba_cpu else []):
        assert inspect.signature(getattr(module, name)) == expected, module.__name__
    if name == 'dropout_mask':  # plus the array that tells the device
        assert list(inspect.signature(kernels.dropout_mask).parameters) == [
            *expected.parameters, 'like']
    else:
        assert inspect.signature(getattr(kernels, name)) == expected
        assert getattr(kernels, name).__doc__ == getattr(reference, name).__doc__


@needs_numba
def test_numpy_arrays_go_to_numba_by_default(cpu_setting, monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    assert kernels.implementation_for(np.zeros(1)) == 'numba'
    assert kernels.implementations()[:2] == ['reference', 'numba']


def test_the_environment_variable_selects_the_reference(cpu_setting, monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, 'reference')
    assert kernels.implementation_for(np.zeros(1)) == 'reference'
    calls = []
    monkeypatch.setattr(reference, 'im2col', lambda *args: calls.append(args) or 'ran')
    assert kernels.im2col(np.zeros((1, 2, 2, 1)), (1, 1), (1, 1), ((0, 0), (0, 0)),
                          (1, 1)) == 'ran'
    assert len(calls) == 1
    monkeypatch.setenv(kernels.ENV_VAR, 'fortran')
    with pytest.raises(ValueError, match=kernels.ENV_VAR):
        kernels.implementation_for(np.zeros(1))


@needs_numba
def test_set_cpu_kernels_overrides_and_restores(cpu_setting, monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    assert kernels.set_cpu_kernels('reference') is None
    assert kernels.implementation_for(None) == 'reference'
    assert kernels.set_cpu_kernels(None) == 'reference'
    assert kernels.implementation_for(None) == 'numba'
    with pytest.raises(ValueError, match='set_cpu_kernels'):
        kernels.set_cpu_kernels('cuda')


def test_dispatched_kernels_compute_the_same(cpu_setting):
    x = normal(0, (2, 5, 5, 3), np.float32)
    results = []
    for choice in ('reference', 'numba') if numba_cpu else ('reference',):
        kernels.set_cpu_kernels(choice)
        results.append((kernels.im2col(x, (2, 2), (1, 1), ((0, 1), (1, 0)), (1, 1)),
                        kernels.im2col(x=x, ksize=(2, 2), stride=(1, 1), pad=((0, 1), (1, 0)),
                                       dilation=(1, 1)),
                        kernels.dropout_mask((4, 4), 0.5, 1, 2, np.float32, like=x)))
    for result in results[1:]:
        assert_same(result, results[0], np.float32)


def test_missing_numba_warns_once_and_falls_back(cpu_setting, monkeypatch):
    def get_without_numba(name):
        if name == 'numba':
            raise ImportError('No module named numba')
        return reference
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    monkeypatch.setattr(kernels, 'get', get_without_numba)
    kernels._numba_loads.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match='Numba is not available'):
            assert kernels.implementation_for(np.zeros(1)) == 'reference'
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            assert kernels.bias_act_forward(np.ones((1, 2)), None, 'relu').tolist() == [[1, 1]]
    finally:
        kernels._numba_loads.cache_clear()


def test_unknown_implementation_is_a_value_error():
    with pytest.raises(ValueError, match='unknown kernel implementation'):
        kernels.get('opencl')


COMPILE_TWO_KERNELS = """
import numba
import numpy as np
from minidl.backends import numba_cpu
numba.njit(lambda x: x + 1)(1)  # not minidl's: compiled in every run, never announced
y, argmax = numba_cpu.global_maxpool_forward(np.ones((1, 2, 3), np.float32))
numba_cpu.global_maxpool_backward(y, argmax, 2)
"""


def run_with_numba_cache(cache_dir):
    """stderr of a fresh process that compiles a function of its own and runs two small
    kernels, with Numba's cache in cache_dir."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir),
               PYTHONPATH=str(Path(minidl.__file__).parents[1]))
    result = subprocess.run([sys.executable, '-c', COMPILE_TWO_KERNELS], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stderr


@needs_numba
def test_a_cold_compile_says_so_once_and_a_cache_load_is_silent(tmp_path):
    assert run_with_numba_cache(tmp_path).count(numba_cpu.COMPILE_NOTICE) == 1
    assert list(tmp_path.rglob('*.nbc'))  # the kernels were compiled and cached
    assert numba_cpu.COMPILE_NOTICE not in run_with_numba_cache(tmp_path)
