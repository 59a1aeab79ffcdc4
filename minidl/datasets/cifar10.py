"""CIFAR-10, offline: ``(x_train, y_train), (x_test, y_test) = cifar10.load_data()``.

Returns what Keras returns: uint8 images ``(50000, 32, 32, 3)`` and ``(10000, 32, 32, 3)``,
channels-last, and uint8 labels ``(50000, 1)`` and ``(10000, 1)`` with classes 0..9 (airplane,
automobile, bird, cat, deer, dog, frog, horse, ship, truck).

minidl never downloads. It reads the copy Keras keeps, or the one a user drops in:

- the folder ``cifar-10-batches-py`` (``data_batch_1`` .. ``data_batch_5``, ``test_batch``),
  as tf-keras unpacks it (Keras 3 unpacks it inside ``cifar-10-batches-py-target``); each
  batch is checked against its published MD5;
- or the archive itself, ``cifar-10-python.tar.gz`` (``cifar-10-batches-py.tar.gz`` as
  tf-keras saves it, ``cifar-10-batches-py-target_archive`` as Keras 3 does), checked against
  the SHA-256 Keras checks and read without unpacking it;

given as ``path=`` (the folder, the archive, or a folder holding either), else looked for in
``$MINIDL_HOME/datasets`` and Keras's ``datasets`` folder (``$KERAS_HOME``, ``~/.keras``). The
batches are pickles: they are read by a reader that builds arrays and plain data and runs no
pickle code (:mod:`minidl.datasets.pickled`).
"""
import tarfile
import zlib
from pathlib import Path

import numpy as np

from minidl.datasets import files, pickled

DATASET = 'CIFAR-10'
URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
FOLDER = 'cifar-10-batches-py'
FOLDERS = (FOLDER, f'{FOLDER}-target/{FOLDER}')
ARCHIVES = ('cifar-10-python.tar.gz', f'{FOLDER}.tar.gz', f'{FOLDER}-target_archive')
TRAIN = tuple(f'data_batch_{i}' for i in range(1, 6))
TEST = 'test_batch'
# SHA-256 of the archive (Keras's), MD5 of each batch (the dataset's authors' and torchvision's)
HASHES = {'archive': '6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce',
          'data_batch_1': 'c99cafc152244af753f735de768cd75f',
          'data_batch_2': 'd4bba439e000b95fd0a9bffe97cbabec',
          'data_batch_3': '54ebc095f3ab1f0389bbae665268c751',
          'data_batch_4': '634d18415352ddfa80567beed471001a',
          'data_batch_5': '482c414d41f54cd18b22e5b47cb7c3cb',
          'test_batch': '40351d587109b95175f43aff81a1287e'}


def load_data(path=None, cache_dir=None):
    """``((x_train, y_train), (x_test, y_test))`` as uint8 NumPy arrays (see the module doc).

    ``path``: the ``cifar-10-batches-py`` folder, the archive, or a folder holding either;
    ``cache_dir``: look in ``cache_dir/datasets`` instead of the default folders, as Keras's
    argument does. Raises FileNotFoundError when no copy is found and ValueError when a file is
    not intact CIFAR-10.
    """
    source = _find_source(path, cache_dir)
    batches = _read_archive(source) if source.is_file() else {
        name: _read_batch_file(source / name) for name in TRAIN + (TEST,)}
    x_train = np.concatenate([batches[name][0] for name in TRAIN])
    y_train = np.concatenate([batches[name][1] for name in TRAIN])
    x_test, y_test = batches[TEST]
    return (x_train, y_train), (x_test, y_test)


def _find_source(path, cache_dir):
    """The batch folder or the archive to read."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f'{DATASET}: {path} does not exist')
        if path.is_file() or (path / TRAIN[0]).is_file():
            return path
        folders = [path]
    else:
        folders = files.search_folders(cache_dir)
    source = files.first_existing(FOLDERS, folders) or files.first_existing(ARCHIVES, folders)
    if source is None:
        raise files.not_found(DATASET, f'{ARCHIVES[0]} (or the {FOLDER} folder it unpacks to)',
                              URL, HASHES['archive'], folders)
    return source


def _read_batch_file(file):
    """``(images, labels)`` of the batch pickle ``file``, once its MD5 is the published one."""
    if not file.is_file():
        raise ValueError(f'{DATASET}: {file.parent} lacks the batch {file.name}')
    files.verify(file, HASHES[file.name], DATASET)
    return _batch(file.read_bytes(), file)


def _read_archive(file):
    """``{batch name: (images, labels)}`` read straight out of the verified archive."""
    files.verify(file, HASHES['archive'], DATASET)
    batches = {}
    try:
        with tarfile.open(file, 'r:gz') as archive:
            for name in TRAIN + (TEST,):
                try:
                    member = archive.getmember(f'{FOLDER}/{name}')
                except KeyError:
                    raise ValueError(f'{DATASET}: {file} lacks {FOLDER}/{name}') from None
                if not member.isfile():
                    raise ValueError(f'{DATASET}: {FOLDER}/{name} in {file} is not a file')
                with archive.extractfile(member) as f:
                    batches[name] = _batch(bytes(files.read_upto(f, member.size)),
                                           f'{FOLDER}/{name} in {file}')
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise ValueError(f'{DATASET}: {file} is not a readable .tar.gz archive ({exc})') from exc
    return batches


def _batch(data, where):
    """``(images (N, 32, 32, 3), labels (N, 1))`` from one batch's pickled dict, whose
    ``b'data'`` is a uint8 ``(N, 3072)`` array (each row the red, green then blue 32x32 plane)
    and ``b'labels'`` a list of N classes."""
    batch = pickled.load(data, f'{DATASET}: {where}')
    images, labels = (batch.get(key) if isinstance(batch, dict) else None
                      for key in (b'data', b'labels'))
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and
            images.ndim == 2 and images.shape[1] == 3 * 32 * 32):
        raise ValueError(f'{DATASET}: {where} holds no uint8 (N, 3072) array under b"data"')
    if not (type(labels) is list and len(labels) == len(images) and
            all(type(label) is int and 0 <= label < 10 for label in labels)):
        raise ValueError(f'{DATASET}: {where} holds no list of {len(images)} classes 0..9 '
                         f'under b"labels"')
    images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.array(labels, np.uint8).reshape(-1, 1)
