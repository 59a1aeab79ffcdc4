"""CIFAR-10: Keras's cached batches (the unpacked folder, or the archive as each Keras names
it) read without running pickle code, checked against their hashes, returned as Keras does."""
import pickle
import shutil

import numpy as np
import pytest

import synthetic
from minidl.datasets import cifar10, files


@pytest.fixture
def trusted(tmp_path, monkeypatch):
    """A synthetic ``cifar-10-batches-py`` folder (and its archive) whose hashes are trusted;
    returns ``(folder, archive, expected data)``."""
    folder, want = synthetic.write_cifar(tmp_path / 'made')
    for name in synthetic.CIFAR_BATCHES:
        monkeypatch.setitem(cifar10.HASHES, name, files.file_hash(folder / name, 'md5'))
    archive = synthetic.tar_folder(folder, tmp_path / 'made' / 'cifar-10-python.tar.gz')
    monkeypatch.setitem(cifar10.HASHES, 'archive', files.file_hash(archive, 'sha256'))
    return folder, archive, want


def assert_loaded(got, want):
    for (x, y), (x_want, y_want) in zip(got, want):
        assert x.dtype == y.dtype == np.uint8 and x.flags.c_contiguous
        assert x.shape[1:] == (32, 32, 3) and y.shape == (len(x), 1)
        np.testing.assert_array_equal(x, x_want)
        np.testing.assert_array_equal(y, y_want)


def test_the_folder_the_archive_and_a_folder_holding_either(trusted, tmp_path):
    folder, archive, want = trusted
    assert_loaded(cifar10.load_data(path=folder), want)
    assert_loaded(cifar10.load_data(path=archive), want)
    assert_loaded(cifar10.load_data(path=folder.parent), want)  # holds both: the folder wins
    only_archive = tmp_path / 'only_archive'
    only_archive.mkdir()
    shutil.copy(archive, only_archive / 'cifar-10-batches-py.tar.gz')
    assert_loaded(cifar10.load_data(path=only_archive), want)


@pytest.mark.parametrize('layout', ['tf-keras folder', 'tf-keras archive', 'keras 3 folder',
                                    'keras 3 archive'])
def test_where_each_keras_keeps_it(trusted, tmp_path, layout):
    folder, archive, want = trusted
    datasets = tmp_path / 'keras_home' / 'datasets'
    datasets.mkdir(parents=True)
    {'tf-keras folder': lambda: shutil.copytree(folder, datasets / 'cifar-10-batches-py'),
     'tf-keras archive': lambda: shutil.copy(archive, datasets / 'cifar-10-batches-py.tar.gz'),
     'keras 3 folder': lambda: shutil.copytree(
         folder, datasets / 'cifar-10-batches-py-target' / 'cifar-10-batches-py'),
     'keras 3 archive': lambda: shutil.copy(
         archive, datasets / 'cifar-10-batches-py-target_archive')}[layout]()
    assert_loaded(cifar10.load_data(), want)


def test_minidl_home_and_cache_dir(trusted, empty_minidl_home, tmp_path):
    folder, _, want = trusted
    shutil.copytree(folder, empty_minidl_home / 'datasets' / 'cifar-10-batches-py')
    assert_loaded(cifar10.load_data(), want)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'elsewhere' / 'datasets')):
        cifar10.load_data(cache_dir=tmp_path / 'elsewhere')


def test_missing_data_says_what_to_fetch_and_where(empty_minidl_home):
    with pytest.raises(FileNotFoundError) as info:
        cifar10.load_data()
    message = str(info.value)
    assert 'cifar-10-python.tar.gz (or the cifar-10-batches-py folder' in message
    assert cifar10.URL in message and cifar10.HASHES['archive'] in message
    assert str(empty_minidl_home / 'datasets') in message and 'never downloads' in message


def test_the_published_hashes_are_checked(tmp_path):
    folder, _ = synthetic.write_cifar(tmp_path)
    with pytest.raises(ValueError, match=r'checksum mismatch for .*data_batch_1: MD5 [0-9a-f]{32},'
                                         r' expected c99cafc152244af753f735de768cd75f'):
        cifar10.load_data(path=folder)
    archive = synthetic.tar_folder(folder, tmp_path / 'cifar-10-python.tar.gz')
    with pytest.raises(ValueError, match='expected 6d958be074577803d12ecdefd02955f39262c83c1'):
        cifar10.load_data(path=archive)


def test_keras_python2_pickle_reader_agrees(trusted):
    """What Keras's reader (``pickle.load(f, encoding='bytes')``, then reshaped and transposed
    as ``cifar10.load_data`` does) makes of the same batch."""
    folder, _, _ = trusted
    batch = pickle.loads((folder / 'test_batch').read_bytes(), encoding='bytes')
    keras_images = batch[b'data'].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    _, (x_test, y_test) = cifar10.load_data(path=folder)
    np.testing.assert_array_equal(x_test, keras_images)
    np.testing.assert_array_equal(y_test[:, 0], batch[b'labels'])


def rewrite_batch(folder, monkeypatch, name, batch=None, raw=None):
    """Replace batch ``name`` with ``batch`` pickled (or the ``raw`` bytes), trusted."""
    (folder / name).write_bytes(raw if raw is not None else synthetic.python2_pickle(batch))
    monkeypatch.setitem(cifar10.HASHES, name, files.file_hash(folder / name, 'md5'))


class Shell:
    def __reduce__(self):
        return (print, ('pwned',))


@pytest.mark.parametrize('batch, raw, message', [
    (None, pickle.dumps(Shell()), 'pickle names builtins.print'),
    (None, b'cos\nsystem\n(S"echo pwned"\ntR.', 'pickle names os.system'),
    (None, b'\x80\x02}q\x00(', 'is not a pickle of NumPy arrays'),
    ([1, 2], None, r'holds no uint8 \(N, 3072\) array'),
    ({b'data': np.zeros((2, 3072), np.float32), b'labels': [0, 1]}, None, 'no uint8'),
    ({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0]}, None, 'no list of 2 classes'),
    ({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0, 10]}, None, 'classes 0..9'),
])
def test_hostile_or_damaged_batches_are_refused(trusted, monkeypatch, capsys, batch, raw,
                                                 message):
    folder, _, _ = trusted
    rewrite_batch(folder, monkeypatch, 'data_batch_3', batch, raw)
    with pytest.raises(ValueError, match=f'CIFAR-10: .*data_batch_3.*{message}'):
        cifar10.load_data(path=folder)
    assert 'pwned' not in capsys.readouterr().out


def test_an_array_state_that_lies_about_its_size_is_refused(trusted, monkeypatch):
    folder, _, _ = trusted
    raw = synthetic.python2_pickle({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0, 1]})
    forged = raw.replace(b'K\x02M\x00\x0c\x86', b'J\x00\xca\x9a;M\x00\x0c\x86')  # 10**9 rows
    assert forged != raw
    rewrite_batch(folder, monkeypatch, 'test_batch', raw=forged)
    with pytest.raises(ValueError, match=r'uint8 array of shape \(1000000000, 3072\) does not '
                                         r'hold its 3072000000000 bytes'):
        cifar10.load_data(path=folder)


def test_damaged_archive_and_missing_batch(trusted, monkeypatch, tmp_path):
    folder, archive, _ = trusted
    damaged = tmp_path / 'damaged.tar.gz'
    damaged.write_bytes(archive.read_bytes()[:-200])
    monkeypatch.setitem(cifar10.HASHES, 'archive', files.file_hash(damaged, 'sha256'))
    with pytest.raises(ValueError, match='damaged.tar.gz is not a readable .tar.gz'):
        cifar10.load_data(path=damaged)
    (folder / 'data_batch_2').unlink()
    with pytest.raises(ValueError, match='lacks the batch data_batch_2'):
        cifar10.load_data(path=folder)


@pytest.mark.interop
@pytest.mark.parametrize('module', ['tf_keras.src.datasets.cifar', 'keras.src.datasets.cifar'])
def test_keras_load_batch_agrees_live(trusted, module):
    """Keras's own ``load_batch`` on each synthetic batch, transposed as its ``load_data``
    does (which itself needs batches of exactly 10000 images)."""
    keras_cifar = pytest.importorskip(module)
    folder, _, _ = trusted
    (x_train, y_train), (x_test, y_test) = cifar10.load_data(path=folder)
    images, labels = zip(*(keras_cifar.load_batch(str(folder / name))
                           for name in synthetic.CIFAR_BATCHES))
    np.testing.assert_array_equal(x_train, np.concatenate(images[:5]).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(y_train[:, 0], np.concatenate(labels[:5]))
    np.testing.assert_array_equal(x_test, images[5].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(y_test[:, 0], labels[5])
