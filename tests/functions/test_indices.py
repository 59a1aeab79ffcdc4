"""Class labels and embedding ids are checked once per batch, before any kernel reads them: on
every kernel set, a bad index is a ValueError naming it, never a number read from another row."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import minidl
import minidl.functions as F
from minidl import layers, losses, metrics

BAD_INDEX = r'(is out of range for \d+ (classes|rows)|is not a whole number)'
SPARSE = losses.get('sparse_categorical_crossentropy')


def sparse_label_paths(logits, labels):
    """Every way a sparse label reaches an index: fused kernel, probabilities, metrics."""
    probs = F.softmax(minidl.Tensor(logits)).data
    return [lambda: F.softmax_cross_entropy(minidl.Tensor(logits), labels),
            lambda: SPARSE.on_logits(labels, minidl.Tensor(logits)),
            lambda: SPARSE(labels, minidl.Tensor(probs)),
            lambda: metrics.sparse_categorical_accuracy(labels, probs),
            lambda: metrics.sparse_top_k_categorical_accuracy(labels, probs, k=1)]


@pytest.mark.parametrize('label, problem', [
    (3, 'label 3 at index 1 of the batch is out of range for 3 classes; valid labels are 0..2'),
    (10**6, 'label 1000000 at index 1 of the batch is out of range for 3 classes'),
    (-1, 'label -1 at index 1 of the batch is out of range'),
    (0.5, 'label 0.5 at index 1 of the batch is not a whole number'),
    (np.nan, 'label nan at index 1 of the batch is not a whole number')])
def test_a_bad_label_is_refused_on_every_path(cpu_kernels, label, problem):
    logits = np.random.default_rng(0).standard_normal((4, 3))
    labels = np.array([0, label, 2, 1], dtype=np.float64 if isinstance(label, float) else None)
    for path in sparse_label_paths(logits, labels):
        with pytest.raises(ValueError, match=problem):
            path()


def test_whole_float_labels_and_column_labels_equal_integer_ones(cpu_kernels):
    logits = minidl.Tensor(np.random.default_rng(1).standard_normal((4, 3)))
    want = F.softmax_cross_entropy(logits, np.array([0, 2, 1, 1])).item()
    assert SPARSE.on_logits(np.array([0.0, 2.0, 1.0, 1.0]), logits).item() == want
    assert SPARSE.on_logits(np.array([[0], [2], [1], [1]]), logits).item() == want


@pytest.mark.parametrize('labels, message', [
    (np.array(['cat', 'dog', 'cat', 'dog']), 'labels must be integers, got an array of dtype <U3'),
    (np.zeros((4, 3), int), r'class labels must have shape \(4,\) or \(4, 1\) for predictions '
                            r'of shape \(4, 3\), got \(4, 3\)'),
    (np.zeros(5, int), r'got \(5,\)')])
def test_labels_of_the_wrong_kind_or_shape_are_named(labels, message):
    logits = minidl.Tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=f'sparse_categorical_crossentropy: .*{message}'):
        SPARSE.on_logits(labels, logits)


@st.composite
def batch_with_a_bad_label(draw):
    """(logits (N, K), labels (N,)) where one label is negative, >= K, huge or not whole."""
    n, k = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    labels = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), np.float64)
    bad = draw(st.one_of(st.integers(-2**52, -1), st.integers(k, 2**52),
                         st.floats(-1e300, 1e300).filter(lambda v: not v.is_integer()),
                         st.sampled_from([np.nan, np.inf, -np.inf])))
    labels[draw(st.integers(0, n - 1))] = bad
    integer = isinstance(bad, int)
    return np.zeros((n, k)), labels.astype(np.int64) if integer else labels


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch_with_a_bad_label())
def test_property_a_bad_label_always_raises_never_returns(cpu_kernels, batch):
    logits, labels = batch
    for path in sparse_label_paths(logits, labels):
        with pytest.raises(ValueError, match=BAD_INDEX):
            path()


@st.composite
def ids_with_a_bad_one(draw):
    """(vocabulary size V, ids of shape (N, steps)) where one id is outside 0..V-1 or not
    whole."""
    vocab, n, steps = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ids = np.array(draw(st.lists(st.integers(0, vocab - 1), min_size=n * steps,
                                 max_size=n * steps)), np.float64).reshape(n, steps)
    bad = draw(st.one_of(st.integers(-2**52, -1), st.integers(vocab, 2**52),
                         st.floats(-1e300, 1e300).filter(lambda v: not v.is_integer()),
                         st.sampled_from([np.nan, np.inf])))
    ids[draw(st.integers(0, n - 1)), draw(st.integers(0, steps - 1))] = bad
    return vocab, ids.astype(np.int64) if isinstance(bad, int) else ids


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids_with_a_bad_one())
def test_property_a_bad_embedding_id_always_raises(cpu_kernels, case):
    vocab, ids = case
    table = minidl.Tensor(np.zeros((vocab, 2)), requires_grad=True)
    with pytest.raises(ValueError, match=BAD_INDEX):
        F.embedding(ids, table)
    with pytest.raises(ValueError, match=BAD_INDEX):
        layers.Embedding(vocab, 2)(ids)


def test_embedding_takes_whole_float_ids_and_checks_gradients(check_grad):
    W = np.random.default_rng(2).standard_normal((5, 3))
    ids = np.array([[4.0, 0.0], [4.0, 1.0]])
    np.testing.assert_array_equal(F.embedding(ids, minidl.Tensor(W)).data, W[[[4, 0], [4, 1]]])
    check_grad(lambda W: F.embedding(ids, W), W)
