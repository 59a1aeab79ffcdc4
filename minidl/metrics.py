"""Metrics reported by fit/evaluate: accuracies (binary, categorical, sparse, top-k) and mse.

A metric is a function ``(y_true, y_pred) -> per-example values`` on raw arrays; the training
loop averages them over the epoch. ``'acc'``/``'accuracy'`` picks the accuracy that fits the
loss, as Keras does, and the history key keeps the name the user wrote. Targets are checked as
the losses check them (:func:`minidl.functions.loss.matched_targets`, ``class_labels``): a
shape that would broadcast or a label outside the classes is a ValueError, not a wrong score.
"""
from minidl.backends import get_array_module
from minidl.functions.loss import class_labels, matched_targets


def binary_accuracy(y_true, y_pred, threshold=0.5):
    xp = get_array_module(y_pred)
    hits = (y_pred > threshold) == (matched_targets(y_true, y_pred.shape, 'binary_accuracy') > 0.5)
    return xp.mean(hits.reshape(len(hits), -1), axis=1)


def categorical_accuracy(y_true, y_pred):
    y_true = matched_targets(y_true, y_pred.shape, 'categorical_accuracy')
    return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).astype(y_pred.dtype)


def sparse_categorical_accuracy(y_true, y_pred):
    labels = class_labels(y_true, y_pred.shape, 'sparse_categorical_accuracy')
    return (labels == y_pred.argmax(axis=-1)).astype(y_pred.dtype)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_true = matched_targets(y_true, y_pred.shape, 'top_k_categorical_accuracy')
    return sparse_top_k_categorical_accuracy(y_true.argmax(axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1 where the true class is among the ``k`` highest scores."""
    xp = get_array_module(y_pred)
    labels = class_labels(y_true, y_pred.shape, 'sparse_top_k_categorical_accuracy')
    true_scores = y_pred[xp.arange(len(labels)), labels]
    better = (y_pred > true_scores[:, None]).sum(axis=-1)
    return (better < k).astype(y_pred.dtype)


def mean_squared_error(y_true, y_pred):
    diff = y_pred - matched_targets(y_true, y_pred.shape, 'mean_squared_error')
    return (diff * diff).reshape(len(diff), -1).mean(axis=1)


def mean_absolute_error(y_true, y_pred):
    diff = abs(y_pred - matched_targets(y_true, y_pred.shape, 'mean_absolute_error'))
    return diff.reshape(len(diff), -1).mean(axis=1)


_ACCURACY_FOR_LOSS = {
    'binary_crossentropy': binary_accuracy,
    'categorical_crossentropy': categorical_accuracy,
    'sparse_categorical_crossentropy': sparse_categorical_accuracy,
}
_BY_NAME = {
    'binary_accuracy': binary_accuracy,
    'categorical_accuracy': categorical_accuracy,
    'sparse_categorical_accuracy': sparse_categorical_accuracy,
    'top_k_categorical_accuracy': top_k_categorical_accuracy,
    'sparse_top_k_categorical_accuracy': sparse_top_k_categorical_accuracy,
    'mse': mean_squared_error, 'mean_squared_error': mean_squared_error,
    'mae': mean_absolute_error, 'mean_absolute_error': mean_absolute_error,
}


def get(identifier, loss_name=None):
    """``(history_key, fn)`` for a metric name or function; 'acc' follows the loss."""
    if callable(identifier):
        return getattr(identifier, '__name__', 'metric'), identifier
    if identifier in ('acc', 'accuracy'):
        return identifier, _ACCURACY_FOR_LOSS.get(loss_name, categorical_accuracy)
    if identifier not in _BY_NAME:
        raise ValueError(f'unknown metric {identifier!r}; known metrics: acc, accuracy, '
                         f'{", ".join(sorted(_BY_NAME))}')
    return identifier, _BY_NAME[identifier]
