"""Losses by name (probability and fused-logit paths agree) and metrics as Keras picks them."""
import re

import numpy as np
import pytest

import minidl
import minidl.functions as F
from minidl import losses, metrics


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize('name, target', [
    ('categorical_crossentropy', np.eye(4)[[0, 3, 1]]),
    ('sparse_categorical_crossentropy', np.array([0, 3, 1])),
])
def test_cross_entropy_from_probabilities_equals_the_fused_form(name, target):
    logits = np.random.default_rng(0).standard_normal((3, 4))
    loss = losses.get(name)
    from_probs = loss(target, minidl.Tensor(_softmax(logits))).item()
    fused = loss.from_logits(target, minidl.Tensor(logits)).item()
    assert from_probs == pytest.approx(fused, rel=1e-6)
    assert loss.fused_activation == 'softmax'


def test_binary_cross_entropy_paths_agree_and_accept_flat_targets():
    logits = np.array([[2.0], [-1.0], [0.5]])
    target = np.array([1.0, 0.0, 0.0])
    loss = losses.get('binary_crossentropy')
    probs = 1 / (1 + np.exp(-logits))
    assert loss(target, minidl.Tensor(probs)).item() == pytest.approx(
        loss.from_logits(target, minidl.Tensor(logits)).item(), rel=1e-6)


def test_mse_and_custom_and_unknown_losses():
    assert losses.get('mse')(np.zeros(3), minidl.Tensor(np.array([1.0, 2.0, 2.0]))).item() == 3
    custom = losses.get(lambda t, p: F.sum(p))
    assert custom(None, minidl.Tensor(np.ones(2))).item() == 2
    with pytest.raises(ValueError, match='unknown loss'):
        losses.get('hinge_of_fate')


@pytest.mark.parametrize('loss, fn', [('binary_crossentropy', metrics.binary_accuracy),
                                      ('categorical_crossentropy', metrics.categorical_accuracy),
                                      ('sparse_categorical_crossentropy',
                                       metrics.sparse_categorical_accuracy)])
def test_acc_follows_the_loss_and_keeps_the_name(loss, fn):
    assert metrics.get('acc', loss) == ('acc', fn)
    assert metrics.get('accuracy', loss) == ('accuracy', fn)


def test_accuracies():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    assert metrics.sparse_categorical_accuracy(labels, probs).tolist() == [1, 0, 0]
    assert metrics.categorical_accuracy(np.eye(3)[labels], probs).tolist() == [1, 0, 0]
    assert metrics.sparse_top_k_categorical_accuracy(labels, probs, k=2).tolist() == [1, 1, 0]
    assert metrics.top_k_categorical_accuracy(np.eye(3)[labels], probs, k=3).tolist() == [1] * 3
    assert metrics.binary_accuracy(np.array([1, 0, 1]), np.array([[0.9], [0.6], [0.2]]))\
        .tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match='unknown metric'):
        metrics.get('precision@k')


PREDICTIONS = minidl.Tensor(_softmax(np.random.default_rng(3).standard_normal((20, 3))))


@pytest.mark.parametrize('name, target, fused', [
    ('categorical_crossentropy', np.array([0, 2, 1] * 6 + [0, 1]), True),  # class indices
    ('categorical_crossentropy', np.full((20, 1), 0.5), True),
    ('categorical_crossentropy', np.eye(3)[[0] * 20][:, :2], False),
    ('mse', np.zeros((20, 1)), False),
    ('binary_crossentropy', np.zeros((20, 1)), True),
    ('binary_crossentropy', np.zeros(20), False)])
def test_targets_that_would_broadcast_are_refused_naming_the_loss_and_both_shapes(
        name, target, fused):
    loss = losses.get(name)
    compute = loss.from_logits if fused else loss
    with pytest.raises(ValueError, match=rf'{loss.name}: targets of shape '
                                         rf'{re.escape(str(target.shape))} do not match '
                                         rf'predictions of shape \(20, 3\)'):
        compute(target, PREDICTIONS)


def test_categorical_crossentropy_with_indices_points_to_the_sparse_loss():
    with pytest.raises(ValueError, match='class indices need sparse_categorical_crossentropy'):
        losses.get('categorical_crossentropy')(np.zeros(20), PREDICTIONS)


def test_targets_that_differ_only_by_size_one_axes_are_taken():
    column = minidl.Tensor(np.full((20, 1), 0.25))
    assert losses.get('mse')(np.zeros(20), column).item() == pytest.approx(0.0625)
    assert F.mean_squared_error(column, minidl.Tensor(np.zeros(20))).item() == \
        pytest.approx(0.0625)
    with pytest.raises(ValueError, match=r'mean_squared_error: targets of shape \(20, 3\)'):
        F.mean_squared_error(column, minidl.Tensor(np.zeros((20, 3))))


@pytest.mark.parametrize('fn', [metrics.binary_accuracy, metrics.categorical_accuracy,
                                metrics.top_k_categorical_accuracy,
                                metrics.mean_squared_error, metrics.mean_absolute_error])
def test_metrics_refuse_targets_that_would_broadcast(fn):
    with pytest.raises(ValueError, match=rf'{fn.__name__}: targets of shape \(20,\) do not '
                                         rf'match predictions of shape \(20, 3\)'):
        fn(np.zeros(20), PREDICTIONS.data)


def test_string_targets_are_named_not_converted():
    with pytest.raises(ValueError, match='categorical_crossentropy: targets must be numbers, '
                                         'got an array of dtype <U1'):
        losses.get('categorical_crossentropy')(np.full((20, 3), 'a'), PREDICTIONS)
