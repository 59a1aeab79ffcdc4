"""Convolution, pooling, dropout, embedding and batch norm: values and float64 gradients."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl
import minidl.functions as F
from minidl.functions.conv import Conv2d

pytestmark = pytest.mark.usefixtures('cpu_kernels')  # every op on Numba and on the reference


def naive_conv2d(x, W, stride, pad):
    """Direct definition: every output is a dot product of a window with the kernel."""
    (sh, sw), ((pt, pb), (pl, pr)) = stride, pad
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw, _, cout = W.shape
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    y = np.zeros((x.shape[0], oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            y[:, i, j] = np.tensordot(window, W, axes=([1, 2, 3], [0, 1, 2]))
    return y


def naive_grouped_conv2d(x, W, stride, pad, groups):
    """Each group of channels convolved alone with its own filters, then side by side."""
    cg, fg = x.shape[3] // groups, W.shape[3] // groups
    return np.concatenate([naive_conv2d(x[..., g * cg:(g + 1) * cg],
                                        W[..., g * fg:(g + 1) * fg], stride, pad)
                           for g in range(groups)], axis=3)


@st.composite
def conv_case(draw):
    """Shapes whose windows tile the input, or (valid) leave up to S - 1 rows unread."""
    k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from(['valid', 'same']))
    out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    size = tuple(o * st_ for o, st_ in zip(out, s)) if padding == 'same' else \
        tuple((o - 1) * st_ + kk + draw(st.integers(0, st_ - 1))
              for o, st_, kk in zip(out, s, k))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    return dict(n=draw(st.integers(1, 2)), size=size, groups=groups,
                cin=groups * draw(st.integers(1, 2)), cout=groups * draw(st.integers(1, 2)),
                k=k, stride=s, padding=padding, seed=draw(st.integers(0, 2**16)))


@given(case=conv_case())
def test_conv2d_matches_the_definition_and_its_gradients(check_grad, case):
    rng = np.random.default_rng(case['seed'])
    x = rng.standard_normal((case['n'],) + case['size'] + (case['cin'],))
    W = rng.standard_normal(case['k'] + (case['cin'] // case['groups'], case['cout']))
    b = rng.standard_normal(case['cout'])
    fn = Conv2d(case['stride'], case['padding'], groups=case['groups'])
    y = fn(x, W, b).data
    want = naive_grouped_conv2d(x, W, case['stride'], fn.geometry['pad'], case['groups'])
    np.testing.assert_allclose(y, want + b, rtol=1e-10, atol=1e-12)
    check_grad(lambda x, W, b: F.conv2d(x, W, b, case['stride'], case['padding'],
                                        groups=case['groups']), x, W, b)


def test_conv2d_keeps_float32():
    x = minidl.tensor(np.ones((1, 5, 5, 2), np.float32), requires_grad=True)
    W = minidl.tensor(np.ones((3, 3, 2, 1), np.float32), requires_grad=True)
    y = F.conv2d(x, W, padding='same')
    y.sum().backward()
    assert y.dtype == x.grad.dtype == W.grad.dtype == np.float32


def test_shared_weight_gradient_of_the_backprop_lesson():
    """1-D conv, one 2-tap filter (w1, w2) over inputs z1..z4: outputs a_i = w1 z_i + w2 z_i+1.

    With upstream deltas d1..d3, dL/dw1 = z1 d1 + z2 d2 + z3 d3 and dL/dw2 = z2 d1 + z3 d2 + z4 d3:
    the weight's gradient is the sum over every position that shares it.
    """
    z = np.array([1.0, 2.0, -1.0, 3.0])
    delta = np.array([0.5, -2.0, 1.5])
    x = minidl.Tensor(z.reshape(1, 4, 1))
    w = minidl.Tensor(np.array([0.3, -0.7]).reshape(2, 1, 1), requires_grad=True)
    F.conv1d(x, w).backward(delta.reshape(1, 3, 1))
    assert w.grad[0, 0, 0] == pytest.approx(z[0] * delta[0] + z[1] * delta[1] + z[2] * delta[2])
    assert w.grad[1, 0, 0] == pytest.approx(z[1] * delta[0] + z[2] * delta[1] + z[3] * delta[2])


@given(length=st.integers(3, 8), k=st.integers(1, 3), stride=st.integers(1, 2),
       dilation=st.integers(1, 2), padding=st.sampled_from(['valid', 'same']),
       seed=st.integers(0, 2**16))
def test_conv1d_gradients(check_grad, length, k, stride, dilation, padding, seed):
    span = dilation * (k - 1) + 1
    if padding == 'valid':
        length = span + stride * max(0, (length - span) // stride)
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((2, length, 2)), rng.standard_normal((k, 2, 3)), \
        rng.standard_normal(3)
    check_grad(lambda x, W, b: F.conv1d(x, W, b, stride, padding, dilation), x, W, b)


def test_conv_floors_like_keras_and_a_window_larger_than_its_input_shows_the_formula():
    y = F.conv2d(minidl.tensor(np.ones((1, 10, 10, 1))), np.ones((3, 3, 1, 1)), stride=2)
    assert y.shape == (1, 4, 4, 1)
    assert F.conv1d(minidl.tensor(np.ones((1, 500, 1))), np.ones((7, 1, 1)), stride=2).shape \
        == (1, 247, 1)
    with pytest.raises(ValueError, match=r'\(2 - 3 \+ 0\)/1 \+ 1 = 0 is less than 1'):
        F.conv2d(minidl.tensor(np.ones((1, 2, 10, 1))), np.ones((3, 3, 1, 1)))
    with pytest.raises(ValueError, match=r'expected input of shape \(N, H, W, 3\)'):
        F.conv2d(minidl.tensor(np.ones((1, 10, 10, 1))), np.ones((3, 3, 3, 1)))
    with pytest.raises(ValueError, match=r'4 filters cannot be split into groups=3'):
        F.conv2d(minidl.tensor(np.ones((1, 5, 5, 3))), np.ones((3, 3, 1, 4)), groups=3)


def _distinct(shape, seed):
    """Values with no ties, so max pooling has one clear winner per window."""
    return np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) / 7.0


@pytest.mark.parametrize('pool', ['max', 'avg'])
@given(size=st.integers(2, 6), k=st.integers(1, 3), stride=st.integers(1, 3),
       padding=st.sampled_from(['valid', 'same']), seed=st.integers(0, 2**16))
def test_pool2d(check_grad, pool, size, k, stride, padding, seed):
    k = min(k, size)
    x = _distinct((2, size, size + 1, 2), seed)
    ours = F.max_pool2d if pool == 'max' else F.avg_pool2d
    y = ours(minidl.Tensor(x), k, stride, padding).data
    if padding == 'valid':
        reduce = np.max if pool == 'max' else np.mean
        oh, ow = (size - k) // stride + 1, (size + 1 - k) // stride + 1
        expected = np.empty((2, oh, ow, 2))
        for i in range(oh):
            for j in range(ow):
                window = x[:, i * stride:i * stride + k, j * stride:j * stride + k]
                expected[:, i, j] = reduce(window, axis=(1, 2))
        np.testing.assert_allclose(y, expected)
    check_grad(lambda t: ours(t, k, stride, padding), x)


@pytest.mark.parametrize('pool', ['max', 'avg'])
def test_pool1d(check_grad, pool):
    x = _distinct((2, 11, 3), 0)
    ours = F.max_pool1d if pool == 'max' else F.avg_pool1d
    y = ours(minidl.Tensor(x), 5).data
    reduce = np.max if pool == 'max' else np.mean
    np.testing.assert_allclose(y, reduce(x[:, :10].reshape(2, 2, 5, 3), axis=2))
    check_grad(lambda t: ours(t, 5), x)


@pytest.mark.parametrize('shape', [(2, 3, 4, 2), (3, 5, 2)])
def test_global_pools(check_grad, shape):
    x = _distinct(shape, 1)
    axes = tuple(range(1, len(shape) - 1))
    np.testing.assert_allclose(F.global_max_pool(minidl.Tensor(x)).data, x.max(axis=axes))
    np.testing.assert_allclose(F.global_avg_pool(minidl.Tensor(x)).data, x.mean(axis=axes))
    check_grad(F.global_max_pool, x)
    check_grad(F.global_avg_pool, x)


def test_dropout_is_inverted_reproducible_and_identity_at_inference(check_grad):
    x = np.ones((200, 50))
    minidl.random.seed(3)
    a = F.dropout(minidl.Tensor(x), 0.4).data
    minidl.random.seed(3)
    b = F.dropout(minidl.Tensor(x), 0.4).data
    assert np.array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1 / 0.6}
    assert abs((a == 0).mean() - 0.4) < 0.02
    assert F.dropout(minidl.Tensor(x), 0.4, training=False).data is x
    check_grad(lambda t: F.dropout(t, 0.5, key=(1, 2)), np.random.default_rng(0).random((4, 5)))


def test_embedding_gathers_and_scatter_adds(check_grad):
    W = np.random.default_rng(0).standard_normal((6, 3))
    ids = np.array([[1, 2, 1], [5, 0, 1]])
    np.testing.assert_allclose(F.embedding(ids, minidl.Tensor(W)).data, W[ids])
    check_grad(lambda W: F.embedding(ids, W), W)
    with pytest.raises(ValueError, match='id 6 at index 0 of the batch is out of range for 6 rows'):
        F.embedding(np.array([6]), minidl.Tensor(W))


def test_batch_norm_training_and_inference(check_grad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2)) * 2 + 1
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    mean, var = np.zeros(2), np.ones(2)
    y = F.batch_norm(minidl.Tensor(x), gamma, beta, mean, var, training=True, momentum=0.9).data
    mu, sigma2 = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(sigma2 + 1e-3) * gamma + beta)
    np.testing.assert_allclose(mean, 0.1 * mu)
    np.testing.assert_allclose(var, 0.9 + 0.1 * sigma2)
    check_grad(lambda x, g, b: F.batch_norm(x, g, b, np.zeros(2), np.ones(2), training=True),
               x, gamma, beta)
    check_grad(lambda x, g, b: F.batch_norm(x, g, b, mean, var), x, gamma, beta)
