"""Reductions and shape operations: NumPy results and float64 gradients."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minidl
import minidl.functions as F

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3)


@st.composite
def shape_and_axis(draw):
    shape = draw(shapes)
    if not shape or draw(st.booleans()):
        return shape, None
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=2,
                         unique_by=lambda a: a % len(shape)))
    return shape, tuple(axes) if len(axes) > 1 else axes[0]


@pytest.mark.parametrize('name', ['sum', 'mean', 'max', 'min'])
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=st.integers(0, 2**16))
def test_reductions(check_grad, name, case, keepdims, seed):
    shape, axis = case
    x = np.random.default_rng(seed).permutation(np.arange(np.prod(shape, dtype=int)))
    x = x.reshape(shape).astype(np.float64) / 3
    ours = getattr(F, name)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(ours(minidl.Tensor(x), axis, keepdims).data, expected)
    check_grad(lambda t: ours(t, axis, keepdims), x)


@pytest.mark.parametrize('name, expected', [('max', [[0, 1, 0], [1, 0, 0]]),
                                             ('min', [[1, 0, 0], [0, 0, 1]])])
def test_ties_send_the_gradient_to_the_first_extreme(name, expected):
    x = minidl.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    getattr(F, name)(x, axis=1).sum().backward()
    assert x.grad.tolist() == expected


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3),
       seed=st.integers(0, 2**16))
def test_reshape_transpose_flatten(check_grad, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    perm = tuple(np.random.default_rng(seed).permutation(len(shape)))
    np.testing.assert_allclose(F.transpose(minidl.Tensor(x), perm).data, x.transpose(perm))
    check_grad(lambda t: F.transpose(t, perm), x)
    check_grad(lambda t: F.reshape(t, (-1,)), x)
    check_grad(F.flatten, x)
    assert F.flatten(minidl.Tensor(x)).shape == (shape[0], int(np.prod(shape[1:])))


@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
       axis=st.integers(-4, 3), seed=st.integers(0, 2**16))
def test_expand_dims_and_squeeze(check_grad, shape, axis, seed):
    axis = axis % (len(shape) + 1)
    x = np.random.default_rng(seed).standard_normal(shape)
    expanded = F.expand_dims(minidl.Tensor(x), axis)
    assert expanded.shape == np.expand_dims(x, axis).shape
    assert F.squeeze(expanded, axis).shape == x.shape
    check_grad(lambda t: F.squeeze(F.expand_dims(t, axis), axis - len(shape) - 1), x)


def test_squeeze_of_an_axis_longer_than_one_is_a_clear_error():
    with pytest.raises(ValueError, match=r'axis 1 of a tensor of shape \(2, 3\) is not of size 1'):
        F.squeeze(minidl.Tensor(np.ones((2, 3))), 1)


@pytest.mark.parametrize('index', [
    (slice(1, 3),), (Ellipsis, 0), (np.array([0, 0, 2]),), (slice(None), slice(None, None, -1)),
    (np.array([[True, False, True]] * 4),)], ids=['slice', 'ellipsis', 'repeat', 'reverse',
                                                  'mask'])
def test_getitem(check_grad, index):
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(minidl.Tensor(x)[index].data, x[index])
    check_grad(lambda t: t[index], x)


def test_getitem_repeated_indices_accumulate():
    x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    assert x.grad.tolist() == [2, 0, 1]


@given(n=st.integers(1, 3), axis=st.integers(-2, 1), seed=st.integers(0, 2**16))
def test_concatenate_and_stack(check_grad, n, axis, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((2, 3)) for _ in range(n)]
    np.testing.assert_allclose(F.concatenate([minidl.Tensor(x) for x in xs], axis).data,
                               np.concatenate(xs, axis))
    np.testing.assert_allclose(F.stack([minidl.Tensor(x) for x in xs], axis).data,
                               np.stack(xs, axis))
    check_grad(lambda *ts: F.concatenate(ts, axis), *xs)
    check_grad(lambda *ts: F.stack(ts, axis), *xs)


def test_concatenate_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r'concatenate: shapes \(2, 3\), \(2, 4\)'):
        F.concatenate([minidl.tensor(np.ones((2, 3))), minidl.tensor(np.ones((2, 4)))], 0)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       width=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_pad(check_grad, shape, width, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_allclose(F.pad(minidl.Tensor(x), width).data, np.pad(x, width))
    check_grad(lambda t: F.pad(t, ((width, 1),) * len(shape)), x)
