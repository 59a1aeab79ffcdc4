"""Initializers: fan counting, ranges, spread, and reproducibility under minidl.random.seed."""
import math

import numpy as np
import pytest

import minidl
from minidl import initializers

CONV = (3, 3, 64, 128)  # fan_in = 3*3*64 = 576, fan_out = 3*3*128 = 1152


@pytest.mark.parametrize('shape, fans', [
    ((), (1, 1)), ((7,), (7, 7)), ((784, 10), (784, 10)),
    ((5, 16, 32), (80, 160)), (CONV, (576, 1152))])
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans


@pytest.mark.parametrize('name, limit', [
    ('glorot_uniform', math.sqrt(6 / (576 + 1152))),
    ('he_uniform', math.sqrt(6 / 576)),
    ('lecun_uniform', math.sqrt(3 / 576))])
def test_uniform_variance_scaling_fills_its_range(name, limit):
    w = initializers.get(name)(CONV)
    assert w.shape == CONV and w.dtype == np.float32
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize('name, variance', [
    ('glorot_normal', 2 / (576 + 1152)), ('he_normal', 2 / 576), ('lecun_normal', 1 / 576)])
def test_truncated_normals_keep_the_target_variance(name, variance):
    w = initializers.get(name)(CONV)
    stddev = math.sqrt(variance)
    assert w.std() == pytest.approx(stddev, rel=0.02)
    assert np.abs(w).max() <= 2 * stddev / 0.87962566103423978 + 1e-7


def test_keras_defaults_for_random_uniform_and_normal():
    uniform = initializers.get('uniform')((10000,))
    assert -0.05 <= uniform.min() and uniform.max() < 0.05
    normal = initializers.get('normal')((10000,))
    assert normal.std() == pytest.approx(0.05, rel=0.05)


def test_constant_zeros_ones_and_dtype():
    np.testing.assert_array_equal(initializers.get('zeros')((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.get('ones')(4), np.ones(4))
    value = initializers.Constant(0.5)((3,), dtype='float64')
    assert value.dtype == np.float64 and (value == 0.5).all()


def test_seeding_minidl_makes_draws_reproducible():
    init = initializers.get('glorot_uniform')
    minidl.random.seed(7)
    first = init((4, 5))
    minidl.random.seed(7)
    np.testing.assert_array_equal(init((4, 5)), first)
    assert not np.array_equal(init((4, 5)), first)


def test_an_initializer_seed_fixes_its_values():
    a = initializers.HeNormal(seed=3)((6, 6))
    np.testing.assert_array_equal(initializers.HeNormal(seed=3)((6, 6)), a)


@pytest.mark.parametrize('name, cls', [
    ('glorot_uniform', initializers.GlorotUniform),
    ('GlorotUniform', initializers.GlorotUniform),
    ('he_normal', initializers.HeNormal),
    ('uniform', initializers.RandomUniform),
    ('random_normal', initializers.RandomNormal),
    ('truncated_normal', initializers.TruncatedNormal)])
def test_get_by_name(name, cls):
    assert type(initializers.get(name)) is cls


def test_get_passes_callables_through_and_rejects_unknown_names():
    def custom(shape, dtype='float32'):
        return np.full(shape, 3, dtype)
    assert initializers.get(custom) is custom
    assert initializers.get(None) is None
    with pytest.raises(ValueError, match='glorot_uniform'):
        initializers.get('xavier')
    with pytest.raises(TypeError):
        initializers.get(1.5)


def test_config_round_trip():
    init = initializers.RandomUniform(-0.1, 0.2, seed=4)
    assert init.get_config() == {'minval': -0.1, 'maxval': 0.2, 'seed': 4}
    clone = initializers.get({'class_name': 'RandomUniform', 'config': init.get_config()})
    np.testing.assert_array_equal(clone((3,)), init((3,)))
    assert initializers.GlorotUniform().get_config() == {'seed': None}


def test_invalid_arguments():
    with pytest.raises(ValueError, match='mode'):
        initializers.VarianceScaling(mode='fan_sum')
    with pytest.raises(ValueError, match='minval'):
        initializers.RandomUniform(1.0, -1.0)
    with pytest.raises(ValueError, match='negative'):
        initializers.Zeros()((2, -1))
