"""Keras losses by name, each able to work from probabilities or, fused, from logits.

When the model ends in the activation a loss pairs with (softmax for the categorical
cross-entropies, sigmoid for the binary one), ``fit`` hands the loss the pre-activation logits
and the loss uses the stable fused form in :mod:`minidl.functions.loss`. Otherwise it works on
the probabilities, clipped away from 0 and 1 as Keras does.

Targets never broadcast: they must have the predictions' shape up to size-1 axes (sparse
labels: (N,) or (N, 1) whole numbers below the class count), else a ValueError names the loss
and both shapes.
"""
import minidl.functions as F
from minidl.backends import get_array_module
from minidl.functions.loss import class_labels, matched_targets

EPSILON = 1e-7


class Loss:
    """``loss(y_true, y_pred)`` -> scalar Tensor, averaged over the batch."""

    name = None
    fused_activation = None  # the output activation whose logits ``from_logits`` accepts

    def __call__(self, y_true, y_pred):
        raise NotImplementedError(type(self).__name__)

    def from_logits(self, y_true, logits):
        raise NotImplementedError(type(self).__name__)

    def get_config(self):
        return {'name': self.name}


def _clipped_log(p):
    return F.log(F.clip(p, EPSILON, 1 - EPSILON))


def _match(y_true, y_pred, loss, hint=''):
    """Targets of the prediction's shape and dtype; only size-1 axes may differ (Keras)."""
    return matched_targets(y_true, y_pred.shape, loss.name, hint).astype(y_pred.dtype)


SPARSE_HINT = ('; class indices need sparse_categorical_crossentropy, or one-hot targets '
               '(minidl.utils.to_categorical)')


class CategoricalCrossentropy(Loss):
    name, fused_activation = 'categorical_crossentropy', 'softmax'

    def __call__(self, y_true, y_pred):
        t = _match(y_true, y_pred, self, SPARSE_HINT)
        return -(F.sum(t * _clipped_log(y_pred), axis=-1)).mean()

    def from_logits(self, y_true, logits):
        return F.softmax_cross_entropy(logits, _match(y_true, logits, self, SPARSE_HINT))


class SparseCategoricalCrossentropy(Loss):
    name, fused_activation = 'sparse_categorical_crossentropy', 'softmax'

    def __call__(self, y_true, y_pred):
        xp = get_array_module(y_pred.data)
        labels = xp.asarray(class_labels(y_true, y_pred.shape, self.name))
        return -_clipped_log(y_pred[xp.arange(len(labels)), labels]).mean()

    def from_logits(self, y_true, logits):
        return F.softmax_cross_entropy(logits, class_labels(y_true, logits.shape, self.name))


class BinaryCrossentropy(Loss):
    name, fused_activation = 'binary_crossentropy', 'sigmoid'

    def __call__(self, y_true, y_pred):
        t = _match(y_true, y_pred, self)
        return -(t * _clipped_log(y_pred) + (1 - t) * _clipped_log(1 - y_pred)).mean()

    def from_logits(self, y_true, logits):
        return F.sigmoid_binary_cross_entropy(logits, _match(y_true, logits, self))


class MeanSquaredError(Loss):
    name = 'mean_squared_error'

    def __call__(self, y_true, y_pred):
        return F.mean_squared_error(y_pred, _match(y_true, y_pred, self))


class FunctionLoss(Loss):
    """Wrap a user function ``fn(y_true, y_pred) -> Tensor``."""

    def __init__(self, fn):
        self.fn, self.name = fn, getattr(fn, '__name__', 'custom_loss')

    def __call__(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


_BY_NAME = {
    'categorical_crossentropy': CategoricalCrossentropy,
    'sparse_categorical_crossentropy': SparseCategoricalCrossentropy,
    'binary_crossentropy': BinaryCrossentropy,
    'mean_squared_error': MeanSquaredError,
    'mse': MeanSquaredError,
}


def get(identifier):
    """A Loss from a name ('categorical_crossentropy', 'mse', ...), an instance or a function."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(f'unknown loss {identifier!r}; known losses: '
                             f'{", ".join(sorted(_BY_NAME))}')
        return _BY_NAME[key]()
    if callable(identifier):
        return FunctionLoss(identifier)
    raise TypeError(f'a loss must be a name, a Loss or a function, got {identifier!r}')
