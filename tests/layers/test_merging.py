"""Merge layers: values against NumPy, float64 gradients to every input over drawn shapes,
shapes on symbolic tensors (unknown sizes included), and errors that name every input shape."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minidl
from minidl import layers

ELEMENTWISE = [
    (layers.Add, lambda xs: sum(xs)),
    (layers.Multiply, lambda xs: np.prod(xs, axis=0)),
    (layers.Average, lambda xs: np.mean(xs, axis=0)),
    (layers.Maximum, lambda xs: np.max(xs, axis=0)),
    (layers.Minimum, lambda xs: np.min(xs, axis=0)),
]


def _inputs(shape, count, seed):
    """Distinct values (no ties, so maximum and minimum have one gradient)."""
    values = np.random.default_rng(seed).permutation(count * int(np.prod(shape)))
    return [part.reshape(shape) / 7.0 - 1.0 for part in np.split(values, count)]


shapes = st.lists(st.integers(1, 3), min_size=2, max_size=4).map(tuple)


@pytest.mark.parametrize('cls, expected', ELEMENTWISE, ids=[c.__name__ for c, _ in ELEMENTWISE])
@given(shape=shapes, count=st.integers(2, 3), seed=st.integers(0, 9))
def test_elementwise_merges_compute_and_differentiate(check_grad, cls, expected, shape, count,
                                                      seed):
    xs = _inputs(shape, count, seed)
    layer = cls()
    np.testing.assert_allclose(layer(xs).numpy(), expected(xs), rtol=1e-12)
    check_grad(lambda *ts: layer(list(ts)), *xs)


@given(shape=shapes, seed=st.integers(0, 9))
def test_subtract_takes_the_second_from_the_first(check_grad, shape, seed):
    a, b = _inputs(shape, 2, seed)
    out = layers.subtract([minidl.Tensor(a), minidl.Tensor(b)])
    np.testing.assert_array_equal(out.numpy(), a - b)
    check_grad(lambda ta, tb: layers.Subtract()([ta, tb]), a, b)


@given(shape=shapes, sizes=st.lists(st.integers(1, 3), min_size=2, max_size=3),
       data=st.data())
def test_concatenate_joins_along_its_axis(check_grad, shape, sizes, data):
    axis = data.draw(st.sampled_from([a for a in range(1, len(shape))] +
                                     [a - len(shape) for a in range(1, len(shape))]))
    xs = []
    for i, size in enumerate(sizes):
        part = list(shape)
        part[axis] = size
        xs.append(_inputs(tuple(part), 1, i)[0])
    layer = layers.Concatenate(axis=axis)
    np.testing.assert_array_equal(layer(xs).numpy(), np.concatenate(xs, axis))
    check_grad(lambda *ts: layer(list(ts)), *xs)


@given(batch=st.integers(1, 3), rows=st.integers(1, 3), inner=st.integers(1, 4),
       cols=st.integers(1, 3), normalize=st.booleans())
def test_dot_contracts_the_chosen_axes_per_example(check_grad, batch, rows, inner, cols,
                                                   normalize):
    a, b = _inputs((batch, rows, inner), 1, 0)[0], _inputs((batch, cols, inner), 1, 1)[0]
    layer = layers.Dot(axes=(2, 2), normalize=normalize)
    if normalize:
        na = a / np.linalg.norm(a, axis=2, keepdims=True)
        nb = b / np.linalg.norm(b, axis=2, keepdims=True)
        expected = np.einsum('bik,bjk->bij', na, nb)
    else:
        expected = np.einsum('bik,bjk->bij', a, b)
    np.testing.assert_allclose(layer([a, b]).numpy(), expected, rtol=1e-10)
    check_grad(lambda ta, tb: layer([ta, tb]), a, b)


def test_dot_of_two_vectors_per_example_has_one_column():
    a, b = np.ones((4, 3)), np.arange(12.0).reshape(4, 3)
    out = layers.dot([a, b], axes=1)
    np.testing.assert_array_equal(out.numpy(), b.sum(axis=1, keepdims=True))
    x, y = layers.Input((3,)), layers.Input((3,))
    assert layers.dot([x, y], axes=-1).shape == (None, 1)


def test_functional_forms_build_the_layer_of_their_name():
    a, b = layers.Input((2, 3)), layers.Input((2, 3))
    for function, cls in [(layers.add, layers.Add), (layers.subtract, layers.Subtract),
                          (layers.multiply, layers.Multiply), (layers.average, layers.Average),
                          (layers.maximum, layers.Maximum), (layers.minimum, layers.Minimum),
                          (layers.concatenate, layers.Concatenate)]:
        out = function([a, b], name=f'{function.__name__}_merge')
        assert type(out.layer) is cls and out.layer.name == f'{function.__name__}_merge'
    assert layers.concatenate([a, b]).shape == (None, 2, 6)
    assert layers.concatenate([a, b], axis=1).shape == (None, 4, 3)


def test_unknown_sizes_merge_with_known_ones():
    a, b = layers.Input((None, 4)), layers.Input((5, 4))
    assert layers.add([a, b]).shape == (None, 5, 4)
    assert layers.concatenate([a, b], axis=1).shape == (None, None, 4)
    assert layers.add([layers.Input((1, 4)), b]).shape == (None, 5, 4)


@pytest.mark.parametrize('merge, inputs, message', [
    (layers.Add(name='plus'), [(4,), (5,)],
     r'plus \(Add\) needs shapes that broadcast together; got inputs of shapes \(None, 4\), '
     r'\(None, 5\)'),
    (layers.Subtract(name='minus'), [(4,), (4,), (4,)],
     r'minus \(Subtract\) merges exactly 2 inputs; got inputs of shapes \(None, 4\), '
     r'\(None, 4\), \(None, 4\)'),
    (layers.Concatenate(name='cat'), [(2, 3), (3, 3)],
     r'cat \(Concatenate\) needs every size but axis -1 to agree; got inputs of shapes '
     r'\(None, 2, 3\), \(None, 3, 3\)'),
    (layers.Concatenate(axis=0, name='cat0'), [(3,), (3,)], r'cat0 \(Concatenate\) cannot '
     r'join along axis 0'),
    (layers.Concatenate(name='rank'), [(3,), (3, 1)], r'rank \(Concatenate\) needs inputs of '
     r'one rank'),
    (layers.Dot(axes=1, name='inner'), [(3,), (4,)], r'inner \(Dot\) needs axis 1 of the first '
     r'input and axis 1 of the second to agree'),
    (layers.Maximum(name='one'), [(3,)], r'one \(Maximum\) merges at least 2 inputs'),
])
def test_shapes_that_cannot_merge_name_the_layer_and_every_input(merge, inputs, message):
    with pytest.raises(ValueError, match=message):
        merge([layers.Input(shape) for shape in inputs])


def test_a_merge_layer_needs_a_list_and_other_layers_refuse_one():
    x = layers.Input((3,))
    with pytest.raises(ValueError, match=r'add_\w* \(Add\) merges a list of tensors, got one '
                                         r'tensor of shape \(None, 3\)'):
        layers.Add()(x)
    with pytest.raises(ValueError, match=r'dense\w* \(Dense\) takes one input, got a list of 2: '
                                         r'\(None, 3\), \(None, 3\)'):
        layers.Dense(2)([x, x])


def test_merge_configs_round_trip():
    for layer in [layers.Concatenate(axis=1), layers.Dot(axes=(1, 2), normalize=True),
                  layers.Add()]:
        config = layer.get_config()
        clone = type(layer).from_config({**config, 'name': config['name'] + '_clone'})
        assert {k: v for k, v in clone.get_config().items() if k != 'name'} == \
            {k: v for k, v in config.items() if k != 'name'}
