"""Functional graphs: several inputs and outputs, shared layers, Lambda, operators on symbolic
tensors, nested models, inputs of unknown size, and the seed 003 architectures as written."""
import numpy as np
import pytest

import minidl
import minidl as keras
from minidl import layers
from minidl.models import Model


def _seeded(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_a_graph_with_two_inputs_and_two_outputs_computes_each_branch():
    a, b = layers.Input((4,), name='left'), layers.Input((4,), name='right')
    joined = layers.concatenate([layers.Dense(3, name='da')(a), layers.Dense(2, name='db')(b)])
    total = layers.Dense(1, name='total')(joined)
    model = Model([a, b], [total, joined])
    xa, xb = _seeded((5, 4), 1).astype(np.float32), _seeded((5, 4), 2).astype(np.float32)
    out_total, out_joined = model([xa, xb])
    da, db, head = (model.get_layer(n) for n in ('da', 'db', 'total'))
    expected = np.concatenate([da(xa).numpy(), db(xb).numpy()], axis=1)
    np.testing.assert_allclose(out_joined.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(out_total.numpy(), head(expected).numpy(), rtol=1e-6)
    assert model.input_shape == [(None, 4), (None, 4)]
    assert model.output_shape == [(None, 1), (None, 5)]
    with pytest.raises(ValueError, match=r'model\w* takes 2 input\(s\) \(left, right\) of shape '
                                         r'\[\(None, 4\), \(None, 4\)\], got \[\(None, 4\)\]'):
        model([xa])


def test_gradients_reach_every_input_of_a_merged_graph(check_grad):
    minidl.random.seed(0)
    a, b = layers.Input((3,)), layers.Input((3,))
    branch = layers.Dense(2, activation='tanh')
    out = layers.Dense(1)(layers.multiply([branch(a), layers.Dense(2)(b)]))
    model = Model([a, b], out)
    for layer in model.layers:
        for w in layer.weights:
            w.data = w.data.astype(np.float64)
    check_grad(lambda ta, tb: model([ta, tb]), _seeded((4, 3), 3), _seeded((4, 3), 4))
    check_grad(lambda kernel: model([_seeded((4, 3), 3), _seeded((4, 3), 4)]), branch.kernel)


def test_a_layer_used_twice_shares_its_weights_and_gets_gradient_from_both(check_grad):
    minidl.random.seed(1)
    a, b = layers.Input((3,)), layers.Input((3,))
    shared = layers.Dense(2, name='shared')
    model = Model([a, b], layers.subtract([shared(a), shared(b)]))
    assert model.layers.count(shared) == 1 and len(model.weights) == 2
    shared.kernel.data = shared.kernel.data.astype(np.float64)
    shared.bias.data = shared.bias.data.astype(np.float64)
    xa, xb = _seeded((2, 3), 5), _seeded((2, 3), 6)
    model([xa, xb]).sum().backward()
    # d/dW sum(xa W - xb W) = (xa - xb)^T 1: both calls contribute, with opposite signs
    np.testing.assert_allclose(shared.kernel.grad, (xa - xb).sum(0)[:, None].repeat(2, 1))
    check_grad(lambda kernel, bias: model([xa, xb]), shared.kernel, shared.bias)


def test_lambda_layers_infer_or_take_their_output_shape(check_grad):
    x = layers.Input((None, 4))
    doubled = layers.Lambda(lambda t: t * 2.0)(x)
    pooled = layers.Lambda(lambda t: t.max(axis=1), name='pool')(x)
    given = layers.Lambda(lambda t: t[:, :2], output_shape=(2, 4))(x)
    computed = layers.Lambda(lambda t: t.sum(axis=-1), output_shape=lambda s: s[:-1])(x)
    scaled = layers.Lambda(lambda t, factor: t * factor, arguments={'factor': 3.0})(x)
    assert doubled.shape == (None, None, 4) and pooled.shape == (None, 4)
    assert given.shape == (None, 2, 4) and computed.shape == (None, None)
    model = Model(x, [doubled, pooled, scaled])
    data = _seeded((2, 5, 4))
    outs = model(data)
    np.testing.assert_allclose(outs[1].numpy(), data.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(outs[2].numpy(), data * 3, rtol=1e-6)
    check_grad(lambda t: layers.Lambda(lambda v: (v * v).sum(axis=1))(t), data)
    with pytest.raises(ValueError, match=r'pool \(Lambda\) cannot be written to a config'):
        model.get_layer('pool').get_config()


def test_a_lambda_that_cannot_run_on_its_input_says_so():
    with pytest.raises(ValueError, match=r'wrong \(Lambda\): cannot compute its output shape '
                                         r'on inputs of shape \(None, 3\)'):
        layers.Lambda(lambda t: t.reshape(7, 5), name='wrong')(layers.Input((3,)))


def test_operators_and_indexing_on_symbolic_tensors_record_nodes():
    x = layers.Input((4,))
    y = (x * 2 + 1)[:, 1:3]
    z = 1.0 / (1.0 + (-y)) ** 2 - x[:, :2] @ np.eye(2, dtype=np.float32)
    assert y.shape == (None, 2) and z.shape == (None, 2)
    data = _seeded((3, 4)).astype(np.float32)
    expected_y = (data * 2 + 1)[:, 1:3]
    model = Model(x, [y, z])
    out_y, out_z = model(data)
    np.testing.assert_allclose(out_y.numpy(), expected_y, rtol=1e-6)
    np.testing.assert_allclose(out_z.numpy(), 1 / (1 - expected_y) ** 2 - data[:, :2],
                               rtol=1e-5)


def test_an_output_that_does_not_descend_from_the_inputs_is_refused():
    a, b = layers.Input((2,)), layers.Input((2,))
    with pytest.raises(ValueError, match='does not descend from the inputs given'):
        Model(a, layers.Dense(1)(b))


def test_a_model_with_several_inputs_and_outputs_nests_as_one_layer():
    a, b = layers.Input((3,)), layers.Input((3,))
    inner = Model([a, b], [layers.add([a, b]), layers.subtract([a, b])], name='inner')
    p, q = layers.Input((3,)), layers.Input((3,))
    plus, minus = inner([p, q])
    outer = Model([p, q], layers.multiply([plus, minus]))
    xp, xq = _seeded((2, 3), 7), _seeded((2, 3), 8)
    np.testing.assert_allclose(outer([xp, xq]).numpy(), xp ** 2 - xq ** 2, rtol=1e-5)
    assert outer.layers[-2] is inner


def test_inputs_of_unknown_size_flow_through_convolutions_and_pooling():
    x = layers.Input(shape=(None, None, 3))
    y = layers.Conv2D(4, 3, activation='relu')(x)
    y = layers.MaxPooling2D(2)(y)
    z = layers.GlobalMaxPooling2D()(layers.Conv2D(5, 3, padding='same', strides=2)(y))
    model = Model(x, z)
    assert y.shape == (None, None, None, 4) and z.shape == (None, 5)
    for size in (9, 16):
        assert model(np.ones((2, size, size + 3, 3), np.float32)).shape == (2, 5)
    lines = []
    model.summary(print_fn=lines.append)
    assert any('(None, None, None, 4)' in line and '?' in line for line in lines)
    assert 'Multiplications per example: ?' in lines


def test_vgg16_without_top_takes_any_image_size():
    base = keras.applications.VGG16(include_top=False)
    assert base.input_shape == (None, None, None, 3)
    assert base.get_layer('block1_conv1').output_shape == (None, None, None, 64)
    assert base.compute_output_shape((None, 150, 150, 3)) is not None
    assert base.predict(np.zeros((1, 32, 40, 3), np.float32)).shape == (1, 1, 1, 512)


def test_keras_names_reach_through_the_top_level_module():
    assert keras.layers.Convolution2D is keras.layers.Conv2D
    assert keras.layers.Convolution1D is keras.layers.Conv1D
    assert keras.layers.MaxPool2D is keras.layers.MaxPooling2D
    assert keras.layers.AvgPool1D is keras.layers.AveragePooling1D
    assert keras.layers.GlobalMaxPool2D is keras.layers.GlobalMaxPooling2D
    assert keras.layers.GlobalAvgPool1D is keras.layers.GlobalAveragePooling1D
    assert keras.Model is keras.models.Model and keras.Input is keras.layers.Input
    for name in ('callbacks', 'optimizers', 'utils', 'applications', 'preprocessing',
                 'datasets', 'losses', 'metrics', 'initializers', 'Sequential'):
        assert hasattr(keras, name), name
    assert callable(keras.preprocessing.image.ImageDataGenerator)
    assert callable(keras.utils.to_categorical)


def _inception_block(d1, d2):
    """Seed 003's Inception module, as the slide writes it."""
    from minidl.layers import Input, Conv2D, MaxPooling2D, concatenate
    x_input = Input(shape=(d1, d2, 64*4))
    tower1 = Conv2D(64, (1,1), padding='same', activation='relu')(x_input)
    tower2 = Conv2D(64, (1,1), padding='same', activation='relu')(x_input)
    tower2 = Conv2D(64, (3,3), padding='same', activation='relu')(tower2)
    tower3 = Conv2D(64, (1,1), padding='same', activation='relu')(x_input)
    tower3 = Conv2D(64, (5,5), padding='same', activation='relu')(tower3)
    tower4 = MaxPooling2D((3,3), strides=(1,1), padding='same')(x_input)
    tower4 = Conv2D(64, (1,1), padding='same', activation='relu')(tower4)
    x_output = concatenate([tower1, tower2, tower3, tower4], axis = 3)
    return x_input, x_output


def test_seed_003_inception_module_keeps_the_input_shape():
    x_input, x_output = _inception_block(6, 7)
    assert x_output.shape == (None, 6, 7, 256)
    model = Model(x_input, x_output)
    out = model.predict(np.random.default_rng(0).random((2, 6, 7, 256)), verbose=0)
    assert out.shape == (2, 6, 7, 256) and (out >= 0).all()
    assert model.count_params() == 4 * (256 * 64 + 64) + 64 * 64 * 9 + 64 + 64 * 64 * 25 + 64


def test_seed_003_alexnet_has_the_slides_parameter_counts():
    from minidl.layers import (Input, Conv2D, Convolution2D, MaxPooling2D, BatchNormalization,
                               ZeroPadding2D, Flatten, Dense, Dropout)
    N_CATEGORY, DROPOUT = 100, 0.5
    model_input = Input(shape = (227, 227, 3))
    z = Conv2D(filters = 96, kernel_size = (11,11), strides = (4,4), activation = "relu")(model_input)
    z = MaxPooling2D(pool_size = (3,3), strides=(2,2))(z)
    z = BatchNormalization()(z)
    z = ZeroPadding2D(padding = (2,2))(z)
    z = Convolution2D(filters = 256, kernel_size = (5,5), strides = (1,1), activation = "relu")(z)
    z = MaxPooling2D(pool_size = (3,3), strides=(2,2))(z)
    z = BatchNormalization()(z)
    z = ZeroPadding2D(padding = (1,1))(z)
    z = Convolution2D(filters = 384, kernel_size = (3,3), strides = (1,1), activation = "relu")(z)
    z = ZeroPadding2D(padding = (1,1))(z)
    z = Convolution2D(filters = 384, kernel_size = (3,3), strides = (1,1), activation = "relu")(z)
    z = ZeroPadding2D(padding = (1,1))(z)
    z = Convolution2D(filters = 256, kernel_size = (3,3), strides = (1,1), activation = "relu")(z)
    z = MaxPooling2D(pool_size = (3,3), strides=(2,2))(z)
    z = Flatten()(z)
    z = Dense(4096, activation="relu")(z)
    z = Dropout(DROPOUT)(z)
    z = Dense(4096, activation="relu")(z)
    z = Dropout(DROPOUT)(z)
    final_dim = 1 if N_CATEGORY == 2 else N_CATEGORY
    final_act = "sigmoid" if N_CATEGORY == 2 else "softmax"
    model_output = Dense(final_dim, activation=final_act)(z)
    model = Model(model_input, model_output)
    lines = []
    model.summary(print_fn=lines.append)
    assert 'Total params: 58,692,452' in lines
    assert 'Trainable params: 58,691,748' in lines and 'Non-trainable params: 704' in lines
    assert [layer.output_shape for layer in model.layers[1:8]] == [
        (None, 55, 55, 96), (None, 27, 27, 96), (None, 27, 27, 96), (None, 31, 31, 96),
        (None, 27, 27, 256), (None, 13, 13, 256), (None, 13, 13, 256)]
