"""The standard battery for every layer (build, output shape, weights, float64 gradients,
config round trip), plus the shape errors that name the layer."""
import warnings

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
    (lambda: layers.Conv2D(4, 3, groups=2), (1, 5, 5, 4), 3 * 3 * 2 * 4 + 4),
    (lambda: layers.Conv2D(2, 2, data_format='channels_first', activation='tanh'),
     (2, 3, 4, 5), 2 * 2 * 3 * 2 + 2),
    (lambda: layers.Conv1D(2, 3, padding='causal', dilation_rate=2), (2, 6, 2), 3 * 2 * 2 + 2),
    (lambda: layers.Conv1D(2, 2, strides=2, data_format='channels_first'), (2, 3, 6),
     2 * 3 * 2 + 2),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding='same'),
     (1, 5, 5, 2), 3 * 3 * 2 * 2 + 4),
    (lambda: layers.SeparableConv2D(3, 2, depth_multiplier=2), (1, 4, 4, 2),
     2 * 2 * 2 * 2 + 4 * 3 + 3),
    (lambda: layers.SeparableConv1D(2, 3, padding='same', use_bias=False), (2, 5, 2),
     3 * 2 + 2 * 2),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, padding='same', output_padding=1),
     (1, 3, 3, 2), 3 * 3 * 2 * 2 + 2),
    (lambda: layers.Conv2DTranspose(2, 2, strides=3, data_format='channels_first'),
     (1, 2, 2, 3), 2 * 2 * 2 * 2 + 2),
    (lambda: layers.Conv1DTranspose(2, 3, strides=2), (2, 4, 3), 3 * 2 * 3 + 2),
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
    (lambda: layers.BatchNormalization(axis=1, momentum=0.5), (4, 3, 2), 4 * 3),
    (lambda: layers.BatchNormalization(axis=[1], scale=False), (3, 2, 4, 2), 3 * 2),
    (lambda: layers.BatchNormalization(center=False, scale=False), (4, 3), 2 * 3),
    (lambda: layers.LayerNormalization(), (2, 3, 4), 2 * 4),
    (lambda: layers.LayerNormalization(axis=[1, 2], center=False), (2, 3, 4), 12),
    (lambda: layers.LayerNormalization(axis=1, rms_scaling=True), (2, 3, 4), 3),
    (lambda: layers.Dropout(0.3, noise_shape=(None, 1), seed=3), (3, 4), 0),
    (lambda: layers.SpatialDropout1D(0.3), (2, 3, 4), 0),
    (lambda: layers.SpatialDropout2D(0.3, data_format='channels_first'), (2, 3, 2, 2), 0),
    (lambda: layers.GaussianNoise(0.1, seed=1), (3, 4), 0),
    (lambda: layers.GaussianDropout(0.2), (3, 4), 0),
    (lambda: layers.UpSampling1D(3), (2, 3, 2), 0),
    (lambda: layers.UpSampling2D((2, 3)), (1, 2, 3, 2), 0),
    (lambda: layers.UpSampling2D(interpolation='bilinear'), (1, 3, 2, 2), 0),
    (lambda: layers.UpSampling2D((3, 2), 'channels_first', 'bilinear'), (1, 2, 3, 2), 0),
    (lambda: layers.Cropping1D((1, 2)), (2, 5, 2), 0),
    (lambda: layers.Cropping2D(((1, 0), (0, 2))), (1, 4, 5, 2), 0),
    (lambda: layers.Cropping2D(1, data_format='channels_first'), (1, 2, 4, 3), 0),
    (lambda: layers.ZeroPadding1D((1, 2)), (2, 3, 2), 0),
    (lambda: layers.ZeroPadding2D(1, data_format='channels_first'), (1, 2, 2, 3), 0),
    (lambda: layers.Permute((2, 1)), (2, 3, 4), 0),
    (lambda: layers.Permute((3, 1, 2)), (2, 2, 3, 4), 0),
    (lambda: layers.RepeatVector(3), (2, 4), 0),
    (lambda: layers.MaxPooling2D(2, data_format='channels_first'), (1, 2, 4, 5), 0),
    (lambda: layers.AveragePooling1D(2, data_format='channels_first'), (2, 3, 4), 0),
    (lambda: layers.GlobalAveragePooling2D(keepdims=True), (2, 3, 3, 2), 0),
    (lambda: layers.GlobalMaxPooling1D('channels_first', keepdims=True), (2, 3, 5), 0),
    (lambda: layers.GlobalAveragePooling2D('channels_first'), (2, 3, 2, 2), 0),
    (lambda: layers.LeakyReLU(0.1), (3, 4), 0),
    (lambda: layers.LeakyReLU(alpha=0.2), (2, 3, 2), 0),
    (lambda: layers.ELU(0.5), (3, 4), 0),
    (lambda: layers.Softmax(), (2, 5), 0),
    (lambda: layers.Softmax(axis=[1, 2]), (2, 3, 2), 0),
    (lambda: layers.PReLU(alpha_initializer='ones'), (2, 3, 2), 3 * 2),
    (lambda: layers.PReLU(alpha_initializer='glorot_uniform', shared_axes=[1, 2],
                          alpha_regularizer='l2'), (2, 3, 3, 2), 2),
    (lambda: layers.Activation('gelu'), (2, 3), 0),
    (lambda: layers.Dense(3, activation='mish', kernel_regularizer='l1', bias_regularizer='l2',
                          activity_regularizer='l2'), (2, 4), 4 * 3 + 3),
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
    """Distinct values 0.1 apart, none at a kink of the piecewise layers (0, the ReLU
    cases' thresholds and caps)."""
    return np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) / 10 - 0.97


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
    (lambda: layers.Conv2D(2, 3, padding='causal'), r"Conv2D\): padding .*got 'causal'"),
    (lambda: layers.Conv2D(4, 3, groups=3), r'filters=4 cannot be split into groups=3'),
    (lambda: layers.Conv2D(4, 3, data_format='NCHW'), "data_format must be one of"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), 'depth_multiplier must be an'),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, output_padding=2),
     r'output_padding 2 must be smaller than the strides \[2, 2\]'),
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


def test_activation_layers_check_their_arguments():
    with pytest.raises(ValueError, match=r'leaky\w* \(LeakyReLU\): negative_slope must be >= 0'):
        layers.LeakyReLU(-0.1)
    with pytest.raises(ValueError, match=r'p\w* \(PReLU\): shared_axes \[3\] must be axes 1 '
                                         r'to 2 of inputs \(None, 3, 4\)'):
        layers.PReLU(shared_axes=3)(np.zeros((1, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r'\(PReLU\) needs every axis not in shared_axes '
                                         r'known, got inputs \(None, None, 4\)'):
        layers.PReLU(shared_axes=2)(layers.Input((None, 4)))


def test_softmax_layer_fuses_into_the_loss_along_the_last_axis_only():
    assert layers.Softmax().activation == 'softmax'
    assert layers.Softmax(axis=1).activation == 'linear'
    assert layers.LeakyReLU(0.25).get_config()['negative_slope'] == 0.25


def test_untiled_valid_windows_floor_like_keras_and_warn_once_with_the_formula():
    inputs = layers.Input(shape=(500, 1))
    conv = layers.Conv1D(32, 7, strides=2, name='imdb_conv')
    with pytest.warns(UserWarning) as caught:
        y = conv(inputs)
        conv(inputs)
        conv(np.zeros((1, 500, 1), np.float32))
    assert y.shape == (None, 247, 32) and len(caught) == 1
    assert str(caught[0].message) == (
        "imdb_conv (Conv1D): the windows do not tile the input; W' = (W - F + 2P)/S + 1 = "
        "(500 - 7 + 0)/2 + 1 = 247.5 is floored to 247: the last 1 of the 500 steps is never "
        "read. Change the input size, the stride or the filter size, or use padding='same'")
    with pytest.warns(UserWarning) as caught:
        y = layers.DepthwiseConv2D(3, strides=2, name='dw')(np.zeros((1, 8, 9, 1), np.float32))
    assert y.shape == (1, 3, 4, 1) and len(caught) == 1
    assert "dw (DepthwiseConv2D): the windows do not tile the input; W' = (W - F + 2P)/S + " \
        "1 = (8 - 3 + 0)/2 + 1 = 3.5 is floored to 3: the last 1 of the 8 rows is never " \
        "read. " in str(caught[0].message)


def test_tiling_windows_and_same_padding_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        layers.Conv2D(2, 3, strides=2)(np.zeros((1, 9, 9, 1), np.float32))
        layers.Conv1D(2, 7, strides=2, padding='same')(np.zeros((1, 500, 1), np.float32))
        layers.DepthwiseConv2D(3, strides=2)(np.zeros((1, 81, 81, 1), np.float32))
