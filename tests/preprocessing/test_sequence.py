"""pad_sequences: Keras's answers on fixed cases (a fixture Keras wrote), Keras's live on drawn
ones, and the import path Keras code uses."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minidl.preprocessing import sequence
from minidl.preprocessing.sequence import pad_sequences

FIXTURES = Path(__file__).parent / 'fixtures'
_spec = importlib.util.spec_from_file_location('make_sequence', FIXTURES / 'make_sequence.py')
make_sequence = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_sequence)
CASES = json.loads((FIXTURES / 'pad_sequences_keras.json').read_text())


@pytest.mark.parametrize('case', CASES, ids=lambda c: f'{c["sequences"]}-{c["kwargs"]}'[:60])
def test_matches_keras(case):
    kwargs = dict(case['kwargs'])
    if kwargs.get('dtype') == 'object-type':
        kwargs['dtype'] = object
    sequences = make_sequence.sequences_of(case['sequences'])
    if 'error' in case:
        with pytest.raises(ValueError, match='pad_sequences: '):
            pad_sequences(sequences, **kwargs)
        return
    padded = pad_sequences(sequences, **kwargs)
    assert str(padded.dtype) == case['dtype'] and list(padded.shape) == case['shape']
    values = padded.astype(str) if padded.dtype.kind == 'S' else padded
    assert values.tolist() == case['values']


def test_the_keras_import_path():
    assert sequence.pad_sequences is pad_sequences
    from minidl.preprocessing.sequence import pad_sequences as again
    assert again is pad_sequences


@pytest.mark.parametrize('kwargs, message', [
    ({'padding': 'middle'}, 'padding must be "pre" or "post", got \'middle\''),
    ({'truncating': 'both'}, 'truncating must be "pre" or "post"'),
    ({'maxlen': -1}, 'maxlen must be >= 0'),
])
def test_bad_arguments_are_named_even_for_empty_sequences(kwargs, message):
    """Keras checks padding and truncating only when it meets a non-empty sequence."""
    with pytest.raises(ValueError, match=message):
        pad_sequences([[]], **kwargs)


def test_generators_and_any_object_spelling():
    with pytest.raises(ValueError, match='must be iterable with a length, got generator'):
        pad_sequences(review for review in [[1]])
    padded = pad_sequences([['a'], ['b', 'c']], dtype='object', value='')
    assert padded.tolist() == [['', 'a'], ['b', 'c']]  # Keras accepts only the type `object`


def test_maxlen_zero_gives_empty_rows():
    """Keras's truncating='pre' takes ``s[-0:]``, all of ``s``, and then fails to fit it."""
    assert pad_sequences([[1, 2], []], maxlen=0).shape == (2, 0)


def test_imdb_sized_input_is_quick():
    rng = np.random.default_rng(0)
    reviews = [rng.integers(1, 10000, n).tolist() for n in rng.integers(10, 1000, 2000)]
    padded = pad_sequences(reviews, maxlen=500)
    assert padded.shape == (2000, 500) and padded.dtype == np.int32
    np.testing.assert_array_equal(padded[0, -min(500, len(reviews[0])):], reviews[0][-500:])


sequences = st.lists(st.lists(st.integers(-50, 50), max_size=8), max_size=6)


@pytest.mark.interop
@settings(max_examples=150, deadline=None)
@given(sequences, st.one_of(st.none(), st.integers(0, 10)), st.sampled_from(['pre', 'post']),
       st.sampled_from(['pre', 'post']), st.sampled_from(['int32', 'float32', 'int8']),
       st.one_of(st.integers(-3, 3), st.floats(-2, 2, width=32)))
def test_matches_tf_keras_live(seqs, maxlen, padding, truncating, dtype, value):
    keras_sequence = pytest.importorskip('tf_keras.preprocessing.sequence')
    kwargs = dict(maxlen=maxlen, dtype=dtype, padding=padding, truncating=truncating,
                  value=value)
    try:
        want = keras_sequence.pad_sequences(seqs, **kwargs)
    except ValueError:
        if maxlen == 0 and truncating == 'pre' and any(seqs):
            assert pad_sequences(seqs, **kwargs).shape == (len(seqs), 0)
        else:
            with pytest.raises(ValueError):
                pad_sequences(seqs, **kwargs)
        return
    got = pad_sequences(seqs, **kwargs)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
