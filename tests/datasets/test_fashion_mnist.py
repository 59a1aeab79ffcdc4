"""Fashion-MNIST: the four gzipped IDX files Keras keeps, checked against Zalando's MD5s and
read as Keras reads them."""
import gzip

import numpy as np
import pytest

import synthetic
from minidl.datasets import fashion_mnist, files


def trust(monkeypatch, folder):
    for file, (array, ndim, _) in list(fashion_mnist.FILES.items()):
        monkeypatch.setitem(fashion_mnist.FILES, file,
                            (array, ndim, files.file_hash(folder / file, 'md5')))


def assert_loaded(got, want):
    (x_train, y_train), (x_test, y_test) = got
    for name, array in dict(x_train=x_train, y_train=y_train, x_test=x_test,
                            y_test=y_test).items():
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, want[name])


def test_path_and_keras_cache(tmp_path, monkeypatch):
    folder = tmp_path / 'keras_home' / 'datasets' / 'fashion-mnist'
    want = synthetic.write_fashion(folder)
    trust(monkeypatch, folder)
    assert_loaded(fashion_mnist.load_data(), want)
    assert_loaded(fashion_mnist.load_data(path=folder), want)
    with pytest.raises(FileNotFoundError, match='is not a folder'):
        fashion_mnist.load_data(path=folder / 'train-images-idx3-ubyte.gz')


def test_missing_file_names_it_its_md5_and_the_folders(empty_minidl_home):
    with pytest.raises(FileNotFoundError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert 'train-images-idx3-ubyte.gz not found' in message
    assert '8d4fb7e6c68d591d4c3dfef9ec88bf0d' in message
    assert 'tf-keras-datasets/train-images-idx3-ubyte.gz' in message
    assert str(empty_minidl_home / 'datasets' / 'fashion-mnist') in message


def test_zalando_hashes_are_checked(tmp_path):
    synthetic.write_fashion(tmp_path)
    with pytest.raises(ValueError, match=r'checksum mismatch .*train-images.*MD5 [0-9a-f]{32}, '
                                         r'expected 8d4fb7e6c68d591d4c3dfef9ec88bf0d'):
        fashion_mnist.load_data(path=tmp_path)


@pytest.mark.parametrize('file, array, message', [
    ('t10k-labels-idx1-ubyte.gz', np.zeros(5, np.uint8), r'test images are \(4, 28, 28\) for '
                                                         r'\(5,\) labels'),
    ('train-images-idx3-ubyte.gz', np.zeros((6, 28, 27), np.uint8), r'\(6, 28, 27\)'),
])
def test_images_and_labels_must_fit(tmp_path, monkeypatch, file, array, message):
    synthetic.write_fashion(tmp_path)
    (tmp_path / file).write_bytes(gzip.compress(synthetic.idx_bytes(array)))
    trust(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match=message):
        fashion_mnist.load_data(path=tmp_path)


def test_a_header_announcing_a_terabyte_costs_nothing(tmp_path, monkeypatch):
    synthetic.write_fashion(tmp_path)
    header = (2051).to_bytes(4, 'big') + b''.join(n.to_bytes(4, 'big')
                                                  for n in (2**31, 28, 28))
    (tmp_path / 'train-images-idx3-ubyte.gz').write_bytes(gzip.compress(header + b'\0' * 99))
    trust(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match='truncated: its header promises 1683627180032 bytes '
                                         'of data, it holds 99'):
        fashion_mnist.load_data(path=tmp_path)


@pytest.mark.interop
def test_keras_reads_the_same_files_live(tmp_path, monkeypatch):
    keras_fashion = pytest.importorskip('tf_keras.src.datasets.fashion_mnist')
    want = synthetic.write_fashion(tmp_path, n_train=9, n_test=7)
    trust(monkeypatch, tmp_path)
    monkeypatch.setattr(keras_fashion, 'get_file', lambda fname, **_: str(tmp_path / fname))
    (x_train, y_train), (x_test, y_test) = keras_fashion.load_data()
    assert_loaded(fashion_mnist.load_data(path=tmp_path),
                  dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test))
    np.testing.assert_array_equal(x_train, want['x_train'])
