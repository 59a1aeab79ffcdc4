"""ImageDataGenerator: augmentation parameters, normalisation, and flow() over arrays."""
import numpy as np
import pytest

import minidl
from minidl.preprocessing.image import ImageDataGenerator, array_to_img, img_to_array


def images(n=8, size=(10, 12), channels=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *size, channels)).astype(np.float32)


AUGMENTING = dict(rotation_range=30, width_shift_range=0.2, height_shift_range=0.2,
                  shear_range=10, zoom_range=0.2, horizontal_flip=True, vertical_flip=True,
                  channel_shift_range=20, brightness_range=(0.8, 1.2))


def test_rescale_scales_every_value():
    x = images()
    batch = next(ImageDataGenerator(rescale=1 / 255).flow(x, batch_size=8, shuffle=False))
    np.testing.assert_allclose(batch, x / 255, rtol=1e-6)
    assert batch.dtype == np.float32


def test_flow_batches_shapes_order_and_last_short_batch():
    x, y = images(10), np.arange(10)
    it = ImageDataGenerator().flow(x, y, batch_size=4, shuffle=False)
    assert len(it) == 3
    batches = [next(it) for _ in range(4)]
    assert [len(b[1]) for b in batches] == [4, 4, 2, 4]
    np.testing.assert_array_equal(batches[2][1], [8, 9])
    np.testing.assert_array_equal(batches[0][0], x[:4])
    np.testing.assert_array_equal(it[2][1], [8, 9])
    it.close()


def test_flow_without_targets_yields_images_only():
    with ImageDataGenerator().flow(images(3), batch_size=2) as it:
        assert next(it).shape == (2, 10, 12, 3)


def test_flow_reshuffles_each_epoch_and_keeps_pairs_together():
    x = np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1) * np.ones((1, 2, 2, 1), np.float32)
    with ImageDataGenerator().flow(x, np.arange(20), batch_size=20, seed=3) as it:
        (x1, y1), (_, y2) = next(it), next(it)
    np.testing.assert_array_equal(x1[:, 0, 0, 0], y1)
    assert sorted(y1) == list(range(20)) and sorted(y2) == list(range(20))
    assert list(y1) != list(y2)


def test_same_seed_gives_the_same_augmented_batches():
    gen, x = ImageDataGenerator(**AUGMENTING), images()
    with gen.flow(x, batch_size=4, seed=7) as a, gen.flow(x, batch_size=4, seed=7) as b, \
            gen.flow(x, batch_size=4, seed=8) as c:
        first = [next(a) for _ in range(3)]
        again = [next(b) for _ in range(3)]
        np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))
        assert not np.allclose(first[0], next(c))


def test_unseeded_iterators_follow_minidl_random_seed():
    gen, x = ImageDataGenerator(**AUGMENTING), images()
    minidl.random.seed(5)
    with gen.flow(x, batch_size=4) as it:
        first = next(it)
    minidl.random.seed(5)
    with gen.flow(x, batch_size=4) as it:
        np.testing.assert_array_equal(next(it), first)


def test_prefetching_does_not_change_the_batches():
    gen, x = ImageDataGenerator(**AUGMENTING), images(9)
    with gen.flow(x, batch_size=2, seed=1, prefetch=0) as plain, \
            gen.flow(x, batch_size=2, seed=1, prefetch=3, workers=2) as threaded:
        for _ in range(12):
            np.testing.assert_array_equal(next(plain), next(threaded))


def test_random_transform_with_a_seed_is_repeatable():
    gen, x = ImageDataGenerator(**AUGMENTING), images(1)[0]
    np.testing.assert_array_equal(gen.random_transform(x, seed=4), gen.random_transform(x, seed=4))
    assert gen.get_random_transform(x.shape, seed=4) == gen.get_random_transform(x.shape, seed=4)


def test_random_parameters_stay_in_their_ranges():
    gen = ImageDataGenerator(rotation_range=30, width_shift_range=0.1, height_shift_range=3,
                             shear_range=5, zoom_range=[0.9, 1.3], brightness_range=[0.5, 0.7])
    for seed in range(50):
        p = gen.get_random_transform((40, 50, 3), seed=seed)
        assert abs(p['theta']) <= 30 and abs(p['shear']) <= 5
        assert abs(p['ty']) <= 5 and p['tx'] in (-2, -1, 0, 1, 2)  # int range: pixels in (-3, 3)
        assert 0.9 <= p['zx'] <= 1.3 and 0.9 <= p['zy'] <= 1.3
        assert 0.5 <= p['brightness'] <= 0.7
        assert p['flip_horizontal'] is False and p['channel_shift_intensity'] is None


def test_no_augmentation_draws_identity_parameters():
    p = ImageDataGenerator().get_random_transform((5, 5, 3), seed=0)
    assert p == {'theta': 0.0, 'tx': 0.0, 'ty': 0.0, 'shear': 0.0, 'zx': 1.0, 'zy': 1.0,
                 'flip_horizontal': False, 'flip_vertical': False,
                 'channel_shift_intensity': None, 'brightness': None}


def test_apply_transform_uses_keras_parameter_names():
    x = np.zeros((5, 5, 1), np.float32)
    x[2, 0] = 1
    out = ImageDataGenerator(fill_mode='constant').apply_transform(x, {'ty': -2})
    assert out[2, 2, 0] == 1 and out.sum() == 1


def test_horizontal_flip_mirrors_about_half_of_the_images():
    x = images(40)
    out = ImageDataGenerator(horizontal_flip=True).flow(x, batch_size=40, shuffle=False, seed=0)
    batch = next(out)
    out.close()
    flipped = [np.array_equal(b, a[:, ::-1]) for a, b in zip(x, batch)]
    kept = [np.array_equal(b, a) for a, b in zip(x, batch)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 30


def test_channel_shift_adds_one_offset_clipped_to_the_image_range():
    x = np.array([[[10, 50, 90]]], np.float32)
    out = ImageDataGenerator().apply_transform(x, {'channel_shift_intensity': 30})
    np.testing.assert_allclose(out, [[[40, 80, 90]]])


def test_brightness_stretches_to_eight_bits_then_multiplies_as_keras():
    # Keras goes through PIL: 10..200 is stretched to 0..255 (100 -> 120.8, cut to 120),
    # then multiplied by 1.5 and clipped.
    x = np.array([[[10, 100, 200]]], np.float32)
    out = ImageDataGenerator().apply_transform(x, {'brightness': 1.5})
    np.testing.assert_array_equal(out, [[[0, 180, 255]]])
    grey = ImageDataGenerator().apply_transform(np.full((2, 2, 1), 9.0, np.float32),
                                                {'brightness': 2.0})
    assert grey.shape == (2, 2, 1) and np.all(grey == 0)  # a flat image stretches to black
    with pytest.raises(ValueError, match=r'1, 3 or 4 channels .*\(1, 1, 2\)'):
        ImageDataGenerator().apply_transform(np.zeros((1, 1, 2)), {'brightness': 1.0})


@pytest.mark.parametrize('key, expected', [('flip_horizontal', lambda x: x[:, ::-1]),
                                           ('flip_vertical', lambda x: x[::-1])])
def test_flips_mirror_the_image(key, expected):
    x = np.random.default_rng(1).random((4, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(ImageDataGenerator().apply_transform(x, {key: True}),
                                  expected(x))


def test_flip_follows_the_affine_part_as_in_keras():
    # Keras shifts first, then flips the result: the dot moves right by 2, then is mirrored.
    x = np.zeros((1, 9, 1), np.float32)
    x[0, 4] = 1
    out = ImageDataGenerator(fill_mode='constant').apply_transform(
        x, {'ty': -2, 'flip_horizontal': True})
    assert out[0, 2, 0] == 1 and out.sum() == 1


def test_featurewise_statistics_come_from_fit_after_rescale():
    x = images(20)
    gen = ImageDataGenerator(rescale=1 / 255, featurewise_center=True,
                             featurewise_std_normalization=True).fit(x)
    out = gen.standardize(x)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-3)
    assert gen.mean.shape == (1, 1, 3)


def test_featurewise_without_fit_says_to_call_fit():
    with pytest.raises(ValueError, match=r'call fit\(x_train\)'):
        ImageDataGenerator(featurewise_center=True).standardize(images(1)[0])


def test_samplewise_normalisation_is_per_image():
    out = ImageDataGenerator(samplewise_center=True,
                             samplewise_std_normalization=True).standardize(images(4))
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-3)


def test_preprocessing_function_runs_per_image_before_rescale():
    seen = []

    def invert(image):
        seen.append(image.shape)
        return 255 - image

    x = images(3)
    out = ImageDataGenerator(preprocessing_function=invert, rescale=0.5).standardize(x)
    np.testing.assert_allclose(out, (255 - x) * 0.5, rtol=1e-6)
    assert seen == [(10, 12, 3)] * 3


def test_validation_split_takes_the_first_fraction_for_validation():
    x, y = images(10), np.arange(10)
    gen = ImageDataGenerator(validation_split=0.3)
    with gen.flow(x, y, batch_size=10, shuffle=False, subset='validation') as val, \
            gen.flow(x, y, batch_size=10, shuffle=False, subset='training') as train:
        np.testing.assert_array_equal(next(val)[1], [0, 1, 2])
        np.testing.assert_array_equal(next(train)[1], np.arange(3, 10))
    with pytest.raises(ValueError, match='needs a validation_split'):
        ImageDataGenerator().flow(x, y, subset='validation')
    with pytest.raises(ValueError, match='subset must be one of'):
        gen.flow(x, y, subset='test')


@pytest.mark.parametrize('kwargs, message', [
    (dict(fill_mode='mirror'), 'fill_mode must be one of'),
    (dict(zoom_range=[0.5]), 'zoom_range must be a float or a pair'),
    (dict(validation_split=1.0), 'validation_split must be in'),
    (dict(interpolation_order=3), 'interpolation_order must be 0'),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageDataGenerator(**kwargs)


def test_flow_checks_its_arrays():
    with pytest.raises(ValueError, match=r'shape \(N, H, W, C\)'):
        ImageDataGenerator().flow(np.zeros((4, 5, 5)))
    with pytest.raises(ValueError, match='4 images and 3 targets'):
        ImageDataGenerator().flow(np.zeros((4, 5, 5, 1)), np.zeros(3))


def test_array_to_img_and_back():
    x = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    img = array_to_img(x)
    assert img.mode == 'RGB' and img.size == (3, 2)
    np.testing.assert_allclose(img_to_array(img), np.round(x * 255))
    assert array_to_img(x[..., :1], scale=False).mode == 'L'
    with pytest.raises(ValueError, match='C = 1, 3 or 4'):
        array_to_img(np.zeros((2, 2, 2)))


def correlated_images(n=3000, seed=0):
    """(n, 4, 4, 2) images whose 32 values are strongly correlated: a random mix of noise."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((32, 32)) + 0.5
    return (rng.standard_normal((n, 32)) @ mixing + 100).reshape(n, 4, 4, 2).astype(np.float32)


def test_zca_whitening_decorrelates_every_value_and_keeps_the_image_shape():
    x = correlated_images()
    with pytest.warns(UserWarning, match='turns featurewise_center on'):
        gen = ImageDataGenerator(zca_whitening=True, zca_epsilon=1e-9)
    gen.fit(x)
    assert gen.featurewise_center and gen.principal_components.shape == (32, 32)
    np.testing.assert_allclose(gen.principal_components, gen.principal_components.T, atol=1e-4)
    # Centred by channel means, as Keras centres: the second moments become the identity.
    flat = gen.standardize(x).reshape(len(x), -1).astype(np.float64)
    np.testing.assert_allclose(flat.T @ flat / len(flat), np.eye(32), atol=1e-4)
    raw = np.corrcoef(x.reshape(len(x), -1), rowvar=False)
    assert np.abs(raw - np.eye(32)).max() > 0.5  # the values were far from uncorrelated
    one = gen.standardize(x[0])
    assert one.shape == (4, 4, 2) and one.dtype == np.float32
    np.testing.assert_allclose(one, gen.standardize(x[:1])[0], rtol=1e-5, atol=1e-5)


def test_zca_whitening_says_when_it_needs_fit_and_when_images_are_too_large():
    gen = ImageDataGenerator(zca_whitening=True, featurewise_center=True)
    with pytest.raises(ValueError, match=r'needs statistics of the training data: call fit'):
        gen.standardize(correlated_images(2))
    with pytest.raises(ValueError, match=r'22500 x 22500 matrix .* at most 16384 values'):
        gen.fit(np.zeros((2, 150, 50, 3), np.float32))


def test_save_to_dir_writes_each_augmented_image_with_keras_names(tmp_path):
    x, folder = images(6), tmp_path / 'seen'
    gen = ImageDataGenerator(rescale=1 / 255, **AUGMENTING)
    batch, _ = next(gen.flow(x, np.arange(6), batch_size=4, shuffle=False, seed=3,
                             save_to_dir=folder, save_prefix='aug', prefetch=0))
    names = sorted(path.name for path in folder.iterdir())
    assert [name.split('_')[:2] for name in names] == [['aug', str(i)] for i in range(4)]
    assert all(name.endswith('.png') for name in names)
    saved = img_to_array(minidl.preprocessing.image.load_img(folder / names[0]))
    assert saved.shape == (10, 12, 3)
    np.testing.assert_allclose(saved, np.asarray(array_to_img(batch[0], scale=True)), atol=0)
    next(gen.flow(x, batch_size=4, shuffle=False, seed=3, save_to_dir=tmp_path / 'again',
                  save_prefix='aug', prefetch=0))
    assert sorted(path.name for path in (tmp_path / 'again').iterdir()) == names
