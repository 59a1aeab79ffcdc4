"""Elementwise math and matmul: forward equals NumPy, float64 gradients check out."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minidl
import minidl.functions as F

BINARY = {
    'add': (F.add, np.add),
    'sub': (F.sub, np.subtract),
    'mul': (F.mul, np.multiply),
    'div': (F.div, np.divide),
    'pow': (F.pow, np.power),
    'maximum': (F.maximum, np.maximum),
    'minimum': (F.minimum, np.minimum),
}
UNARY = {
    'neg': (F.neg, np.negative, (-3, 3)),
    'exp': (F.exp, np.exp, (-3, 3)),
    'log': (F.log, np.log, (0.5, 3)),
    'sqrt': (F.sqrt, np.sqrt, (0.5, 3)),
    'abs': (F.abs, np.abs, (0.1, 3)),
    'clip': (lambda x: F.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), (-2, 2)),
}
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                    max_side=3)


def _values(shape, low, high, seed):
    return np.random.default_rng(seed).uniform(low, high, shape)


def _away_from_kinks(x, kinks=(0.5, -0.5, 0.0), margin=0.05):
    """Move values off points where the derivative jumps, so finite differences are valid."""
    for k in kinks:
        x = np.where(np.abs(x - k) < margin, k + margin * 2, x)
    return x


@pytest.mark.parametrize('name', BINARY)
@given(shapes=broadcast_pairs, seed=st.integers(0, 2**16))
def test_binary_forward_and_gradient(check_grad, name, shapes, seed):
    ours, reference = BINARY[name]
    a = _values(shapes.input_shapes[0], 0.5, 2.0, seed)
    b = _values(shapes.input_shapes[1], 0.5, 2.0, seed + 1)
    if name in ('maximum', 'minimum'):
        b = np.where(np.abs(a - b) < 0.05, b + 0.2, b)
    np.testing.assert_allclose(ours(a, minidl.Tensor(b)).data, reference(a, b))
    check_grad(ours, a, b)


@pytest.mark.parametrize('name', UNARY)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4),
       seed=st.integers(0, 2**16))
def test_unary_forward_and_gradient(check_grad, name, shape, seed):
    ours, reference, (low, high) = UNARY[name]
    x = _away_from_kinks(_values(shape, low, high, seed))
    np.testing.assert_allclose(ours(minidl.Tensor(x)).data, reference(x))
    check_grad(ours, x)


@given(m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(1, 4),
       batch=st.sampled_from([(), (2,)]), seed=st.integers(0, 2**16))
def test_matmul_forward_and_gradient(check_grad, m, k, n, batch, seed):
    a = _values(batch + (m, k), -1, 1, seed)
    b = _values((k, n), -1, 1, seed + 1)
    np.testing.assert_allclose(F.matmul(minidl.Tensor(a), b).data, a @ b)
    check_grad(F.matmul, a, b)


def test_matmul_vector_times_matrix(check_grad):
    check_grad(F.matmul, np.arange(3.0), np.ones((3, 2)))


def test_matmul_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r'matmul.*\(2, 3\).*\(4, 5\)'):
        F.matmul(minidl.tensor(np.ones((2, 3))), np.ones((4, 5)))


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r'add.*\(2, 3\).*\(4,\)'):
        minidl.tensor(np.ones((2, 3))) + np.ones(4)


def test_python_scalars_keep_float32():
    x = minidl.tensor([1.0, 2.0])
    assert (x * 2 + 1.5).dtype == np.float32
    assert (2 ** x).dtype == np.float32


def test_operators_match_functions():
    a = minidl.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64)
    b = np.array([[0.5, 1.5], [2.5, 3.5]])
    np.testing.assert_allclose((a + b).data, a.data + b)
    np.testing.assert_allclose((b - a).data, b - a.data)
    np.testing.assert_allclose((a / 2).data, a.data / 2)
    np.testing.assert_allclose((1 / a).data, 1 / a.data)
    np.testing.assert_allclose((-a).data, -a.data)
    np.testing.assert_allclose((a @ b).data, a.data @ b)
    np.testing.assert_allclose((b @ a).data, b @ a.data)
    np.testing.assert_allclose((a ** 2).data, a.data ** 2)
    assert (a > 2).data.tolist() == [[False, False], [True, True]]
