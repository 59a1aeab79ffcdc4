"""Activations and losses: NumPy formulas, stability at +-1e4, float64 gradients."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minidl
import minidl.functions as F
from minidl.functions import activation as activations

pytestmark = pytest.mark.usefixtures('cpu_kernels')  # every op on Numba and on the reference

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


ACTIVATIONS = {
    'relu': (F.relu, lambda x: np.maximum(x, 0)),
    'sigmoid': (F.sigmoid, _sigmoid),
    'tanh': (F.tanh, np.tanh),
    'softmax': (F.softmax, _softmax),
    'log_softmax': (F.log_softmax, lambda x: np.log(_softmax(x))),
}


@pytest.mark.parametrize('name', ACTIVATIONS)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_activation(check_grad, name, shape, seed):
    ours, reference = ACTIVATIONS[name]
    x = np.random.default_rng(seed).uniform(-3, 3, shape)
    x = np.where(np.abs(x) < 0.05, 0.1, x)
    np.testing.assert_allclose(ours(minidl.Tensor(x)).data, reference(x), rtol=1e-6,
                               atol=1e-12)
    check_grad(ours, x)


@pytest.mark.parametrize('name', sorted(set(activations.ACTIVATIONS) - set(ACTIVATIONS)))
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_composed_activations_have_float64_gradients(check_grad, name, shape, seed):
    """Each Keras activation composed of primitives (values: tests/test_keras_numbers.py),
    away from its kinks (0, and +-3 and 6 for the hard ones)."""
    x = np.random.default_rng(seed).uniform(-7, 7, shape)
    x = np.where(np.min(np.abs(x[..., None] - [0, -3, 3, 6]), axis=-1) < 0.05, 0.5, x)
    fn = activations.ACTIVATIONS[name]
    assert fn(minidl.Tensor(x.astype(np.float32))).dtype == np.float32
    check_grad(fn, x)


def test_erf_is_accurate_to_float64_rounding_on_either_side_of_its_cut():
    x = np.concatenate([np.linspace(-9, 9, 2001), [2.5, -2.5, 0.0, 1e-8]])
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(F.erf(minidl.Tensor(x)).data, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize('approximate', [False, True])
def test_gelu_is_x_times_the_normal_cdf(check_grad, approximate):
    x = np.linspace(-5, 5, 41)
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(F.gelu(minidl.Tensor(x), approximate).data, x * cdf,
                               atol=1e-3 if approximate else 1e-14)
    check_grad(lambda t: F.gelu(t, approximate), x)


def test_activation_names_and_callables():
    assert activations.check_activation(None) == 'linear'
    assert activations.check_activation(F.relu) == 'relu'  # fuses, saves and loads by name
    assert activations.check_activation(F.silu) == 'silu'
    double = lambda t: t * 2  # noqa: E731
    assert activations.check_activation(double) is double
    x = minidl.Tensor(np.array([[1.0, -2.0]]))
    np.testing.assert_array_equal(F.bias_act(x, np.array([1.0, 1.0]), double).data, [[4, -2]])
    with pytest.raises(ValueError, match="unknown activation 'relux'; expected a callable"):
        activations.check_activation('relux')
    with pytest.raises(TypeError, match='an activation must be a name or a callable, got 3'):
        activations.check_activation(3)


@pytest.mark.parametrize('activation', ['linear', 'relu', 'sigmoid', 'tanh', 'softmax', 'gelu',
                                        'elu'])
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_bias_act(check_grad, activation, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, shape)
    b = rng.uniform(-1, 1, shape[-1:])
    z = x + b
    x = np.where(np.abs(z) < 0.05, x + 0.2, x)
    check_grad(lambda x, b: F.bias_act(x, b, activation), x, b)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_activations_are_stable_for_huge_logits(dtype):
    x = minidl.tensor(np.array([[-1e4, 0.0, 1e4], [1e4, 1e4, -1e4]], dtype=dtype))
    with np.errstate(over='raise', divide='raise', invalid='raise'):
        for fn in (F.sigmoid, F.tanh, F.softmax, F.log_softmax):
            out = fn(x).data
            assert np.all(np.isfinite(out)) or fn is F.log_softmax
            assert out.dtype == dtype
        assert np.isfinite(F.log_softmax(x).data[:, :2]).all()
        loss = F.softmax_cross_entropy(x, np.array([0, 2]))
        assert np.isfinite(loss.item()) and loss.item() == pytest.approx(2e4, rel=1e-3)


@given(n=st.integers(1, 4), k=st.integers(2, 5), sparse=st.booleans(),
       reduction=st.sampled_from(['mean', 'sum', 'none']), seed=st.integers(0, 2**16))
def test_softmax_cross_entropy(check_grad, n, k, sparse, reduction, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * 3
    labels = rng.integers(0, k, n)
    target = labels if sparse else np.eye(k)[labels]
    expected = -np.log(_softmax(logits)[np.arange(n), labels])
    expected = {'mean': expected.mean(), 'sum': expected.sum(), 'none': expected}[reduction]
    ours = F.softmax_cross_entropy(minidl.Tensor(logits), target, reduction)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-10)
    check_grad(lambda z: F.softmax_cross_entropy(z, target, reduction), logits)


@given(shape=shapes, seed=st.integers(0, 2**16))
def test_sigmoid_binary_cross_entropy(check_grad, shape, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape) * 3
    t = rng.integers(0, 2, shape).astype(np.float64)
    p = _sigmoid(z)
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    ours = F.sigmoid_binary_cross_entropy(minidl.Tensor(z), t)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-8)
    check_grad(lambda z: F.sigmoid_binary_cross_entropy(z, t), z)


def test_binary_cross_entropy_is_stable_for_huge_logits():
    z = minidl.tensor(np.array([1e4, -1e4, 1e4]), requires_grad=True)
    loss = F.sigmoid_binary_cross_entropy(z, np.array([0.0, 1.0, 1.0]))
    loss.backward()
    assert loss.item() == pytest.approx(2e4 / 3)
    assert np.isfinite(z.grad).all()


@given(shape=shapes, seed=st.integers(0, 2**16))
def test_mean_squared_error(check_grad, shape, seed):
    rng = np.random.default_rng(seed)
    p, t = rng.standard_normal(shape), rng.standard_normal(shape)
    np.testing.assert_allclose(F.mean_squared_error(minidl.Tensor(p), t).data,
                               ((p - t) ** 2).mean())
    check_grad(lambda p: F.mean_squared_error(p, t), p)


def test_cross_entropy_target_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(4, 3\).*\(4,\).*\(4, 3\).*got \(3,\)'):
        F.softmax_cross_entropy(minidl.tensor(np.zeros((4, 3))), np.zeros(3, dtype=int))
