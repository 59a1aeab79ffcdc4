"""Normalization, regularization, reshaping and pooling layers against Keras: outputs and
weights on the configs of ``fixtures/make_normreg.py`` (Keras-free, from its fixtures; and
live, marked ``interop``), plus what has no fixture: random masks and noise, and errors."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import minidl
import minidl.functions as F
from minidl import layers, models
from minidl.io import keras_config

FIXTURES = Path(__file__).resolve().parent / 'fixtures'
_spec = importlib.util.spec_from_file_location('make_normreg', FIXTURES / 'make_normreg.py')
make_normreg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_normreg)
CASES = make_normreg.CASES
IDS = [f'{i}-{name}' for i, (name, *_) in enumerate(CASES)]


def minidl_run(name, kwargs, shape, training):
    layer = getattr(layers, name)(**kwargs)
    layer.build((None,) + tuple(shape[1:]))
    layer.built = True
    layer.set_weights([make_normreg.weights(w.shape, k)
                       for k, w in enumerate(layer.get_weights())])
    out = layer(make_normreg.inputs(shape), training=training).numpy()
    return layer, out, layer.get_weights()


@pytest.mark.parametrize('case', range(len(CASES)), ids=IDS)
def test_matches_the_keras_fixture(case):
    name, kwargs, shape, training = CASES[case]
    with np.load(FIXTURES / 'normreg.npz') as saved:
        want = saved[f'{case}_out']
        want_weights = [saved[f'{case}_w{k}'] for k in range(len(saved.files))
                        if f'{case}_w{k}' in saved.files]
    _, out, after = minidl_run(name, kwargs, shape, training)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert [w.shape for w in after] == [w.shape for w in want_weights]
    for got, expected in zip(after, want_weights):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_fixture_records_its_versions():
    meta = json.loads((FIXTURES / 'normreg.json').read_text())
    assert meta['keras'].startswith('3.') and meta['cases'] == len(CASES)


# --- live against Keras ---------------------------------------------------------------------
@pytest.fixture(params=['tf_keras', 'keras'])
def keras(request):
    return pytest.importorskip(request.param)


def _tf_keras_differs(keras, name, kwargs, shape, training):
    """What this Keras does otherwise: tf-keras has no rms_scaling, and its fused 4-D
    BatchNormalization moves the variance with Bessel's correction (n / (n - 1)), Keras 3
    without; Keras 3 takes synchronized=True on TensorFlow only."""
    if keras.__name__ != 'tf_keras':
        return 'skip' if kwargs.get('synchronized') and keras.backend.backend() != \
            'tensorflow' else None
    if kwargs.get('rms_scaling'):
        return 'skip'
    if name == 'BatchNormalization' and training and len(shape) == 4:
        return 'unbiased'
    return None


@pytest.mark.interop
@pytest.mark.parametrize('case', range(len(CASES)), ids=IDS)
def test_matches_keras_live(keras, case):
    name, kwargs, shape, training = CASES[case]
    differs = _tf_keras_differs(keras, name, kwargs, shape, training)
    if differs == 'skip':
        pytest.skip('tf-keras has no rms_scaling; Keras 3 synchronizes on TensorFlow only')
    if keras.__name__ == 'keras' and keras.backend.backend() == 'torch' and \
            name == 'LayerNormalization' and kwargs.get('axis') == 1:
        pytest.xfail('Keras 3.15 on torch normalises the trailing axes for any single axis '
                     '(torch.nn.functional.layer_norm): fails on this input')
    want, want_weights = make_normreg.keras_run(keras, name, kwargs, shape, training)
    layer, out, after = minidl_run(name, kwargs, shape, training)
    print(f'{keras.__name__} {name} {kwargs}: max |minidl - Keras| = '
          f'{np.abs(out - want).max():.2e}')
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert [w.shape for w in after] == [w.shape for w in want_weights]
    if differs == 'unbiased':
        axis = kwargs.get('axis', -1) % len(shape)
        n = np.prod(shape) // shape[axis]
        moving = make_normreg.weights(after[-1].shape, len(after) - 1)
        batch_var = (after[-1] - kwargs.get('momentum', 0.99) * moving) / (
            1 - kwargs.get('momentum', 0.99))
        after[-1] = kwargs.get('momentum', 0.99) * moving + (
            1 - kwargs.get('momentum', 0.99)) * batch_var * n / (n - 1)
    for got, expected in zip(after, want_weights):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.interop
@pytest.mark.parametrize('case', range(len(CASES)), ids=IDS)
def test_configs_cross_between_keras_and_minidl(keras, case):
    """Keras's config of the layer builds the minidl layer, and minidl's builds Keras's."""
    name, kwargs, shape, training = CASES[case]
    if _tf_keras_differs(keras, name, kwargs, shape, training) == 'skip':
        pytest.skip('tf-keras has no rms_scaling; Keras 3 synchronizes on TensorFlow only')
    theirs = getattr(keras.layers, name)(**kwargs)
    ours = keras_config.from_config(keras.layers.serialize(theirs), 'live')
    assert type(ours).__name__ == name
    dialect = keras_config.KERAS2 if keras.__name__ == 'tf_keras' else keras_config.KERAS3
    back = keras.layers.deserialize(keras_config.serialize(ours, dialect))
    mine = {k: v for k, v in getattr(layers, name)(**kwargs).get_config().items()
            if k not in ('name', 'dtype', 'trainable')}
    theirs_back = back.get_config()
    for key, value in mine.items():
        if key in theirs_back:
            assert _plain(theirs_back[key]) == _plain(value), key


def _plain(value):
    """Tuples as lists (of one: its item), an initializer as its class name."""
    if isinstance(value, dict):
        return value.get('class_name', value)
    if isinstance(value, (tuple, list)) and len(value) == 1:
        return _plain(value[0])
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return {'zeros': 'Zeros', 'ones': 'Ones'}.get(value, value)


@pytest.mark.interop
def test_spatial_and_gaussian_dropout_statistics_match_keras(keras):
    """Random layers cannot match value for value: their structure and moments do."""
    x = np.ones((64, 6, 6, 8), np.float32)
    theirs = np.asarray(keras.layers.SpatialDropout2D(0.25)(x, training=True))
    ours = layers.SpatialDropout2D(0.25, seed=1)(x, training=True).numpy()
    for y in (theirs, ours):
        per_map = y.reshape(64, 36, 8)
        assert (per_map.min(axis=1) == per_map.max(axis=1)).all()
        assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    big = np.ones((400, 500), np.float32)
    stds = [np.asarray(keras.layers.GaussianDropout(0.3)(big, training=True)).std(),
            layers.GaussianDropout(0.3, seed=2)(big, training=True).numpy().std()]
    print(f'{keras.__name__} GaussianDropout(0.3) std: Keras {stds[0]:.4f}, minidl '
          f'{stds[1]:.4f}, exact {np.sqrt(0.3 / 0.7):.4f}')
    assert abs(stds[0] - stds[1]) < 0.01


# --- without Keras: what is random, and what is refused -------------------------------------
def test_batch_norm_moves_the_biased_variance_as_keras_3():
    x = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float64)
    bn = layers.BatchNormalization(momentum=0.0, dtype='float64')
    bn(x, training=True)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(axis=(0, 1)))
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=(0, 1)))


def test_batch_norm_at_inference_has_float64_gradients(check_grad):
    bn = layers.BatchNormalization(axis=1, dtype='float64')
    x = np.random.default_rng(1).normal(size=(2, 3, 2))
    bn(x)
    bn.set_weights([w + 0.5 for w in bn.get_weights()])
    check_grad(lambda t, *weights: bn(t), x, *bn.trainable_weights)


@pytest.mark.parametrize('noise_shape, shared', [((None, 1, 4), 1), ((1, None, 1), (0, 2))])
def test_dropout_noise_shape_shares_decisions(noise_shape, shared):
    x = np.ones((6, 30, 4))
    y = layers.Dropout(0.5, noise_shape=noise_shape, seed=5)(x, training=True).numpy()
    assert (y.min(axis=shared) == y.max(axis=shared)).all()
    assert set(np.unique(y)) == {0.0, 2.0}


def test_a_seeded_dropout_repeats_its_masks_whatever_else_draws():
    x = np.ones((4, 50))

    def masks():
        layer = layers.Dropout(0.5, seed=11)
        first = layer(x, training=True).numpy()
        layers.Dropout(0.5)(x, training=True)
        return first, layer(x, training=True).numpy()
    a, b = masks()
    minidl.random.seed(3)
    c, d = masks()
    assert (a == c).all() and (b == d).all() and not (a == b).all()


def test_noise_layers_are_identities_at_inference_and_have_gradients(check_grad):
    x = np.random.default_rng(2).normal(size=(3, 4))
    for layer in (layers.GaussianNoise(0.5), layers.GaussianDropout(0.4),
                  layers.SpatialDropout1D(0.5)):
        assert (layer(x[None]).numpy() == x[None]).all()
    check_grad(lambda t: F.gaussian_dropout(t, 0.4, True, np.random.default_rng(0)), x)
    check_grad(lambda t: F.gaussian_noise(t, 0.5, True, np.random.default_rng(0)), x)
    check_grad(lambda t: F.dropout(t, 0.5, True, (1, 2), (3, 1)), x)
    noise = layers.GaussianNoise(0.5, seed=4)(np.zeros((200, 100)), training=True).numpy()
    assert abs(noise.std() - 0.5) < 0.01 and abs(noise.mean()) < 0.01


def test_embedding_mask_zero_is_keras_mask_and_refused_where_it_would_change_numbers():
    embedding = layers.Embedding(5, 3, mask_zero=True, input_length=4, name='emb')
    ids = np.array([[3, 1, 0, 0]])
    assert embedding.compute_mask(ids).tolist() == [[True, True, False, False]]
    assert layers.Embedding(5, 3).compute_mask(ids) is None
    with pytest.raises(ValueError, match=r'GlobalAveragePooling1D\): its input carries the '
                                         r'mask of emb \(Embedding with mask_zero=True\)'):
        models.Sequential([embedding, layers.Dense(2), layers.Dropout(0.1),
                           layers.GlobalAveragePooling1D()])
    for tail in ([layers.GlobalMaxPooling1D()], [layers.Conv1D(2, 2), layers.GlobalAveragePooling1D()]):
        model = models.Sequential([layers.Embedding(5, 3, mask_zero=True, input_length=4)] + tail)
        assert model.predict(ids).shape == (1, 3 if len(tail) == 1 else 2)


def test_channels_first_is_the_channels_last_result_transposed():
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 5)).astype(np.float32)
    moved = x.transpose(0, 3, 1, 2)
    for make in (lambda f: layers.MaxPooling2D(2, data_format=f),
                 lambda f: layers.UpSampling2D(2, data_format=f, interpolation='bilinear'),
                 lambda f: layers.Cropping2D(((1, 0), (1, 2)), data_format=f)):
        last = make('channels_last')(x).numpy()
        np.testing.assert_array_equal(make('channels_first')(moved).numpy(),
                                      last.transpose(0, 3, 1, 2))
        assert make('channels_first').compute_output_shape((None, 5, 3, 4)) == \
            tuple(np.array((None,) + last.shape[1:])[[0, 3, 1, 2]])


@pytest.mark.parametrize('make, shape, message', [
    (lambda: layers.Cropping1D((2, 3)), (1, 5, 2),
     r'cropping1d\w* \(Cropping1D\): cropping \(\(2, 3\),\) leaves 0 of the 5 positions'),
    (lambda: layers.BatchNormalization(axis=3), (2, 3, 4),
     r'BatchNormalization\): axis=3 must name axes of known size of inputs \(None, 3, 4\)'),
    (lambda: layers.LayerNormalization(axis=0), (2, 3),
     r'LayerNormalization\): axis=0 must name axes of known size of inputs \(None, 3\)'),
    (lambda: layers.Permute((2, 1)), (2, 3, 4, 5), r'Permute\): dims \(2, 1\) reorder 2 axes'),
    (lambda: layers.Dropout(0.5, noise_shape=(1, 2)), (2, 3, 4), r'noise_shape \(1, 2\) has 2'),
    (lambda: layers.RepeatVector(2), (2, 3, 4), r'RepeatVector\) expects inputs with 2 '
                                                r'dimensions')])
def test_shapes_that_cannot_work_name_the_layer(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make()(np.zeros(shape, np.float32))


@pytest.mark.parametrize('make, message', [
    (lambda: layers.UpSampling2D(interpolation='bicubic'),
     r"UpSampling2D\): interpolation must be 'nearest' or 'bilinear', got 'bicubic'"),
    (lambda: layers.MaxPooling2D(data_format='NCHW'), r"data_format must be 'channels_last' or "
                                                      r"'channels_first', got 'NCHW'"),
    (lambda: layers.Permute((1, 3)), r'Permute\): dims must be a permutation of 1..rank-1'),
    (lambda: layers.BatchNormalization(axis=[1, 2]), r'normalises per index of one axis'),
    (lambda: layers.LayerNormalization(axis=1.5), r'axis must be an integer, got 1.5'),
    (lambda: layers.Dropout(0.2, seed=0.5), r'seed must be an integer, got 0.5'),
    (lambda: layers.GaussianNoise(-1), r'stddev must be a number in \[0, inf\)'),
    (lambda: layers.Cropping2D(((1, -1), (0, 0))), r'cropping .* got \(1, -1\)')])
def test_arguments_are_checked_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_summary_counts_keras_params_for_normalization():
    model = models.Sequential([layers.Input((4, 4, 3)),
                               layers.BatchNormalization(scale=False),
                               layers.BatchNormalization(axis=1, center=False, scale=False),
                               layers.LayerNormalization(axis=[1, 2]),
                               layers.UpSampling2D(), layers.Cropping2D(1)])
    assert [layer.count_params() for layer in model.layers] == [9, 8, 32, 0, 0]
    assert model.layers[-1].output_shape == (None, 6, 6, 3)


@pytest.mark.interop
def test_a_keras_saved_model_of_these_layers_loads_and_predicts_the_same(keras, tmp_path):
    L = keras.layers
    model = keras.Sequential([
        keras.Input((6, 5, 3)), L.BatchNormalization(axis=1, scale=False),
        L.SpatialDropout2D(0.2, seed=3), L.GaussianNoise(0.1), L.ZeroPadding2D(1),
        L.Cropping2D(((1, 0), (0, 2))), L.UpSampling2D(interpolation='bilinear'),
        L.MaxPooling2D(2, data_format='channels_first'), L.LayerNormalization(axis=[2, 3]),
        L.GlobalAveragePooling2D(keepdims=True), L.Reshape((1,)), L.RepeatVector(2),
        L.Permute((2, 1)), L.Dropout(0.3, noise_shape=(None, 1, 2), seed=1),
        L.GaussianDropout(0.1)])
    for layer in model.layers:
        layer.set_weights([make_normreg.weights(w.shape, k)
                           for k, w in enumerate(layer.get_weights())])
    path = tmp_path / ('m.h5' if keras.__name__ == 'tf_keras' else 'm.keras')
    model.save(path)
    x = make_normreg.inputs((2, 6, 5, 3))
    want = np.asarray(model.predict(x, verbose=0))
    ours = models.load_model(path)
    np.testing.assert_allclose(ours.predict(x), want, rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / ('back' + path.suffix))
    back = keras.models.load_model(tmp_path / ('back' + path.suffix))
    np.testing.assert_allclose(np.asarray(back.predict(x, verbose=0)), want, rtol=1e-5,
                               atol=1e-5)


def test_a_keras_3_synchronized_batch_normalization_loads_and_saves_as_keras_3_does():
    """The config as Keras 3.15 writes it, ``synchronized`` always there."""
    def initializer(name):
        return {'module': 'keras.initializers', 'class_name': name, 'config': {},
                'registered_name': None}
    config = {'name': 'bn', 'trainable': True,
              'dtype': {'module': 'keras', 'class_name': 'DTypePolicy',
                        'config': {'name': 'float32'}, 'registered_name': None},
              'axis': -1, 'momentum': 0.9, 'epsilon': 0.001, 'center': True, 'scale': True,
              'beta_initializer': initializer('Zeros'), 'gamma_initializer': initializer('Ones'),
              'moving_mean_initializer': initializer('Zeros'),
              'moving_variance_initializer': initializer('Ones'), 'beta_regularizer': None,
              'gamma_regularizer': None, 'beta_constraint': None, 'gamma_constraint': None,
              'synchronized': True}
    layer = keras_config.from_config({'module': 'keras.layers', 'class_name':
                                      'BatchNormalization', 'config': config,
                                      'registered_name': None}, 'bn.keras', 'config.json')
    assert layer.synchronized is True and layer.momentum == 0.9
    assert keras_config.serialize(layer, keras_config.KERAS3)['config']['synchronized'] is True
    assert 'synchronized' not in layers.BatchNormalization().get_config()  # tf-keras < 2.12
