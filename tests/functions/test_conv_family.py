"""The convolution family built on conv2d: grouped, depthwise, separable, causal, transposed.

Each is checked against a definition written independently (the transposed convolution as
the adjoint of the convolution) and by float64 gradients over drawn shapes.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minidl
import minidl.functions as F
from minidl.functions.geometry import transposed_length

pytestmark = pytest.mark.usefixtures('cpu_kernels')


def _rng(seed):
    return np.random.default_rng(seed)


@given(k=st.integers(1, 3), s=st.integers(1, 3), d=st.integers(1, 2),
       padding=st.sampled_from(['valid', 'same']), size=st.integers(3, 7),
       seed=st.integers(0, 2**16))
def test_transposed_conv_is_the_adjoint_of_conv(check_grad, k, s, d, padding, size, seed):
    """<conv2d(y, K), x> = <y, conv2d_transpose(x, K)> for every y and x: the transposed
    convolution is the convolution's transpose, with the sizes Keras gives it."""
    assume(size >= d * (k - 1) + 1)
    rng = _rng(seed)
    y = rng.standard_normal((2, size, size + 1, 3))
    K = rng.standard_normal((k, k, 3, 2))
    down = F.conv2d(minidl.tensor(y), K, stride=s, padding=padding, dilation=d).data
    # the output_padding that gives back y's size (Keras allows 0 <= output_padding < S)
    extra = tuple(n - transposed_length(m, k, s, padding, 0, d)
                  for n, m in zip(y.shape[1:3], down.shape[1:3]))
    assume(all(0 <= e < max(s, 1) for e in extra) and (s > 1 or extra == (0, 0)))
    x = rng.standard_normal(down.shape)
    up = F.conv2d_transpose(minidl.tensor(x), K, stride=s, padding=padding,
                            output_padding=extra, dilation=d).data
    assert up.shape == y.shape
    np.testing.assert_allclose((down * x).sum(), (y * up).sum(), rtol=1e-10)
    b = rng.standard_normal(3)
    check_grad(lambda x, K, b: F.conv2d_transpose(x, K, b, s, padding, extra, d), x, K, b)


@given(k=st.integers(1, 3), s=st.integers(1, 2), m=st.integers(1, 2),
       padding=st.sampled_from(['valid', 'same']), seed=st.integers(0, 2**16))
def test_depthwise_is_each_channel_convolved_alone(check_grad, k, s, m, padding, seed):
    rng = _rng(seed)
    x, W, b = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((k, k, 3, m)), \
        rng.standard_normal(3 * m)
    y = F.depthwise_conv2d(minidl.tensor(x), W, b, s, padding).data
    for c in range(3):
        alone = F.conv2d(minidl.tensor(x[..., c:c + 1]), W[:, :, c:c + 1, :], None, s,
                         padding).data
        np.testing.assert_allclose(y[..., c * m:(c + 1) * m], alone + b[c * m:(c + 1) * m],
                                   rtol=1e-12, atol=1e-12)
    check_grad(lambda x, W, b: F.depthwise_conv2d(x, W, b, s, padding), x, W, b)


@given(k=st.integers(1, 3), d=st.integers(1, 2), m=st.integers(1, 2),
       padding=st.sampled_from(['valid', 'same']), seed=st.integers(0, 2**16))
def test_separable_is_depthwise_then_pointwise(check_grad, k, d, m, padding, seed):
    rng = _rng(seed)
    x = rng.standard_normal((2, 6, 5, 2))
    dw, pw, b = rng.standard_normal((k, k, 2, m)), rng.standard_normal((1, 1, 2 * m, 3)), \
        rng.standard_normal(3)
    y = F.separable_conv2d(minidl.tensor(x), dw, pw, b, 1, padding, d).data
    want = F.conv2d(F.depthwise_conv2d(minidl.tensor(x), dw, None, 1, padding, d), pw, b).data
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    check_grad(lambda x, dw, pw, b: F.separable_conv2d(x, dw, pw, b, 1, padding, d),
               x, dw, pw, b)
    seq = rng.standard_normal((2, 7, 2))
    check_grad(lambda x, dw, pw, b: F.separable_conv1d(x, dw, pw, b, 1, padding, d),
               seq, dw[0], pw[0], b)


@given(k=st.integers(1, 4), d=st.integers(1, 3), s=st.integers(1, 2),
       seed=st.integers(0, 2**16))
def test_causal_conv1d_sees_only_the_past(check_grad, k, d, s, seed):
    rng = _rng(seed)
    x, W = rng.standard_normal((2, 8, 2)), rng.standard_normal((k, 2, 3))
    y = F.conv1d(minidl.tensor(x), W, None, s, 'causal', d).data
    padded = np.pad(x, ((0, 0), (d * (k - 1), 0), (0, 0)))
    np.testing.assert_allclose(y, F.conv1d(minidl.tensor(padded), W, None, s, 'valid', d).data,
                               rtol=1e-12, atol=1e-12)
    assert y.shape[1] == -(-8 // s)
    check_grad(lambda x, W: F.conv1d(x, W, None, s, 'causal', d), x, W)


def test_conv1d_transpose_gradients(check_grad):
    rng = _rng(5)
    x, W, b = rng.standard_normal((2, 4, 3)), rng.standard_normal((4, 2, 3)), \
        rng.standard_normal(2)
    y = F.conv1d_transpose(minidl.tensor(x), W, b, 2, 'valid', 1)
    assert y.shape == (2, (4 - 1) * 2 + 4 + 1, 2)
    check_grad(lambda x, W, b: F.conv1d_transpose(x, W, b, 2, 'valid', 1), x, W, b)


def test_transposed_conv_checks_its_shapes():
    with pytest.raises(ValueError, match=r'conv2d_transpose: expected input .*\(1, 3, 3, 2\) '
                                         r'and \(3, 3, 4, 5\)'):
        F.conv2d_transpose(minidl.tensor(np.ones((1, 3, 3, 2))), np.ones((3, 3, 4, 5)))
