"""Regularizers: Keras's names, defaults and configs, penalties in ``model.losses`` and in the
training loss, and their translation to and from Keras configs. (Their values against Keras:
tests/test_keras_numbers.py, ``reg/`` and ``train/``.)"""
import warnings

import numpy as np
import pytest

import minidl
from minidl import layers, models, regularizers
from minidl.io.keras_config import KERAS2, KERAS3, file_config, from_config, serialize

W = np.array([[1.0, -2.0], [0.5, 0.0]])


@pytest.mark.parametrize('make, penalty, config', [
    (regularizers.L1, 0.01 * 3.5, {'l1': 0.01}),
    (regularizers.L2, 0.01 * 5.25, {'l2': 0.01}),
    (regularizers.L1L2, 0.0, {'l1': 0.0, 'l2': 0.0}),
    (regularizers.l1_l2, 0.01 * 3.5 + 0.01 * 5.25, {'l1': 0.01, 'l2': 0.01}),  # tf-keras's
    (lambda: regularizers.get('l1_l2'), 0.01 * 3.5 + 0.01 * 5.25, {'l1': 0.01, 'l2': 0.01}),
    (lambda: regularizers.get({'class_name': 'L1L2', 'config': {'l2': 0.1}}), 0.525,
     {'l1': 0.0, 'l2': 0.1})])
def test_keras_defaults_penalties_and_configs(make, penalty, config):
    regularizer = make()
    assert regularizer(minidl.Tensor(W)).item() == pytest.approx(penalty)
    assert regularizer.get_config() == config
    assert regularizers.get(regularizers.serialize(regularizer)).get_config() == config


def test_penalties_have_float64_gradients(check_grad):
    check_grad(regularizers.L1L2(0.3, 0.2), W + 0.1)


def test_bad_regularizers_are_named():
    with pytest.raises(ValueError, match='regularizer: l2 must be a number >= 0, got -1.0'):
        regularizers.L2(-1)
    with pytest.raises(ValueError, match="unknown regularizer 'l3'; known regularizers: L1"):
        regularizers.get('l3')
    with pytest.raises(TypeError, match='cannot save the regularizer'):
        regularizers.serialize(lambda w: w.sum())


def _model():
    minidl.random.seed(0)
    return models.Sequential([
        layers.Dense(3, activation='relu', input_shape=(2,), kernel_regularizer='l2',
                     activity_regularizer=regularizers.L1(0.1)),
        layers.Dense(2, activation='softmax', bias_regularizer=regularizers.L1(0.5),
                     bias_initializer='ones')])


def test_model_losses_list_the_penalties_and_training_adds_them_to_the_loss():
    model = _model()
    x, y = np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32), np.eye(2)[[0, 1]]
    hidden = model.layers[0](x)
    activity = 0.1 * np.abs(hidden.numpy()).sum() / 2
    kernel = model.layers[0].kernel.numpy()
    want = [activity, 0.01 * (kernel ** 2).sum(), 0.5 * 2]
    np.testing.assert_allclose([loss.item() for loss in model.losses], want, rtol=1e-6)
    model.compile('sgd', 'categorical_crossentropy')
    data = model.layers[-1].call(model.layers[0](x))  # the probabilities
    cross_entropy = -np.log(data.numpy()[[0, 1], [0, 1]]).mean()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(cross_entropy + sum(want), rel=1e-5)
    model.layers[1].trainable = False  # a frozen layer keeps its penalty, as in tf-keras
    assert len(model.losses) == 3


def test_regularizers_are_kept_through_keras_configs_both_ways(tmp_path):
    model = _model()
    for dialect in (KERAS2, KERAS3):
        spec = serialize(model, dialect)
        dense = [s for s in spec['config']['layers'] if s['class_name'] == 'Dense'][0]
        assert dense['config']['kernel_regularizer']['class_name'] == 'L2'
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            rebuilt = from_config(spec, 'm')
        assert rebuilt.layers[0].kernel_regularizer.get_config() == {'l2': 0.01}
        assert rebuilt.layers[0].activity_regularizer.get_config() == {'l1': 0.1}
        assert rebuilt.layers[1].bias_regularizer.get_config() == {'l1': 0.5}
    model.save(tmp_path / 'm.h5')
    loaded = models.load_model(tmp_path / 'm.h5')
    assert len(loaded.losses) == 2 and loaded.layers[1].bias_regularizer.l1 == 0.5


def test_an_activity_regularizer_of_a_layer_minidl_gives_none_is_dropped_with_a_warning():
    spec = {'class_name': 'Sequential', 'config': {'name': 's', 'layers': [
        {'class_name': 'MaxPooling1D', 'config': {
            'name': 'pool', 'batch_input_shape': [None, 4, 1], 'pool_size': 2,
            'activity_regularizer': {'class_name': 'L2', 'config': {'l2': 0.1}}}}]}}
    with pytest.warns(UserWarning, match=r'pool \(MaxPooling1D\) activity_regularizer='):
        from_config(spec, 'm.h5')


def test_a_function_as_activation_cannot_be_saved_as_a_config():
    model = models.Sequential([layers.Dense(2, activation=lambda t: t * 2, input_shape=(3,),
                                            name='doubled')])
    assert model.predict(np.ones((1, 3), np.float32)).shape == (1, 2)
    with pytest.raises(ValueError, match=r'doubled \(Dense\) compute with code'):
        file_config(model, 'm.h5')


def test_depthwise_and_pointwise_kernels_take_their_own_regularizers():
    layer = layers.SeparableConv2D(2, 3, depthwise_regularizer=regularizers.L1(0.5),
                                   pointwise_regularizer=regularizers.L2(0.25),
                                   bias_regularizer='l2')
    layer(np.ones((1, 4, 4, 2), np.float32))
    depthwise, pointwise = layer.depthwise_kernel.numpy(), layer.pointwise_kernel.numpy()
    assert np.isclose(sum(float(loss.numpy()) for loss in layer.losses),
                      0.5 * np.abs(depthwise).sum() + 0.25 * (pointwise ** 2).sum())
    config = layer.get_config()
    assert config['depthwise_regularizer']['class_name'] == 'L1'
    assert 'kernel_regularizer' not in config
    clone = layers.SeparableConv2D.from_config({**config, 'name': 'clone'})
    assert clone.pointwise_regularizer.get_config() == {'l2': 0.25}
    depth = layers.DepthwiseConv2D(3, depthwise_regularizer='l2')
    depth(np.ones((1, 4, 4, 2), np.float32))
    assert len(depth.losses) == 1
