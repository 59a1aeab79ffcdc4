"""Small files in the formats of the Keras datasets, for tests: CIFAR-10's batches (Python 2
pickles, as the dataset ships them), Fashion-MNIST's gzipped IDX files, imdb.npz and its word
index. Each writer returns what a faithful reader must give back."""
import gzip
import io
import json
import pickle
import struct
import tarfile

import numpy as np

CIFAR_BATCHES = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote it: bytes are Python 2 strings (BINSTRING),
    where Python 3's protocol 2 would call ``_codecs.encode``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_str2(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
        self.memoize(obj)
    dispatch[bytes] = save_str2


def python2_pickle(obj):
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def cifar_batch(rng, n, name):
    """``(pickle bytes, images (n, 32, 32, 3), labels (n, 1))`` of one batch."""
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    batch = {b'batch_label': name.encode(), b'labels': labels.tolist(),
             b'data': images.transpose(0, 3, 1, 2).reshape(n, 3072).copy(),
             b'filenames': [f'image_{i}.png'.encode() for i in range(n)]}
    return python2_pickle(batch), images, labels.astype(np.uint8).reshape(-1, 1)


def write_cifar(folder, seed=0, sizes=(3, 2, 4, 1, 2, 5)):
    """The ``cifar-10-batches-py`` folder inside ``folder``, with batches of ``sizes``; returns
    ``(batch folder, ((x_train, y_train), (x_test, y_test)))``."""
    rng = np.random.default_rng(seed)
    batches = folder / 'cifar-10-batches-py'
    batches.mkdir(parents=True)
    xs, ys = [], []
    for name, n in zip(CIFAR_BATCHES, sizes):
        data, x, y = cifar_batch(rng, n, name)
        (batches / name).write_bytes(data)
        xs.append(x)
        ys.append(y)
    (batches / 'batches.meta').write_bytes(python2_pickle({b'num_cases_per_batch': 10000}))
    train = np.concatenate(xs[:5]), np.concatenate(ys[:5])
    return batches, (train, (xs[5], ys[5]))


def tar_folder(folder, archive):
    """``archive`` (.tar.gz) holding ``folder`` under its own name."""
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def idx_bytes(array):
    """The IDX encoding of a uint8 ``array``."""
    header = struct.pack(f'>{1 + array.ndim}I', 0x0800 + array.ndim, *array.shape)
    return header + array.tobytes()


FASHION_FILES = {'x_train': 'train-images-idx3-ubyte.gz', 'y_train': 'train-labels-idx1-ubyte.gz',
                 'x_test': 't10k-images-idx3-ubyte.gz', 'y_test': 't10k-labels-idx1-ubyte.gz'}


def write_fashion(folder, seed=0, n_train=6, n_test=4):
    """The four gzipped IDX files in ``folder``; returns the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {'x_train': rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              'y_train': rng.integers(0, 10, n_train, dtype=np.uint8),
              'x_test': rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              'y_test': rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, file in FASHION_FILES.items():
        (folder / file).write_bytes(gzip.compress(idx_bytes(arrays[name])))
    return arrays


def imdb_reviews(rng, n, vocabulary=60, longest=30):
    """``n`` reviews (lists of word ranks 1..vocabulary, of 1..longest words) and labels."""
    reviews = np.empty(n, object)
    for i in range(n):
        reviews[i] = rng.integers(1, vocabulary + 1, rng.integers(1, longest + 1)).tolist()
    return reviews, rng.integers(0, 2, n)


def write_imdb(file, seed=0, n_train=40, n_test=30):
    """A small ``imdb.npz`` as ``np.savez`` writes it; returns its four arrays."""
    rng = np.random.default_rng(seed)
    (x_train, y_train), (x_test, y_test) = imdb_reviews(rng, n_train), imdb_reviews(rng, n_test)
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    np.savez(file, **arrays)
    return arrays


def write_word_index(file, words=('the', 'and', 'a', 'of')):
    file.write_text(json.dumps({word: rank for rank, word in enumerate(words, 1)}))
    return file
