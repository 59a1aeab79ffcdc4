"""The standard battery for every layer (build, output shape, weights, float64 gradients,
config round trip), plus the shape errors that name the layer."""
import numpy as np
import pytest

import minidl
from minidl import layers, optimizers
from minidl.layers.base import Layer

CASES = [
    (lambda: layers.Dense(3, activation='tanh'), (2, 4), 4 * 3 + 3),
    (lambda: layers.Dense(2), (2, 3, 4), 4 * 2 + 2),
    (lambda: layers.Conv2D(2, (2, 3), activation='relu'), (2, 4, 5, 3), 2 * 3 * 3 * 2 + 2),
    (lambda: layers.Conv2D(2, 3, strides=2, padding='same', activation='sigmoid'),
     (1, 5, 5, 2), 3 * 3 * 2 * 2 + 2),
    (lambda: layers.Conv1D(2, 3, activation='relu', use_bias=False), (2, 7, 3), 3 * 3 * 2),
    (lambda: layers.MaxPooling2D(2), (2, 5, 4, 2), 0),
    (lambda: layers.AveragePooling2D((2, 2), strides=1, padding='same'), (1, 3, 4, 2), 0),
    (lambda: layers.MaxPooling1D(3), (2, 7, 2), 0),
    (lambda: layers.AveragePooling1D(2), (2, 6, 2), 0),
    (lambda: layers.GlobalMaxPooling2D(), (2, 3, 3, 2), 0),
    (lambda: layers.GlobalAveragePooling2D(), (2, 3, 3, 2), 0),
    (lambda: layers.GlobalMaxPooling1D(), (2, 5, 3), 0),
    (lambda: layers.GlobalAveragePooling1D(), (2, 5, 3), 0),
    (lambda: layers.Flatten(), (2, 3, 2, 2), 0),
    (lambda: layers.Reshape((3, -1)), (2, 6), 0),
    (lambda: layers.Activation('softmax'), (2, 5), 0),
    (lambda: layers.ZeroPadding2D(((1, 0), (2, 1))), (1, 3, 3, 2), 0),
    (lambda: layers.BatchNormalization(), (4, 3, 2), 4 * 2),
    (lambda: layers.Dropout(0.3), (3, 4), 0),
    (lambda: layers.ReLU(max_value=0.45, threshold=0.05), (3, 5), 0),
    (lambda: layers.ReLU(max_value=0.35, negative_slope=0.2, threshold=-0.25), (2, 3, 3), 0),
    (lambda: layers.Rescaling(0.5, offset=-1.0), (2, 3, 4), 0),
    (lambda: layers.Resizing(5, 3), (2, 3, 4, 2), 0),
    (lambda: layers.Resizing(2, 5, interpolation='nearest', crop_to_aspect_ratio=True),
     (1, 4, 5, 2), 0),
    (lambda: layers.Resizing(4, 4, pad_to_aspect_ratio=True, fill_value=0.5), (1, 2, 4, 1), 0),
    (lambda: layers.CenterCrop(2, 3), (2, 5, 4, 2), 0),
    (lambda: layers.CenterCrop(4, 2), (1, 3, 3, 1), 0),
    (lambda: layers.RandomFlip('horizontal', seed=3), (2, 3, 4, 1), 0),
    (lambda: layers.RandomRotation((-0.2, 0.1), fill_mode='constant'), (1, 4, 4, 2), 0),
    (lambda: layers.RandomZoom(0.2, (-0.1, 0.3), interpolation='nearest'), (1, 4, 4, 1), 0),
    (lambda: layers.RandomTranslation(0.2, 0.1, fill_mode='wrap'), (1, 3, 5, 1), 0),
    (lambda: layers.RandomContrast((0.1, 0.3), value_range=(-1, 1)), (2, 3, 3, 1), 0),
]


def _distinct(shape, seed=0):
    return np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) / 10 - 1.0


@pytest.mark.parametrize('make, shape, params', CASES,
                         ids=[f'{i}-{c[0]().__class__.__name__}' for i, c in enumerate(CASES)])
def test_layer_battery(check_grad, xp, make, shape, params):
    """Build, output shape, weight count, config round trip, float64 gradients, one step.
    Seeded: about one initialisation in a hundred leaves a ReLU layer dead on this input, and
    the weights must not depend on what the tests before drew."""
    minidl.random.seed(0)
    layer = make()
    layer.dtype = np.dtype('float64')
    x = xp.asarray(_distinct(shape))
    training = isinstance(layer, layers.BatchNormalization)
    y = layer(minidl.Tensor(x), training=training)
    assert layer.built and layer.count_params() == params
    assert y.shape[1:] == layer.compute_output_shape((None,) + shape[1:])[1:]
    assert y.dtype == np.float64 and y.device == minidl.Tensor(x).device
    config = layer.get_config()
    clone = type(layer).from_config({**config, 'name': config['name'] + '_clone'})
    clone.dtype = np.dtype('float64')
    clone(minidl.Tensor(x), training=training)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(minidl.Tensor(x), training=training).numpy(), y.numpy())
    check_grad(lambda t, *weights: layer(t, training=training), x, *layer.trainable_weights)
    _one_training_step_changes_every_weight(layer, x, training)


def _one_training_step_changes_every_weight(layer, x, training):
    if not layer.trainable_weights:
        return
    for w in layer.trainable_weights:
        w.grad = None
    y = layer(minidl.Tensor(x), training=training)
    (y * y).sum().backward()
    before = [w.numpy().copy() for w in layer.trainable_weights]
    optimizers.SGD(learning_rate=0.1).step(layer.trainable_weights)
    for w, old in zip(layer.trainable_weights, before):
        assert not np.array_equal(w.numpy(), old), w.name


def test_embedding_layer(check_grad):
    layer = layers.Embedding(7, 3, input_length=4)
    ids = np.array([[0, 6, 6, 2], [1, 1, 3, 5]])
    y = layer(ids)
    assert y.shape == (2, 4, 3) and layer.count_params() == 21
    assert np.abs(layer.get_weights()[0]).max() <= 0.05
    y.sum().backward()
    assert layer.embeddings.grad[6].tolist() == [2.0, 2.0, 2.0]


def test_keras_auto_names():
    a, b = layers.Conv2D(1, 1), layers.Conv2D(1, 1)
    base, suffix = b.name.rsplit('_', 1)
    assert base == 'conv2d' and a.name in ('conv2d', f'conv2d_{int(suffix) - 1}')
    assert layers.MaxPooling2D().name.startswith('max_pooling2d')
    assert layers.GlobalMaxPooling1D().name.startswith('global_max_pooling1d')


def test_wrong_rank_names_the_layer_and_both_shapes():
    conv = layers.Conv2D(4, 3, name='my_conv')
    with pytest.raises(ValueError, match=r'my_conv \(Conv2D\) expects inputs with 4 dimensions'
                                         r'.*got shape \(None, 28, 28\)'):
        conv(np.zeros((2, 28, 28), np.float32))


def test_wrong_channels_after_build_names_the_layer():
    conv = layers.Conv2D(4, 3, name='conv_a')
    conv(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r'conv_a .*\(None, 8, 8, 3\).*\(None, 8, 8, 1\)'):
        conv(np.zeros((1, 8, 8, 1), np.float32))


def test_pool_that_does_not_fit_shows_the_formula():
    with pytest.raises(ValueError, match=r'pool_a \(MaxPooling2D\).*\(1 - 2 \+ 0\)/2 \+ 1 = 0\.5'):
        layers.MaxPooling2D(2, name='pool_a')(np.zeros((1, 1, 5, 1), np.float32))


def test_set_weights_checks_shapes():
    dense = layers.Dense(2, name='d')
    dense(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r'd/kernel has shape \(3, 2\), got an array of shape '
                                         r'\(2, 3\)'):
        dense.set_weights([np.zeros((2, 3)), np.zeros(2)])


def test_trainable_flag_moves_weights_between_lists():
    dense = layers.Dense(2)
    dense(np.zeros((1, 3), np.float32))
    assert len(dense.trainable_weights) == 2
    dense.trainable = False
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
    assert not dense.kernel.requires_grad


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        layers.Dense(3, activation='relux')


def test_every_public_layer_is_a_layer():
    for name in dir(layers):
        obj = getattr(layers, name)
        if isinstance(obj, type) and name[0].isupper() and name != 'SymbolicTensor':
            assert issubclass(obj, Layer), name


def test_pooling_layers_import_from_convolutional_as_in_keras_2():
    from minidl.layers.convolutional import Conv2D, MaxPooling2D
    assert MaxPooling2D is layers.MaxPooling2D and Conv2D is layers.Conv2D


@pytest.mark.parametrize('make, message', [
    (lambda: layers.Conv2D(0, 3), r'Conv2D\): filters must be an integer >= 1, got 0'),
    (lambda: layers.Conv2D(-2, 3), 'filters must be an integer >= 1, got -2'),
    (lambda: layers.Conv2D(2.5, 3), 'filters must be an integer >= 1, got 2.5'),
    (lambda: layers.Conv2D(2, 0), 'kernel_size must be an integer or a tuple of 2 integers, '
                                  'each >= 1, got 0'),
    (lambda: layers.Conv2D(2, (3, 3, 3)), r'kernel_size .* got \(3, 3, 3\)'),
    (lambda: layers.Conv2D(2, 3, strides=(1, 0)), r'strides .* got \(1, 0\)'),
    (lambda: layers.Conv2D(2, 3, dilation_rate=0), 'dilation_rate .* got 0'),
    (lambda: layers.Conv2D(2, 3, padding='full'), "padding must be one of .*got 'full'"),
    (lambda: layers.Conv1D(2, 3, padding='causal'), r"Conv1D\): padding .*got 'causal'"),
    (lambda: layers.Conv1D(2, 3.0), r'Conv1D\): kernel_size must be an integer, each >= 1'),
    (lambda: layers.MaxPooling2D(0), r'MaxPooling2D\): pool_size .* got 0'),
    (lambda: layers.AveragePooling2D(2, strides=-1), 'strides .* got -1'),
    (lambda: layers.MaxPooling1D(2, padding=1), "padding must be one of .* got 1"),
    (lambda: layers.Dense(0), r'Dense\): units must be an integer >= 1, got 0'),
    (lambda: layers.Dense(1.5), 'units must be an integer >= 1, got 1.5'),
    (lambda: layers.Embedding(0, 4), r'Embedding\): input_dim must be an integer >= 1, got 0'),
    (lambda: layers.Embedding(10, -1), 'output_dim must be an integer >= 1, got -1'),
    (lambda: layers.ZeroPadding2D(-1), 'padding must be .* each >= 0, got -1'),
    (lambda: layers.ZeroPadding2D(((1, 1), (0, -2))), r'padding .* got \(0, -2\)'),
    (lambda: layers.Dropout(1.0), r'Dropout\): rate must be a number in \[0, 1\), got 1.0'),
    (lambda: layers.Reshape((0, 4)), r'Reshape\): target_shape must be .*got \(0, 4\)'),
    (lambda: layers.Reshape((-1, -1)), r'target_shape .*got \(-1, -1\)')])
def test_hyper_parameters_are_checked_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_padding_names_in_any_case_and_arguments_as_tuples_or_lists():
    conv = layers.Conv2D(2, [3, 1], strides=(2, 1), padding='SAME', dilation_rate=np.int64(1))
    assert (conv.kernel_size, conv.strides, conv.padding) == ((3, 1), (2, 1), 'same')
    assert layers.MaxPooling1D(2, padding='Valid').padding == 'valid'
    assert layers.Conv1D(2, (3,), dilation_rate=[2]).dilation_rate == (1, 2)
    assert layers.ZeroPadding2D((1, 2)).padding == ((1, 1), (2, 2))
    assert layers.Conv2D(2, np.int32(3)).kernel_size == (3, 3)


def test_relu_follows_keras_piecewise_rule():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0, 8.0])
    np.testing.assert_allclose(layers.ReLU(6.0)(x).numpy(), [0, 0, 0, 0.5, 3, 6])
    np.testing.assert_allclose(
        layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5)(x).numpy(),
        [-0.25, -0.1, -0.05, 0.5, 2, 2])
    with pytest.raises(ValueError, match=r're_lu\w* \(ReLU\): max_value must be >= 0'):
        layers.ReLU(-1.0)
