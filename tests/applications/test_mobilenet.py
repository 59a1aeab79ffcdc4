"""MobileNet: seed 001's summary, Keras's weight files found offline, and Keras's predictions."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from minidl.applications import MobileNet
from minidl.applications.mobilenet import preprocess_input

FIXTURES = Path(__file__).parent / 'fixtures'


def summary_text(model):
    lines = []
    model.summary(print_fn=lines.append)
    return '\n'.join(lines)


def test_summary_matches_seed_001_layer_by_layer_and_its_totals():
    """Seed 001 prints ``MobileNet(weights='imagenet', include_top=False, input_shape=(160,
    160, 3)).summary()``; the fixture holds that table's rows (as tf-keras 2.21 prints them,
    checked against the seed), the input row aside."""
    expected = json.loads((FIXTURES / 'mobilenet_160_no_top.json').read_text())
    model = MobileNet(weights=None, include_top=False, input_shape=(160, 160, 3))
    assert model.name == expected['name'] == 'mobilenet_1.00_160'
    assert type(model.layers[0]).__name__ == 'InputLayer'
    assert model.layers[0].output_shape == (None, 160, 160, 3)
    rows = [[layer.name, type(layer).__name__, list(layer.output_shape), layer.count_params()]
            for layer in model.layers[1:]]
    assert rows == [[name, kind, [None if d is None else d for d in shape], params]
                    for name, kind, shape, params in expected['rows']]
    text = summary_text(model)
    assert re.search(r'^Total params: 3,228,864$', text, re.M)
    assert re.search(r'^Trainable params: 3,206,976$', text, re.M)
    assert re.search(r'^Non-trainable params: 21,888$', text, re.M)
    assert re.search(r'conv_dw_13 \(DepthwiseConv2D\)\s+\(None, 5, 5, 1024\)\s+9216\s+230,400',
                     text)


def test_top_alpha_depth_multiplier_and_pooling():
    model = MobileNet(weights=None, input_shape=(128, 128, 3), alpha=0.25, depth_multiplier=2,
                      classes=7)
    names = [layer.name for layer in model.layers[-6:]]
    assert names == ['global_average_pooling2d', 'reshape_1', 'dropout', 'conv_preds',
                     'reshape_2', 'predictions']
    assert model.name == 'mobilenet_0.25_128' and model.output_shape == (None, 7)
    assert model.get_layer('conv1').output_shape == (None, 64, 64, 8)
    assert model.get_layer('conv_dw_2').output_shape == (None, 32, 32, 32)  # 16 * 2
    pooled = MobileNet(weights=None, include_top=False, pooling='max', alpha=0.5)
    assert pooled.output_shape == (None, 512)
    y = pooled.predict(np.zeros((1, 40, 48, 3), np.float32))
    assert y.shape == (1, 512)


def test_preprocess_input_scales_to_minus_one_one():
    x = np.array([[0, 127.5, 255]], np.uint8)
    np.testing.assert_allclose(preprocess_input(x), [[-1, 0, 1]], atol=1e-2)
    assert preprocess_input(x).dtype == np.float32


def randomised(model, seed):
    """``model`` with every weight drawn at random (variances positive), returned as a list."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                           if 'variance' in w.name else
                           (0.3 * rng.standard_normal(w.shape)).astype(np.float32)
                           for w in layer.weights])
    return model.get_weights()


def test_imagenet_weights_are_found_where_keras_caches_them(keras_home):
    source = MobileNet(weights=None, include_top=False, input_shape=(128, 128, 3), alpha=0.5)
    written = randomised(source, 0)
    source.save_weights(str(keras_home / 'mobilenet_5_0_128_tf_no_top.h5'))
    model = MobileNet(include_top=False, input_shape=(128, 128, 3), alpha=0.5)
    for got, want in zip(model.get_weights(), written):
        np.testing.assert_array_equal(got, want)


def test_missing_or_impossible_imagenet_weights_are_clear_errors(keras_home):
    with pytest.raises(FileNotFoundError, match='mobilenet_1_0_160_tf_no_top.h5.*downloads '
                                                'nothing'):
        MobileNet(include_top=False, input_shape=(160, 160, 3))
    with pytest.warns(UserWarning, match=r'no ImageNet weights for input_shape \(96, 96, 3\)'):
        with pytest.raises(FileNotFoundError, match='mobilenet_1_0_224_tf.h5'):
            MobileNet(input_shape=(96, 96, 3))
    with pytest.raises(ValueError, match='1000 classes, got classes=10'):
        MobileNet(classes=10)
    with pytest.raises(ValueError, match='alpha in .* got depth_multiplier=1, alpha=0.3'):
        MobileNet(alpha=0.3)
    with pytest.raises(ValueError, match='at least 32, got'):
        MobileNet(weights=None, input_shape=(16, 16, 3))


@pytest.mark.interop
@pytest.mark.slow
@pytest.mark.parametrize('options', [dict(input_shape=(224, 224, 3)),
                                     dict(include_top=False, input_shape=(160, 160, 3),
                                          alpha=0.5, pooling='avg')], ids=['top', 'no-top'])
def test_keras_weight_file_gives_keras_predictions(tmp_path, options):
    """tf-keras's MobileNet with random weights, saved by save_weights, loaded by path."""
    keras = pytest.importorskip('tf_keras')
    reference = keras.applications.MobileNet(weights=None, **options)
    randomised(reference, 1)
    reference.save_weights(str(tmp_path / 'keras.h5'))
    x = preprocess_input(np.random.default_rng(2).uniform(0, 255, (2,) +
                                                           options['input_shape']))
    want = reference.predict(x, verbose=0)
    got = MobileNet(weights=str(tmp_path / 'keras.h5'), **options).predict(x)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
