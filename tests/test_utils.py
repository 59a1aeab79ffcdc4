"""utils: one-hot labels, atomic writes, the cache folder, configs from signatures."""
import os
from pathlib import Path

import numpy as np
import pytest

from minidl import utils


def test_to_categorical_one_hot_rows():
    y = utils.to_categorical([0, 2, 1, 2])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.eye(3)[[0, 2, 1, 2]])


@pytest.mark.parametrize('shape, out_shape', [
    ((6,), (6, 10)), ((6, 1), (6, 10)), ((2, 3), (2, 3, 10)), ((2, 3, 1), (2, 3, 10))])
def test_to_categorical_shapes_follow_keras(shape, out_shape):
    y = np.arange(6).reshape(shape)
    one_hot = utils.to_categorical(y, num_classes=10)
    assert one_hot.shape == out_shape
    np.testing.assert_array_equal(one_hot.argmax(-1), y.reshape(out_shape[:-1]))


def test_to_categorical_num_classes_and_dtype():
    y = utils.to_categorical(np.array([1, 0], dtype=np.uint8), num_classes=4, dtype='float64')
    assert y.shape == (2, 4) and y.dtype == np.float64
    assert utils.to_categorical(np.array([1.0, 3.0])).shape == (2, 4)


@pytest.mark.parametrize('y, num_classes, message', [
    ([0, -1], None, '>= 0'), ([0, 3], 3, 'label 3 is out of range'),
    ([0.5], None, 'whole numbers'), ([], None, 'empty')])
def test_to_categorical_rejects_bad_labels(y, num_classes, message):
    with pytest.raises(ValueError, match=message):
        utils.to_categorical(y, num_classes)


def test_to_categorical_rejects_non_numbers():
    with pytest.raises(TypeError, match='integers'):
        utils.to_categorical(['cat', 'dog'])


def test_to_categorical_on_the_device(xp):
    y = utils.to_categorical(xp.asarray([2, 0]), 3)
    assert type(y) is type(xp.zeros(1))
    np.testing.assert_array_equal(np.asarray(y.tolist()), [[0, 0, 1], [1, 0, 0]])


def test_atomic_write_replaces_the_file_on_success(tmp_path):
    target = tmp_path / 'weights.npz'
    target.write_text('old')
    with utils.atomic_write(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith('.npz')
        np.savez(tmp, w=np.arange(3))
        assert target.read_text() == 'old'  # untouched until the block succeeds
    np.testing.assert_array_equal(np.load(target)['w'], np.arange(3))
    assert os.listdir(tmp_path) == ['weights.npz']
    assert target.stat().st_mode & 0o777 == 0o666 & ~utils._umask()


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / 'model.h5'
    target.write_text('good')
    with pytest.raises(RuntimeError):
        with utils.atomic_write(target) as tmp:
            with open(tmp, 'w') as f:
                f.write('half')
            raise RuntimeError('disk full')
    assert target.read_text() == 'good'
    assert os.listdir(tmp_path) == ['model.h5']


def test_cache_dir_follows_minidl_home(monkeypatch, tmp_path):
    monkeypatch.setenv('MINIDL_HOME', str(tmp_path))
    assert utils.cache_dir('datasets', 'mnist') == tmp_path / 'datasets' / 'mnist'
    monkeypatch.delenv('MINIDL_HOME')
    assert utils.cache_dir() == Path.home() / '.minidl'


def test_signature_config():
    class Thing:
        def __init__(self, a, b=2, *args, **kwargs):
            self.a, self.b = a, b
    assert utils.signature_config(Thing(1)) == {'a': 1, 'b': 2}


def test_np_utils_holds_to_categorical_where_keras_2_lessons_import_it():
    from minidl.utils import np_utils
    np.testing.assert_array_equal(np_utils.to_categorical([1, 0], 2), [[0, 1], [1, 0]])
