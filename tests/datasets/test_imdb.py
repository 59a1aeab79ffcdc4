"""IMDB: Keras's imdb.npz read without running pickle code, filtered exactly as Keras filters it
(against answers Keras gave, and live against tf-keras), and found or refused as documented."""
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import synthetic
from minidl.datasets import files, imdb

FIXTURES = Path(__file__).parent / 'fixtures'
SMALL = FIXTURES / 'imdb_small.npz'
KERAS_CASES = json.loads((FIXTURES / 'imdb_keras.json').read_text())


@pytest.fixture
def trust(monkeypatch):
    """``trust(file)``: accept ``file``'s hash as imdb.npz's (or the word index's)."""
    def trust(file, name='imdb.npz'):
        algorithm = 'sha256' if name == 'imdb.npz' else 'md5'
        monkeypatch.setitem(imdb.HASHES, name, files.file_hash(file, algorithm))
        return file
    return trust


def as_lists(reviews):
    return [list(review) for review in reviews]


@pytest.mark.parametrize('case', KERAS_CASES, ids=lambda case: json.dumps(case['kwargs']))
def test_filtering_matches_keras(case, trust):
    trust(SMALL)
    if 'error' in case:
        with pytest.raises(ValueError, match=case['error'].split(': ', 1)[1][:40]):
            imdb.load_data(path=SMALL, **case['kwargs'])
        return
    (x_train, y_train), (x_test, y_test) = imdb.load_data(path=SMALL, **case['kwargs'])
    assert x_train.dtype == object == x_test.dtype
    assert [list(x_train.shape), list(x_test.shape)] == case['shapes']
    assert as_lists(x_train) == case['x_train'] and as_lists(x_test) == case['x_test']
    assert y_train.tolist() == case['y_train'] and y_test.tolist() == case['y_test']
    assert all(type(word) is int for review in x_train for word in review)


def test_found_in_the_keras_cache_and_by_name(tmp_path, monkeypatch, trust):
    keras_datasets = tmp_path / 'keras_home' / 'datasets'
    keras_datasets.mkdir(parents=True)
    want = synthetic.write_imdb(keras_datasets / 'imdb.npz')
    trust(keras_datasets / 'imdb.npz')
    (x_train, _), (_, y_test) = imdb.load_data(seed=None, start_char=None, index_from=0,
                                                   num_words=1000)
    assert sorted(map(tuple, x_train)) == sorted(map(tuple, want['x_train']))
    assert sorted(y_test) == sorted(want['y_test'])
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'mine.npz').write_bytes((keras_datasets / 'imdb.npz').read_bytes())
    (x2, _), _ = imdb.load_data(path='mine.npz')  # a file in the working folder comes first
    (x3, _), _ = imdb.load_data()
    assert as_lists(x2) == as_lists(x3)


def test_a_python2_pickle_reads_too(tmp_path, trust):
    """The reviews pickled as Python 2's numpy wrote them: protocol 2 and byte strings."""
    arrays = synthetic.write_imdb(tmp_path / 'plain.npz')
    file = tmp_path / 'imdb.npz'
    with zipfile.ZipFile(file, 'w') as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                buffer, np.lib.format.header_data_from_array_1_0(array))
            if array.dtype == object:
                buffer.write(synthetic.python2_pickle(array))
            else:
                buffer.write(array.tobytes())
            archive.writestr(f'{name}.npy', buffer.getvalue())
    trust(file)
    kwargs = dict(seed=3, num_words=30, maxlen=25)
    (x, y), (xt, yt) = imdb.load_data(path=file, **kwargs)
    (x2, y2), (xt2, yt2) = imdb.load_data(path=trust(tmp_path / 'plain.npz'), **kwargs)
    assert as_lists(x) == as_lists(x2) and as_lists(xt) == as_lists(xt2)
    np.testing.assert_array_equal(y, y2)


def test_missing_file_says_what_to_fetch_and_where(empty_minidl_home):
    with pytest.raises(FileNotFoundError) as info:
        imdb.load_data()
    message = str(info.value)
    assert 'imdb.npz not found' in message and imdb.HASHES['imdb.npz'] in message
    assert 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz' in message
    assert str(empty_minidl_home / 'datasets') in message and 'keras_home' in message
    with pytest.raises(FileNotFoundError, match='bfafd718b763782e994055a2d397834f'):
        imdb.get_word_index()


def test_the_known_hash_is_checked(tmp_path):
    synthetic.write_imdb(tmp_path / 'imdb.npz')
    with pytest.raises(ValueError, match=r'checksum mismatch for .*imdb.npz: SHA-256 [0-9a-f]{64}'
                                         r', expected 69664113be'):
        imdb.load_data(path=tmp_path / 'imdb.npz')


def test_word_index(tmp_path, trust):
    file = trust(synthetic.write_word_index(tmp_path / 'imdb_word_index.json'),
                 'imdb_word_index.json')
    assert imdb.get_word_index(path=file) == {'the': 1, 'and': 2, 'a': 3, 'of': 4}
    file.write_text('["the", "and"]')
    trust(file, 'imdb_word_index.json')
    with pytest.raises(ValueError, match='not a JSON object of word ranks'):
        imdb.get_word_index(path=file)


def npz(file, **members):
    """An .npz of raw ``{name: .npy bytes}`` members."""
    with zipfile.ZipFile(file, 'w') as archive:
        for name, data in members.items():
            archive.writestr(f'{name}.npy', data)
    return file


def npy_of_pickle(data, shape=(2,)):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {'descr': '|O', 'fortran_order': False, 'shape': shape})
    return buffer.getvalue() + data


def plain_npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class Shell:
    def __reduce__(self):
        return (print, ('pwned',))


@pytest.mark.parametrize('reviews, message', [
    (npy_of_pickle(b'cos\nsystem\n(S"echo pwned"\ntR.'), r'pickle names os.system'),
    (npy_of_pickle(b'\x80\x02' + b'c__main__\nShell\n)\x81.'), r'pickle names __main__.Shell'),
    (npy_of_pickle(b'\x80\x02]q\x00(K\x01K\x02e.'), 'does not hold the object array'),
    (npy_of_pickle(b'\x80\x02]q\x00(K\x01'), 'is not a pickle of NumPy arrays'),
    (plain_npy(np.zeros(2)), r'x_train in .* is float64 \(2,\), expected object'),
    (plain_npy(np.array([[1, 2], 'no list'], dtype=object)), 'other than lists of word'),
])
def test_hostile_or_damaged_reviews_are_refused(tmp_path, trust, reviews, message, capsys):
    file = npz(tmp_path / 'imdb.npz', x_train=reviews, y_train=plain_npy(np.arange(2)),
               x_test=plain_npy(np.array([[1], [2, 3]], dtype=object)),
               y_test=plain_npy(np.arange(2)))
    trust(file)
    with pytest.raises(ValueError, match=message):
        imdb.load_data(path=file)
    assert 'pwned' not in capsys.readouterr().out


def test_labels_must_match_reviews(tmp_path, trust):
    file = npz(tmp_path / 'imdb.npz', x_train=plain_npy(np.array([[1], [2, 3]], dtype=object)),
               y_train=plain_npy(np.arange(3)),
               x_test=plain_npy(np.array([[1], [2, 3]], dtype=object)),
               y_test=plain_npy(np.arange(2)))
    with pytest.raises(ValueError, match=r'x_train \(2,\) for y_train \(3,\)'):
        imdb.load_data(path=trust(file))


@pytest.mark.interop
@settings(max_examples=25, deadline=None)
@given(num_words=st.one_of(st.none(), st.integers(0, 70)), skip_top=st.integers(0, 8),
       maxlen=st.one_of(st.none(), st.integers(0, 40)), seed=st.integers(0, 2**31 - 1),
       start_char=st.one_of(st.none(), st.integers(0, 5)),
       oov_char=st.one_of(st.none(), st.integers(0, 5)), index_from=st.integers(0, 6))
def test_filtering_matches_tf_keras_live(tmp_path_factory, num_words, skip_top, maxlen, seed,
                                         start_char, oov_char, index_from):
    keras_imdb = pytest.importorskip('tf_keras.src.datasets.imdb')
    file = tmp_path_factory.getbasetemp() / 'imdb_live.npz'
    if not file.exists():
        synthetic.write_imdb(file, seed=5)
    kwargs = dict(num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed,
                  start_char=start_char, oov_char=oov_char, index_from=index_from)
    if start_char is None and not index_from:
        kwargs['index_from'] = 1  # tf-keras adds the two object arrays here (Keras 3 does not)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras_imdb, 'get_file', lambda fname, **_: fname)
        patch.setitem(imdb.HASHES, 'imdb.npz', files.file_hash(file, 'sha256'))
        try:
            want = keras_imdb.load_data(path=str(file), **kwargs)
        except ValueError as exc:
            with pytest.raises(ValueError, match='no sequence was kept'):
                imdb.load_data(path=file, **kwargs)
            assert 'no sequence was kept' in str(exc)
            return
        got = imdb.load_data(path=file, **kwargs)
    for (x, y), (x_want, y_want) in zip(got, want):
        assert as_lists(x) == as_lists(x_want) and x.shape == x_want.shape
        np.testing.assert_array_equal(y, y_want)
        assert y.dtype == y_want.dtype
