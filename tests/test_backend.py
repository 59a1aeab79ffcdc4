"""minidl.backend (Keras's K): each function on values and on symbolic tensors, gradients
through K.function against finite differences, the lessons' filter ascent and Grad-CAM as
written, and the optimizer's rate as a variable."""
import numpy as np
import pytest

import minidl
from minidl import backend as K, layers, models, optimizers, random
from minidl.layers.base import SymbolicTensor

X = np.random.default_rng(0).uniform(0.5, 2.0, (2, 3, 4))
W = np.random.default_rng(1).standard_normal((4, 5))
W3 = np.random.default_rng(2).standard_normal((2, 4, 5))

CASES = {  # name: (K function of x, the same in NumPy)
    'mean': (lambda x: K.mean(x, axis=1), lambda a: a.mean(axis=1)),
    'sum': (lambda x: K.sum(x, axis=(1, 2), keepdims=True),
            lambda a: a.sum(axis=(1, 2), keepdims=True)),
    'max': (lambda x: K.max(x, axis=-1), lambda a: a.max(axis=-1)),
    'min': (K.min, np.min),
    'square': (K.square, np.square),
    'sqrt': (K.sqrt, np.sqrt),
    'abs': (lambda x: K.abs(x - 1), lambda a: np.abs(a - 1)),
    'exp': (K.exp, np.exp),
    'log': (K.log, np.log),
    'pow': (lambda x: K.pow(x, 3), lambda a: a ** 3),
    'maximum': (lambda x: K.maximum(x, 1.0), lambda a: np.maximum(a, 1.0)),
    'minimum': (lambda x: K.minimum(x, 1.0), lambda a: np.minimum(a, 1.0)),
    'clip': (lambda x: K.clip(x, 0.8, 1.5), lambda a: np.clip(a, 0.8, 1.5)),
    'clip_above_only': (lambda x: K.clip(x, None, 1.0), lambda a: np.minimum(a, 1.0)),
    'reshape': (lambda x: K.reshape(x, (-1, 6, 2)), lambda a: a.reshape(-1, 6, 2)),
    'flatten': (K.flatten, np.ravel),
    'batch_flatten': (K.batch_flatten, lambda a: a.reshape(len(a), -1)),
    'concatenate': (lambda x: K.concatenate([x, K.square(x)]),
                    lambda a: np.concatenate([a, a ** 2], axis=-1)),
    'stack': (lambda x: K.stack([x, x], axis=1), lambda a: np.stack([a, a], axis=1)),
    'expand_dims': (K.expand_dims, lambda a: a[..., None]),
    'squeeze': (lambda x: K.squeeze(x[:, :1], 1), lambda a: a[:, 0]),
    'transpose': (K.transpose, np.transpose),
    'dot': (lambda x: K.dot(x, W), lambda a: a @ W),
    'dot_3d': (lambda x: K.dot(x[:, 0], W3), lambda a: np.einsum('nk,jkl->njl', a[:, 0], W3)),
    'operators': (lambda x: (x[:, 1:] * 2 - 1) / x[:, :2] ** 2 + -x[:, 1:],
                  lambda a: (a[:, 1:] * 2 - 1) / a[:, :2] ** 2 - a[:, 1:]),
}


@pytest.mark.parametrize('name', CASES)
def test_functions_on_values_match_numpy(name):
    ours, numpy = CASES[name]
    np.testing.assert_allclose(K.eval(ours(minidl.Tensor(X))), numpy(X), rtol=1e-12)


@pytest.mark.parametrize('name', CASES)
def test_functions_on_symbolic_tensors_infer_the_shape_and_compute_through_k_function(name):
    ours, numpy = CASES[name]
    x = layers.Input(X.shape[1:], dtype='float64')
    y = ours(x)
    one, two = numpy(X[:1]).shape, numpy(X).shape
    assert isinstance(y, SymbolicTensor)
    assert y.shape == tuple(a if a == b else None for a, b in zip(one, two))
    np.testing.assert_allclose(K.function([x], [y])([X])[0], numpy(X), rtol=1e-12)


@pytest.mark.parametrize('name', CASES)
def test_functions_are_differentiable(check_grad, name):
    check_grad(CASES[name][0], X)


def test_functions_take_numpy_arrays_and_numbers():
    assert K.eval(K.mean(np.arange(6.0).reshape(2, 3), axis=0)).tolist() == [1.5, 2.5, 3.5]
    assert K.eval(K.maximum(np.array([-1.0, 2.0]), 0.0)).tolist() == [0.0, 2.0]
    assert K.int_shape(K.flatten(np.ones((2, 3)))) == (6,)
    assert K.eval(np.ones(2)).tolist() == [1, 1] and K.get_value(3) == 3


def test_variables_constants_and_values():
    v = K.variable([[1, 2], [3, 4]], name='v')
    assert v.dtype == np.float32 and v.requires_grad and v.name == 'v'
    assert K.get_value(v).tolist() == [[1, 2], [3, 4]]
    K.set_value(v, np.zeros((2, 2)))
    assert K.eval(v).tolist() == [[0, 0], [0, 0]] and v.dtype == np.float32
    c = K.constant(3, shape=(2, 3))
    assert K.get_value(c).tolist() == [[3] * 3] * 2 and not c.requires_grad
    assert K.get_value(K.variable(0.5)) == 0.5 and np.ndim(K.get_value(K.variable(0.5))) == 0
    assert K.int_shape(c) == (2, 3) and K.ndim(c) == 2
    assert K.eval(K.shape(c)).tolist() == [2, 3]
    x = layers.Input((None, 3))
    assert K.int_shape(x) == (None, None, 3) and K.ndim(x) == 3
    assert K.function([x], K.shape(x))([np.ones((4, 5, 3))]).tolist() == [4, 5, 3]


def test_settings_follow_keras():
    assert (K.epsilon(), K.floatx(), K.image_data_format()) == (1e-7, 'float32',
                                                                 'channels_last')


def test_clear_session_restarts_the_automatic_names():
    layers.Dense(1), layers.Dense(1)
    K.clear_session()
    assert [layers.Dense(1).name, layers.Dense(1).name] == ['dense', 'dense_1']


def test_k_is_reachable_as_keras_backend():
    import minidl as keras
    assert keras.backend is K


def convnet(activation='tanh', dtype='float32', classes=None):
    """Two small convolutions (the second named like VGG16's last), then optionally a
    softmax over ``classes``; seeded."""
    random.seed(0)
    x = inputs = layers.Input((8, 8, 2), dtype=dtype)
    x = layers.Conv2D(3, 3, activation=activation, name='block5_conv2', dtype=dtype)(x)
    x = layers.Conv2D(4, 2, activation=activation, name='block5_conv3', dtype=dtype)(x)
    if classes:
        x = layers.GlobalAveragePooling2D(dtype=dtype)(x)
        x = layers.Dense(classes, activation='softmax', dtype=dtype)(x)
    return models.Model(inputs, x)


def finite_difference_gradient(f, x, eps=1e-6):
    gradient = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        gradient[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return gradient


def test_k_gradients_equal_finite_differences_on_a_conv_model():
    model = convnet(dtype='float64')
    x = np.random.default_rng(3).standard_normal((1, 8, 8, 2))
    hidden = model.get_layer('block5_conv2').output
    loss = K.mean(K.square(model.output[..., 1])) + K.sum(hidden)
    iterate = K.function([model.input], K.gradients(loss, [model.input, hidden]))
    to_input, to_hidden = iterate([x])
    loss_of_input = K.function([model.input], loss)
    np.testing.assert_allclose(
        to_input, finite_difference_gradient(lambda v: loss_of_input([v]), x), atol=1e-8)
    maps = K.function([model.input], hidden)([x])
    loss_of_hidden = K.function([hidden], loss)
    np.testing.assert_allclose(
        to_hidden, finite_difference_gradient(lambda v: loss_of_hidden([v]), maps), atol=1e-8)
    assert all(w.grad is None and w.requires_grad for w in model.weights)


def test_k_gradients_on_tensors_are_computed_at_once():
    x = K.variable([1.0, 2.0, 3.0])
    (gradient,) = K.gradients(K.sum(K.square(x)), [x])
    assert gradient.numpy().tolist() == [2, 4, 6] and x.grad is None


def test_the_lessons_filter_visualisation_runs_as_written():
    model, layer_name, filter_index, step = convnet('relu'), 'block5_conv3', 1, 1.0
    layer_output = model.get_layer(layer_name).output
    loss = K.mean(layer_output[:, :, :, filter_index])
    grads = K.gradients(loss, model.input)[0]
    grads /= (K.sqrt(K.mean(K.square(grads))) + 1e-5)
    iterate = K.function([model.input], [loss, grads])
    input_img_data = np.random.default_rng(0).random((1, 8, 8, 2)) * 20 + 128.
    losses = []
    for _ in range(4):
        loss_value, grads_value = iterate([input_img_data])
        input_img_data += grads_value * step
        losses.append(float(loss_value))
    assert grads_value.shape == (1, 8, 8, 2) and np.sqrt(np.mean(grads_value ** 2)) == \
        pytest.approx(1, rel=1e-3)
    assert losses[0] > 0 and all(b > a for a, b in zip(losses, losses[1:]))


def test_the_lessons_grad_cam_runs_as_written():
    model = convnet('relu', classes=400)
    x = np.random.default_rng(4).random((1, 8, 8, 2)).astype(np.float32)
    class_output = model.output[:, 386]
    last_conv_layer = model.get_layer('block5_conv3')
    grads = K.gradients(class_output, last_conv_layer.output)[0]
    pooled_grads = K.mean(grads, axis=(0, 1, 2))
    iterate = K.function([model.input], [pooled_grads, last_conv_layer.output[0]])
    pooled_grads_value, conv_layer_output_value = iterate([x])
    heatmap = np.mean(conv_layer_output_value * pooled_grads_value, axis=-1)
    assert all(w.grad is None for w in model.weights)

    first, last, pool, dense = (model.get_layer(index=i) for i in range(1, 5))
    maps = last(first(x)).retain_grad()
    dense(pool(maps))[:, 386].sum().backward()
    direct = np.mean(maps.numpy()[0] * maps.grad[0].mean(axis=(0, 1)), axis=-1)
    assert np.abs(pooled_grads_value).max() > 0 and heatmap.shape == (5, 5)
    np.testing.assert_allclose(heatmap, direct, rtol=1e-5, atol=1e-12)


def test_learning_phase_chooses_inference_or_training():
    x = layers.Input((100,))
    model = models.Model(x, layers.Dropout(0.5)(x))
    f = K.function([model.input, K.learning_phase()], [model.output])
    ones = np.ones((1, 100))
    assert f([ones, 0])[0].tolist() == ones.tolist()
    assert set(f([ones, 1])[0].ravel().tolist()) == {0.0, 2.0}


def test_the_optimizers_rate_is_a_variable_k_reads_and_sets():
    model = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    model.compile(optimizer=optimizers.SGD(lr=0.1), loss='mse')
    assert K.get_value(model.optimizer.lr) == K.get_value(model.optimizer.learning_rate) == 0.1
    K.set_value(model.optimizer.lr, 0.0)
    before = model.get_weights()
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    K.set_value(model.optimizer.learning_rate, 1e-4)
    assert model.optimizer.get_config()['learning_rate'] == 1e-4
    model.optimizer.lr = 0.5
    assert float(model.optimizer.learning_rate) == 0.5


def test_k_function_outputs_must_descend_from_its_inputs():
    model = convnet()
    other = layers.Input((8, 8, 2), name='other_input')
    with pytest.raises(ValueError, match=r'output <SymbolicTensor shape=\(\), from mean.*'
                                         r'other_input'):
        K.function([model.input], [K.mean(other)])


def test_k_function_errors_name_what_was_wrong():
    model = convnet()
    with pytest.raises(TypeError, match='each input must be a symbolic tensor.*ndarray'):
        K.function([np.ones((1, 8, 8, 2))], [model.output])
    with pytest.raises(ValueError, match='takes 1 input.*got 2'):
        K.function([model.input], [model.output])([np.ones((1, 8, 8, 2))] * 2)
    with pytest.raises(TypeError, match='K.gradients takes a symbolic loss.*Tensor'):
        K.gradients(K.mean(model.output), model.weights)


def test_values_of_symbolic_tensors_and_misfits_are_clear_errors():
    with pytest.raises(TypeError, match='get_value: <SymbolicTensor.* is symbolic'):
        K.get_value(layers.Input((3,)))
    with pytest.raises(TypeError, match='set_value needs a Tensor.*got float'):
        K.set_value(0.1, 0.2)
    with pytest.raises(ValueError, match=r"'v' has shape \(2,\), the value has shape \(3,\)"):
        K.set_value(K.variable([1, 2], name='v'), [1, 2, 3])
