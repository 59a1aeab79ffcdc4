"""Keras 3's preprocessing layers: Keras's values (fixtures/keras3_preprocessing.npz, written
by make_keras3_preprocessing.py; live ``interop`` tests where Keras 3 is installed), identity
at inference, gradients where Keras has them, and clear errors."""
import json
import pathlib

import numpy as np
import pytest

import minidl
from minidl import layers, models
from minidl.models import Sequential

FIXTURE = np.load(pathlib.Path(__file__).parent / 'fixtures' / 'keras3_preprocessing.npz')
META = json.loads(str(FIXTURE['meta']))
CASES = list(enumerate(META['cases']))
AUGMENTATIONS = [lambda: layers.RandomFlip(seed=1), lambda: layers.RandomRotation(0.2, seed=1),
                 lambda: layers.RandomZoom(0.3, seed=1),
                 lambda: layers.RandomTranslation(0.2, 0.3, seed=1),
                 lambda: layers.RandomContrast(0.4, seed=1)]


def _given(transformation):
    return {key: np.array(value, np.bool_ if key == 'flips' else np.float32)
            for key, value in transformation.items()}


@pytest.mark.parametrize('index, case', CASES, ids=[
    f"{i}-{c['layer']}-{'-'.join(str(v) for v in c['kwargs'].values())}" for i, c in CASES])
def test_layers_compute_keras_values(index, case):
    layer = getattr(layers, case['layer'])(**case['kwargs'])
    images = FIXTURE['images']
    if case['transformation'] is None:
        out = layer(images)
    else:
        out = layer.transform_images(images, _given(case['transformation']))
    np.testing.assert_allclose(out.numpy(), FIXTURE[f'out_{index}'], rtol=0, atol=2e-3)


@pytest.mark.parametrize('make', AUGMENTATIONS)
def test_augmentation_is_the_identity_at_inference_and_changes_images_in_training(make):
    layer = make()
    x = np.random.default_rng(0).uniform(0, 255, (4, 6, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    trained = layer(x).numpy()  # on its own, as in Keras 3, it augments
    assert trained.shape == x.shape and trained.dtype == np.float32
    assert not np.allclose(trained, x)


def test_a_seed_makes_the_draws_repeatable_and_minidl_random_seed_does_without_one():
    x = np.random.default_rng(0).uniform(0, 255, (3, 5, 5, 1)).astype(np.float32)
    a, b = layers.RandomRotation(0.3, seed=4), layers.RandomRotation(0.3, seed=4)
    np.testing.assert_array_equal(a(x, training=True).numpy(), b(x, training=True).numpy())
    minidl.random.seed(2)
    first = layers.RandomZoom(0.3)(x, training=True).numpy()
    minidl.random.seed(2)
    np.testing.assert_array_equal(layers.RandomZoom(0.3)(x, training=True).numpy(), first)


def test_random_parameters_cover_keras_ranges():
    n = 4000
    draws = {
        'angle': layers.RandomRotation((-0.1, 0.3), seed=0).get_random_transformation(
            (n, 4, 4, 1))['angle'],
        'zoom': layers.RandomZoom((-0.2, 0.5), seed=0).get_random_transformation(
            (n, 4, 4, 1))['height_zoom'],
        'shift': layers.RandomTranslation(0.5, 0.25, seed=0).get_random_transformation(
            (n, 10, 8, 1))['translations'],
        'contrast': layers.RandomContrast(0.4, seed=0).get_random_transformation(
            (n, 4, 4, 1))['contrast_factor'],
    }
    assert -36 <= draws['angle'].min() < -35 and 107 < draws['angle'].max() <= 108
    assert 0.8 <= draws['zoom'].min() < 0.81 and 1.49 < draws['zoom'].max() <= 1.5
    assert np.abs(draws['shift'][:, 0]).max() <= 2 and np.abs(draws['shift'][:, 1]).max() <= 5
    assert 4.9 < np.abs(draws['shift'][:, 1]).max()
    # Keras 3.15's RandomContrast(0.4) draws from [1, 1.4]: it never lowers the contrast.
    assert 1 <= draws['contrast'].min() < 1.01 and 1.39 < draws['contrast'].max() <= 1.4
    flips = layers.RandomFlip(seed=0).get_random_transformation((n, 2, 2, 1))['flips']
    assert 0.47 < flips.mean() < 0.53


def test_zoom_without_width_factor_zooms_both_axes_alike():
    t = layers.RandomZoom(0.4, seed=0).get_random_transformation((5, 4, 4, 1))
    np.testing.assert_array_equal(t['height_zoom'], t['width_zoom'])
    t = layers.RandomZoom(0.4, 0.1, seed=0).get_random_transformation((5, 4, 4, 1))
    assert np.abs(t['width_zoom'] - 1).max() <= 0.1 < np.abs(t['height_zoom'] - 1).max()


def test_flip_and_contrast_pass_gradients_in_training(check_grad):
    x = np.random.default_rng(1).uniform(0, 1, (3, 4, 5, 2))
    flip = layers.RandomFlip(seed=0)
    flips = {'flips': np.array([True, False, True]).reshape(3, 1, 1, 1)}
    check_grad(lambda t: flip.transform_images(t, flips), x)
    contrast = layers.RandomContrast(0.5, value_range=(0, 1))
    factor = {'contrast_factor': np.array([0.7, 1.2, 1.0]).reshape(3, 1, 1, 1)}
    check_grad(lambda t: contrast.transform_images(t, factor), x)


def test_warps_refuse_an_input_that_needs_a_gradient_in_training():
    x = minidl.Tensor(np.zeros((1, 4, 4, 1)), requires_grad=True)
    with pytest.raises(ValueError, match=r'rot \(RandomRotation\) passes no gradient'):
        layers.RandomRotation(0.1, name='rot')(x, training=True)
    assert layers.RandomRotation(0.1)(x, training=False).requires_grad  # the identity


def test_an_augmenting_model_trains_and_predicts_unchanged_images():
    minidl.random.seed(0)
    model = Sequential([layers.Input((8, 8, 1)), layers.Rescaling(1 / 255),
                        layers.RandomFlip('horizontal'), layers.RandomRotation(0.1),
                        layers.RandomZoom(0.2), layers.RandomTranslation(0.1, 0.1),
                        layers.RandomContrast(0.2, value_range=(0, 1)), layers.Flatten(),
                        layers.Dense(2, activation='softmax')])
    model.compile('sgd', 'sparse_categorical_crossentropy')
    x = np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 1)).astype(np.float32)
    history = model.fit(x, np.arange(16) % 2, epochs=2, batch_size=8, verbose=0)
    assert len(history.history['loss']) == 2
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_resizing_and_centre_crop_shapes_and_summary_shapes():
    assert layers.Resizing(3, 4).compute_output_shape((None, 9, 9, 2)) == (None, 3, 4, 2)
    assert layers.CenterCrop(2, 5).compute_output_shape((None, None, None, 3)) == \
        (None, 2, 5, 3)
    x = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6, 1)
    np.testing.assert_array_equal(layers.CenterCrop(2, 3)(x).numpy()[0, ..., 0],
                                  x[0, 1:3, 1:4, 0])
    np.testing.assert_array_equal(layers.Resizing(5, 6)(x).numpy(), x)


@pytest.mark.parametrize('make, message', [
    (lambda: layers.RandomFlip('diagonal'), r'RandomFlip\): mode must be one of'),
    (lambda: layers.RandomRotation(1.5), r'factor must be a number or a pair .* \[-1, 1\]'),
    (lambda: layers.RandomRotation(0.1, fill_mode='mirror'), 'fill_mode must be one of'),
    (lambda: layers.RandomZoom(-1.0), r'RandomZoom\): height_factor must be'),
    (lambda: layers.RandomZoom(0.2, (0.1, 0.2, 0.3)), 'width_factor must be'),
    (lambda: layers.RandomTranslation(0.1, 1.5), 'width_factor must be'),
    (lambda: layers.RandomContrast(-0.2), r'factor .* \[0, 1\]'),
    (lambda: layers.RandomContrast(0.2, value_range=(1, 0)), 'value_range must be a pair'),
    (lambda: layers.Resizing(0, 4), r'Resizing\): height must be an integer >= 1'),
    (lambda: layers.Resizing(4, 4, interpolation='bicubic'), 'interpolation must be one of'),
    (lambda: layers.Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True),
     'only one of'),
    (lambda: layers.Resizing(4, 4, antialias=True), 'antialias=True is not supported'),
    (lambda: layers.Rescaling('1/255'), r'Rescaling\): scale must be a finite number'),
    (lambda: layers.CenterCrop(3, 0), r'CenterCrop\): width must be an integer >= 1')])
def test_bad_arguments_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------- live, against Keras 3


def _keras():
    """Keras 3 on torch, the backend the fixtures come from: on TensorFlow, Keras 3 resamples
    through TensorFlow's ImageProjectiveTransform, whose 'wrap' differs from its own torch and
    NumPy backends."""
    keras = pytest.importorskip('keras')
    if keras.backend.backend() != 'torch':
        pytest.skip('Keras 3 preprocessing layers are judged on the torch backend')
    return keras


@pytest.mark.interop
@pytest.mark.parametrize('name', ['RandomRotation', 'RandomZoom', 'RandomTranslation',
                                  'RandomFlip', 'RandomContrast'])
def test_live_transforms_equal_keras_given_keras_parameters(name):
    keras = _keras()
    rng = np.random.default_rng(7)
    arguments = {'RandomRotation': dict(factor=0.5), 'RandomZoom': dict(height_factor=0.6),
                 'RandomTranslation': dict(height_factor=0.7, width_factor=0.7),
                 'RandomFlip': {}, 'RandomContrast': dict(factor=(0.5, 0.5))}[name]
    options = [{}] if name in ('RandomFlip', 'RandomContrast') else [
        dict(fill_mode=f, interpolation=i, fill_value=20.0)
        for f in ('reflect', 'wrap', 'constant', 'nearest') for i in ('bilinear', 'nearest')]
    for option in options:
        theirs = getattr(keras.layers, name)(**arguments, **option)
        for _ in range(5):
            ours = getattr(layers, name)(**arguments, **option)  # built for each image size
            x = rng.integers(0, 256, (3, *rng.integers(1, 12, 2), 2)).astype(np.float32)
            transformation = theirs.get_random_transformation(x, training=True)
            expected = keras.ops.convert_to_numpy(theirs.transform_images(
                keras.ops.convert_to_tensor(x), transformation, training=True))
            given = {k: keras.ops.convert_to_numpy(v) for k, v in transformation.items()
                     if k in ('angle', 'height_zoom', 'width_zoom', 'translations', 'flips',
                              'contrast_factor')}
            out = ours.transform_images(x, given).numpy()
            wrong = np.abs(out - expected) > 2e-3
            # Nearest-neighbour rotation: a point within float32 rounding of a half-pixel
            # can round either way (Keras computes in float32); at most one pixel in 200.
            limit = 0.005 if option.get('interpolation') == 'nearest' else 0
            assert wrong.mean() <= limit, (option, given)
            np.testing.assert_array_equal(ours(x, training=False).numpy(),
                                          keras.ops.convert_to_numpy(theirs(x, training=False)))


@pytest.mark.interop
def test_live_resizing_centre_crop_and_rescaling_equal_keras():
    keras = _keras()
    rng = np.random.default_rng(8)
    for _ in range(40):
        x = rng.integers(0, 256, (2, *rng.integers(1, 14, 2), 2)).astype(np.float32)
        height, width = (int(v) for v in rng.integers(1, 14, 2))
        made = [('CenterCrop', dict(height=height, width=width)),
                ('Rescaling', dict(scale=float(rng.uniform(-2, 2)),
                                   offset=float(rng.uniform(-3, 3))))]
        for interpolation in ('bilinear', 'nearest'):
            for extra in ({}, {'crop_to_aspect_ratio': True},
                          {'pad_to_aspect_ratio': True, 'fill_value': 7.0}):
                made.append(('Resizing', dict(height=height, width=width,
                                              interpolation=interpolation, **extra)))
        for name, kwargs in made:
            expected = keras.ops.convert_to_numpy(getattr(keras.layers, name)(**kwargs)(x))
            out = getattr(layers, name)(**kwargs)(x).numpy()
            np.testing.assert_allclose(out, expected, rtol=0, atol=2e-3, err_msg=name)


@pytest.mark.interop
def test_live_a_keras_model_with_every_preprocessing_layer_loads_and_predicts(tmp_path):
    keras = _keras()
    from minidl.saving import load_model
    theirs = keras.Sequential([
        keras.Input((12, 10, 3)), keras.layers.Rescaling(1 / 255),
        keras.layers.Resizing(8, 8, crop_to_aspect_ratio=True), keras.layers.CenterCrop(6, 6),
        keras.layers.RandomFlip('horizontal', seed=3), keras.layers.RandomRotation(0.1),
        keras.layers.RandomZoom(0.2, (-0.1, 0.1)), keras.layers.RandomTranslation(0.1, 0.2),
        keras.layers.RandomContrast(0.3, value_range=(0, 1)), keras.layers.Flatten(),
        keras.layers.Dense(2)])
    theirs.save(tmp_path / 'augment.keras')
    x = np.random.default_rng(0).uniform(0, 255, (2, 12, 10, 3)).astype(np.float32)
    ours = load_model(tmp_path / 'augment.keras')
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               atol=1e-5)
    assert ours.layers[3].seed == 3 and ours.layers[7].factor == (0.0, 0.3)


def test_an_augmentation_block_called_on_its_own_augments_as_in_keras3():
    """The lessons look at augmented images by calling the block on them; predict does not."""
    block = models.Sequential([layers.RandomFlip('horizontal', seed=1),
                               layers.RandomRotation(0.2, seed=2)])
    images = np.random.default_rng(0).random((4, 6, 6, 1)).astype(np.float32)
    assert not np.allclose(block(images).numpy(), images)
    np.testing.assert_array_equal(block(images, training=False).numpy(), images)
    np.testing.assert_array_equal(block.predict(images, verbose=0), images)
    x = layers.Input((6, 6, 1))
    model = models.Model(x, layers.Dense(1, kernel_initializer='ones')(block(x)))
    assert not np.allclose(model(images).numpy(), model.predict(images, verbose=0))
