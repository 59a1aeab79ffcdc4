"""IMDB movie reviews as word indices, offline: ``(x_train, y_train), (x_test, y_test) =
imdb.load_data(num_words=10000)``.

25,000 training and 25,000 test reviews labelled 1 (positive) or 0 (negative). Each review is a
list of word ranks (rank 1 is the most frequent word in the training reviews), shifted by
``index_from`` so that the small indices stay free: 0 for padding, ``start_char`` (1) to open a
review, ``oov_char`` (2) for a word cut by ``num_words`` or ``skip_top``. ``x_train`` and
``x_test`` are NumPy object arrays of such lists, the labels int arrays, as in Keras.

minidl never downloads. It reads Keras's ``imdb.npz`` (and ``imdb_word_index.json`` for
:func:`get_word_index`): ``path`` itself when that file exists, else ``path`` looked for in
``$MINIDL_HOME/datasets`` and Keras's ``datasets`` folder (``$KERAS_HOME``, ``~/.keras``),
checked against the hash Keras checks. The reviews are stored as pickled object arrays; they
are read without running pickle code (:mod:`minidl.datasets.pickled`).
"""
import json
from pathlib import Path

import numpy as np

from minidl.datasets import files
from minidl.datasets.npz import read_arrays

DATASET = 'IMDB'
URL = 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/'
HASHES = {'imdb.npz': '69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f',
          'imdb_word_index.json': 'bfafd718b763782e994055a2d397834f'}
ARRAYS = {'x_train': (None, object), 'y_train': (None, np.integer),
          'x_test': (None, object), 'y_test': (None, np.integer)}


def load_data(path='imdb.npz', num_words=None, skip_top=0, maxlen=None, seed=113,
              start_char=1, oov_char=2, index_from=3, cache_dir=None):
    """``((x_train, y_train), (x_test, y_test))`` filtered exactly as Keras filters them.

    In order: each split is shuffled by ``np.random.RandomState(seed)`` (the training split
    first, from the same generator); every word index is raised by ``index_from`` and, unless
    ``start_char`` is None, each review opens with ``start_char``; with ``maxlen``, reviews of
    ``maxlen`` or more indices (the start included) are dropped; then every index outside
    ``skip_top <= index < num_words`` becomes ``oov_char``, or is dropped when ``oov_char`` is
    None. ``num_words`` defaults to the largest index present, which, as in Keras, makes that
    one word out of vocabulary too; ``skip_top`` counts the shifted indices, so it can cut the
    start mark as well. Raises ValueError when ``maxlen`` leaves a split empty.
    """
    file = _find(path, cache_dir, 'imdb.npz')
    files.verify(file, HASHES['imdb.npz'], DATASET)
    arrays = read_arrays(file, ARRAYS, DATASET)
    rng = np.random.RandomState(seed)
    splits = []
    for split in ('train', 'test'):
        reviews, labels = arrays[f'x_{split}'], arrays[f'y_{split}']
        if reviews.ndim != 1 or labels.shape != reviews.shape:
            raise ValueError(f'{DATASET}: {file} holds x_{split} {reviews.shape} for y_{split} '
                             f'{labels.shape}, expected (N,) each')
        order = np.arange(len(reviews))
        rng.shuffle(order)
        words, lengths = _flatten(reviews[order], f'{DATASET}: x_{split} in {file}')
        words, lengths = _shift(words, lengths, start_char, index_from)
        keep = lengths < maxlen if maxlen else np.ones(len(lengths), bool)
        if not keep.all():
            words = words[np.repeat(keep, lengths)]
            lengths = lengths[keep]
        splits.append((words, lengths, labels[order][keep]))
    if maxlen and not all(len(lengths) for _, lengths, _ in splits):
        raise ValueError(f'After filtering for sequences shorter than maxlen={maxlen}, no '
                         f'sequence was kept. Increase maxlen.')
    if not num_words:
        num_words = max((words.max() for words, _, _ in splits if words.size), default=0)
    return tuple((_vocabulary(words, lengths, skip_top, num_words, oov_char), labels)
                 for words, lengths, labels in splits)


def get_word_index(path='imdb_word_index.json'):
    """``{word: rank}`` for the words of :func:`load_data` (rank 1 the most frequent; a review
    holds ``rank + index_from``), from Keras's ``imdb_word_index.json``."""
    file = _find(path, None, 'imdb_word_index.json')
    files.verify(file, HASHES['imdb_word_index.json'], DATASET)
    try:
        index = json.loads(file.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f'{DATASET}: {file} is not a JSON file ({exc})') from exc
    if not (isinstance(index, dict) and all(type(rank) is int for rank in index.values())):
        raise ValueError(f'{DATASET}: {file} is not a JSON object of word ranks')
    return index


def _find(path, cache_dir, name):
    """``path`` when it names a file, else the first ``folder / path`` that exists; ``name``
    is the file Keras downloads, which the error message describes."""
    given = Path(path).expanduser()
    if given.is_file():
        return given
    folders = files.search_folders(cache_dir)
    file = None if given.is_absolute() else files.first_existing([given], folders)
    if file is None:
        raise files.not_found(DATASET, str(path), URL + name, HASHES[name], folders)
    if not file.is_file():
        raise ValueError(f'{DATASET}: {file} is not a file')
    return file


def _flatten(reviews, where):
    """All the word indices of ``reviews`` (lists, or 1-D integer arrays) end to end, and
    each one's length."""
    if not all(type(review) is list or (isinstance(review, np.ndarray) and review.ndim == 1
                                        and review.dtype.kind in 'iu') for review in reviews):
        raise ValueError(f'{where} holds something other than lists of word indices')
    lengths = np.array([len(review) for review in reviews], np.int64)
    try:
        words = np.fromiter((word for review in reviews for word in review), np.int64,
                            count=int(lengths.sum()))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f'{where} holds something other than lists of word indices '
                         f'({exc})') from exc
    return words, lengths


def _shift(words, lengths, start_char, index_from):
    """Indices raised by ``index_from``, each review opened by ``start_char`` (not None)."""
    if index_from:
        words = words + index_from
    if start_char is not None:
        starts = np.cumsum(lengths) - lengths  # where each review begins
        words, lengths = np.insert(words, starts, start_char), lengths + 1
    return words, lengths


def _vocabulary(words, lengths, skip_top, num_words, oov_char):
    """The reviews as an object array of lists, indices outside ``[skip_top, num_words)``
    replaced by ``oov_char`` or, when it is None, dropped."""
    outside = (words < skip_top) | (words >= num_words)
    if oov_char is None:
        review = np.repeat(np.arange(len(lengths)), lengths)
        lengths = np.bincount(review[~outside], minlength=len(lengths))
        words = words[~outside]
    else:
        words = np.where(outside, oov_char, words)
    reviews = np.split(words, np.cumsum(lengths)[:-1]) if len(lengths) else []
    return np.array([review.tolist() for review in reviews], dtype=object)
