"""MNIST-1D: generated offline, cached, and the same on every load."""
import numpy as np
import pytest

pytest.importorskip('mnist1d')

from minidl.datasets import mnist1d  # noqa: E402


def test_generates_caches_and_reloads(empty_minidl_home):
    state = np.random.get_state()[1].copy()
    (x_train, y_train), (x_test, y_test) = mnist1d.load_data()
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert set(np.unique(y_train)) == set(range(10))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched

    cache = empty_minidl_home / 'datasets' / 'mnist1d' / 'mnist1d.npz'
    assert cache.is_file()
    (x_again, _), (_, y_test_again) = mnist1d.load_data()
    np.testing.assert_array_equal(x_again, x_train)
    np.testing.assert_array_equal(y_test_again, y_test)

    cache.write_bytes(b'garbage')  # a damaged cache is ignored (and then regenerated)
    with pytest.warns(RuntimeWarning, match='unreadable cache'):
        assert mnist1d._read_cache(cache) is None
