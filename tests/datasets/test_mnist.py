"""MNIST: the packaged copy loads as Keras's does, other sources are honoured, damage is caught."""
import gzip
import shutil

import numpy as np
import pytest

from minidl.datasets import mnist

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope='module')
def data():
    return mnist.load_data()


def test_shapes_dtypes_and_values(data):
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.max() == 255 and x_train.min() == 0
    assert x_train.flags.writeable


def test_class_counts(data):
    (_, y_train), (_, y_test) = data
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS


def copy_idx(tmp_path):
    folder = tmp_path / 'idx'
    shutil.copytree(mnist.PACKAGED, folder)
    return folder


def rewrite(file, change):
    """Recompress ``file`` after ``change(raw bytes) -> bytes``."""
    raw = gzip.decompress(file.read_bytes())
    file.write_bytes(gzip.compress(change(raw), compresslevel=1))


def test_path_to_an_npz_file(tmp_path, data):
    (x_train, y_train), (x_test, y_test) = data
    npz = tmp_path / 'mnist.npz'
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    (x2, y2), _ = mnist.load_data(path=npz)
    np.testing.assert_array_equal(x2, x_train)
    np.testing.assert_array_equal(y2, y_train)
    assert mnist._find_source(tmp_path) == npz  # a folder holding mnist.npz will do too


def test_cache_folder_comes_before_the_packaged_copy(empty_minidl_home, tmp_path):
    cache = empty_minidl_home / 'datasets' / 'mnist'
    shutil.copytree(mnist.PACKAGED, cache)
    rewrite(cache / 'train-labels-idx1-ubyte.gz', lambda raw: raw[:-1] + b'\x00')
    with pytest.raises(ValueError, match='checksum mismatch for y_train'):
        mnist.load_data()


def test_differently_compressed_copies_pass(tmp_path, data):
    folder = copy_idx(tmp_path)
    rewrite(folder / 't10k-labels-idx1-ubyte.gz', lambda raw: raw)
    _, (_, y_test) = mnist.load_data(path=folder)
    np.testing.assert_array_equal(y_test, data[1][1])


def test_checksum_mismatch_names_the_file(tmp_path):
    folder = copy_idx(tmp_path)
    rewrite(folder / 't10k-images-idx3-ubyte.gz', lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ValueError, match=r'checksum mismatch for x_test in .*t10k-images'):
        mnist.load_data(path=folder)


@pytest.mark.parametrize('change, message', [
    (lambda raw: raw[:-10], 'truncated: its header promises 60000 bytes'),
    (lambda raw: raw[:5], 'ends inside the 8-byte IDX header'),
    (lambda raw: b'\x00\x00\x08\x03' + raw[4:], 'bad IDX magic number 2051'),
    (lambda raw: raw + b'\x00', 'data beyond'),
    (lambda raw: raw[:4] + (10**9).to_bytes(4, 'big') + raw[8:],
     r'holds an array of shape \(1000000000,\), expected \(60000,\)')])
def test_malformed_idx_files(tmp_path, change, message):
    folder = copy_idx(tmp_path)
    rewrite(folder / 'train-labels-idx1-ubyte.gz', change)
    with pytest.raises(ValueError, match=message):
        mnist.load_data(path=folder)


def test_damaged_gzip_is_a_value_error(tmp_path):
    folder = copy_idx(tmp_path)
    file = folder / 'train-labels-idx1-ubyte.gz'
    file.write_bytes(file.read_bytes()[:1000])
    with pytest.raises(ValueError, match='train-labels-idx1-ubyte.gz is not a readable gzip'):
        mnist.load_data(path=folder)


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        mnist.load_data(path=tmp_path / 'nowhere')
    with pytest.raises(ValueError, match='holds neither mnist.npz'):
        mnist.load_data(path=tmp_path)
    junk = tmp_path / 'junk.npz'
    junk.write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='junk.npz is not a readable .npz'):
        mnist.load_data(path=junk)
    np.savez(junk, x_train=np.zeros(3))
    with pytest.raises(ValueError, match='lacks the array.*y_train, x_test, y_test'):
        mnist.load_data(path=junk)
    with pytest.raises(ValueError, match='an .npz file or a folder'):
        mnist.load_data(path=mnist.PACKAGED / 'train-labels-idx1-ubyte.gz')
