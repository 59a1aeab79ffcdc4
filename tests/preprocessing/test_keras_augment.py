"""ImageDataGenerator against Keras's (keras-preprocessing 1.1.2): the same transform
parameters give the same images, for every parameter, fill mode and interpolation order, and
the random parameters follow Keras's distributions.

The Keras-free tests read fixtures/keras_augment.npz (written by make_keras_augment.py); the
``interop`` tests compare live where keras-preprocessing and scipy are installed.
"""
import json
import pathlib

import numpy as np
import pytest

import minidl
from minidl.preprocessing.affine import FILL_MODES
from minidl.preprocessing.image import ImageDataGenerator

FIXTURE = np.load(pathlib.Path(__file__).parent / 'fixtures' / 'keras_augment.npz')
META = json.loads(str(FIXTURE['meta']))


def _keras_outputs():
    seen = {'gray': 0, 'rgb': 0}
    for case in META['cases']:
        yield case, FIXTURE[case['image']], FIXTURE[f"{case['image']}_outputs"][seen[case['image']]]
        seen[case['image']] += 1


CASES = list(_keras_outputs())


@pytest.mark.parametrize('case, image, expected', CASES, ids=[
    f"{c['name']}-{c['fill_mode']}-order{c['order']}" for c, _, _ in CASES])
def test_apply_transform_gives_keras_images(case, image, expected):
    generator = ImageDataGenerator(fill_mode=case['fill_mode'], cval=case['cval'],
                                   interpolation_order=case['order'])
    out = generator.apply_transform(image.astype(np.float32), case['params'])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-3)


def test_the_fixture_tells_keras_centre_and_fill_modes_apart():
    """The cases would fail under the true centre or scipy's grid modes: they are not
    close to what an off-by-half-a-pixel warp gives."""
    case, image, expected = next((c, i, e) for c, i, e in CASES if c['name'] == 'rotate_180'
                                 and c['fill_mode'] == 'nearest' and c['order'] == 1)
    both_flips = image[::-1, ::-1].astype(np.float32)
    assert np.abs(both_flips - expected).max() > 50
    np.testing.assert_array_equal(expected[2:, 2:], both_flips[:-2, :-2])


def _critical_chi_square(df, z=3.09):
    """The chi-square value exceeded with probability 1e-3 (Wilson-Hilferty's cube-root
    normal approximation, good to a few percent for these df)."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


def _same_distribution(counts_a, counts_b):
    """Chi-square test of homogeneity: could both histograms come from one distribution?"""
    table = np.array([counts_a, counts_b], dtype=np.float64)
    expected = table.sum(1, keepdims=True) * table.sum(0) / table.sum()
    statistic = ((table - expected) ** 2 / expected).sum()
    return statistic, _critical_chi_square(table.shape[1] - 1)


def _counts(values, histogram):
    values = np.asarray(values, dtype=np.float64)
    if 'values' in histogram:
        return [int(np.sum(values == v)) for v in histogram['values']]
    return np.histogram(values, histogram['edges'])[0]


@pytest.mark.parametrize('index', range(len(META['sampling'])))
def test_random_parameters_follow_keras_distributions(index):
    sampling = META['sampling'][index]
    generator = ImageDataGenerator(**sampling['kwargs'])
    minidl.random.seed(index)
    draws = [generator.get_random_transform(META['shape']) for _ in range(META['draws'])]
    assert sampling['histograms']
    for key, histogram in sampling['histograms'].items():
        counts = _counts([d[key] for d in draws], histogram)
        assert sum(counts) == META['draws'], key  # every draw in Keras's values or range
        statistic, critical = _same_distribution(histogram['counts'], counts)
        assert statistic < critical, (key, histogram['counts'], counts)


def test_an_integer_shift_range_draws_no_shift_twice_as_often():
    minidl.random.seed(3)
    generator = ImageDataGenerator(width_shift_range=3)
    ty = np.array([generator.get_random_transform((8, 8, 1))['ty'] for _ in range(6000)])
    counts = [int(np.sum(ty == v)) for v in (-2, -1, 0, 1, 2)]
    statistic, critical = _same_distribution(counts, [1000, 1000, 2000, 1000, 1000])
    assert sum(counts) == 6000 and statistic < critical, counts


# --------------------------------------------------------------------- live, against Keras


def _keras():
    pytest.importorskip('scipy')
    return pytest.importorskip('keras_preprocessing.image')


def _random_case(rng):
    height, width = (int(v) for v in rng.integers(1, 16, 2))
    channels = int(rng.choice([1, 3]))
    params = {'theta': float(rng.choice([90, 180, -90, rng.uniform(-180, 180)])),
              'tx': float(rng.choice([rng.integers(-20, 20), rng.uniform(-20, 20)])),
              'ty': float(rng.uniform(-20, 20)), 'shear': float(rng.uniform(-50, 50)),
              'zx': float(rng.uniform(0.3, 2.5)), 'zy': float(rng.uniform(0.3, 2.5)),
              'flip_horizontal': bool(rng.random() < 0.5),
              'flip_vertical': bool(rng.random() < 0.5),
              'channel_shift_intensity': float(rng.uniform(-60, 60)),
              'brightness': float(rng.uniform(0.3, 1.7))}
    chosen = rng.choice(list(params), int(rng.integers(1, 4)), replace=False)
    image = rng.integers(0, 256, (height, width, channels)).astype(np.float32)
    return image, {key: params[key] for key in chosen}


@pytest.mark.interop
@pytest.mark.parametrize('fill_mode', FILL_MODES)
@pytest.mark.parametrize('order', [0, 1])
def test_live_apply_transform_equals_keras(fill_mode, order):
    keras = _keras()
    rng = np.random.default_rng(FILL_MODES.index(fill_mode) * 2 + order)
    worst = 0.0
    for _ in range(150):
        image, params = _random_case(rng)
        options = dict(fill_mode=fill_mode, cval=float(rng.uniform(0, 255)),
                       interpolation_order=order)
        expected = keras.ImageDataGenerator(**options).apply_transform(image.copy(),
                                                                       dict(params))
        out = ImageDataGenerator(**options).apply_transform(image, params)
        worst = max(worst, float(np.abs(out - expected).max()))
    assert worst <= 1e-3


@pytest.mark.interop
def test_live_random_parameters_follow_keras_distributions():
    keras = _keras()
    kwargs = dict(rotation_range=25, width_shift_range=4, height_shift_range=0.15,
                  shear_range=8, zoom_range=0.25, channel_shift_range=10,
                  brightness_range=[0.5, 1.5], horizontal_flip=True, vertical_flip=True)
    shape, n = (16, 24, 3), 3000
    np.random.seed(1)
    theirs = [keras.ImageDataGenerator(**kwargs).get_random_transform(shape) for _ in range(n)]
    minidl.random.seed(1)
    ours = [ImageDataGenerator(**kwargs).get_random_transform(shape) for _ in range(n)]
    for key in theirs[0]:
        a = np.array([d[key] for d in theirs], np.float64)
        b = np.array([d[key] for d in ours], np.float64)
        distinct = np.unique(np.concatenate([a, b]))
        if len(distinct) <= 12:
            histogram = {'values': distinct}
        else:
            histogram = {'edges': np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 9)}
        statistic, critical = _same_distribution(_counts(a, histogram), _counts(b, histogram))
        assert statistic < critical, key
