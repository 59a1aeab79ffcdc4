"""Metrics reported by fit/evaluate: accuracies (binary, categorical, sparse, top-k) and mse.

A metric is a function ``(y_true, y_pred) -> per-example values`` on raw arrays; the training
loop averages them over the epoch. ``'acc'``/``'accuracy'`` picks the accuracy from the shapes
of the targets and predictions, as tf-keras and Keras 3 do (:func:`accuracy_for_shapes`), and
the history key keeps the name the user wrote. Targets are checked as
the losses check them (:func:`minidl.functions.loss.matched_targets`, ``class_labels``): a
shape that would broadcast or a label outside the classes is a ValueError, not a wrong score.
"""
import numpy as np

from minidl.backends import get_array_module
from minidl.functions.loss import class_labels, matched_targets


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1 where the prediction, thresholded to 0 or 1, equals the target, averaged over the
    last axis. Only the predictions are thresholded, as in Keras: a soft target (0.3, 0.7)
    never equals 0 or 1, so it scores 0."""
    y_true = matched_targets(y_true, y_pred.shape, 'binary_accuracy')
    return ((y_pred > threshold).astype(y_pred.dtype) == y_true).mean(axis=-1)


def categorical_accuracy(y_true, y_pred):
    y_true = matched_targets(y_true, y_pred.shape, 'categorical_accuracy')
    return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).astype(y_pred.dtype)


def sparse_categorical_accuracy(y_true, y_pred):
    labels = class_labels(y_true, y_pred.shape, 'sparse_categorical_accuracy')
    return (labels == y_pred.argmax(axis=-1).reshape(-1)).astype(y_pred.dtype)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_true = matched_targets(y_true, y_pred.shape, 'top_k_categorical_accuracy')
    return sparse_top_k_categorical_accuracy(y_true.argmax(axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the true class is among the ``k`` highest scores."""
    xp = get_array_module(y_pred)
    labels = class_labels(y_true, y_pred.shape, 'sparse_top_k_categorical_accuracy')
    scores = y_pred.reshape(-1, y_pred.shape[-1])
    true_scores = scores[xp.arange(len(labels)), labels]
    better = (scores > true_scores[:, None]).sum(axis=-1)
    return (better < k).astype(y_pred.dtype)


def mean_squared_error(y_true, y_pred):
    diff = y_pred - matched_targets(y_true, y_pred.shape, 'mean_squared_error')
    return (diff * diff).reshape(len(diff), -1).mean(axis=1)


def mean_absolute_error(y_true, y_pred):
    diff = abs(y_pred - matched_targets(y_true, y_pred.shape, 'mean_absolute_error'))
    return diff.reshape(len(diff), -1).mean(axis=1)


def accuracy_for_shapes(y_true, y_pred):
    """What 'acc' and 'accuracy' compute, chosen from the shapes as tf-keras and Keras 3
    choose: :func:`binary_accuracy` for predictions with one column (N, 1), whatever the
    loss; :func:`sparse_categorical_accuracy` for targets with fewer axes than the
    predictions, or with one column against several; :func:`categorical_accuracy`
    otherwise."""
    true_shape = np.shape(y_true)
    if y_pred.shape[-1] == 1:
        return binary_accuracy(y_true, y_pred)
    if len(true_shape) < y_pred.ndim or true_shape[-1] == 1:
        return sparse_categorical_accuracy(y_true, y_pred)
    return categorical_accuracy(y_true, y_pred)


_BY_NAME = {
    'binary_accuracy': binary_accuracy,
    'categorical_accuracy': categorical_accuracy,
    'sparse_categorical_accuracy': sparse_categorical_accuracy,
    'top_k_categorical_accuracy': top_k_categorical_accuracy,
    'sparse_top_k_categorical_accuracy': sparse_top_k_categorical_accuracy,
    'mse': mean_squared_error, 'mean_squared_error': mean_squared_error,
    'mae': mean_absolute_error, 'mean_absolute_error': mean_absolute_error,
}


def get(identifier):
    """``(history_key, fn)`` for a metric name or function; 'acc' and 'accuracy' are
    :func:`accuracy_for_shapes`, keeping the name given."""
    if callable(identifier):
        return getattr(identifier, '__name__', 'metric'), identifier
    if identifier in ('acc', 'accuracy'):
        return identifier, accuracy_for_shapes
    if identifier not in _BY_NAME:
        raise ValueError(f'unknown metric {identifier!r}; known metrics: acc, accuracy, '
                         f'{", ".join(sorted(_BY_NAME))}')
    return identifier, _BY_NAME[identifier]
