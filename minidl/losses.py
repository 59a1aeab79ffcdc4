"""Keras losses, by name, as objects or as functions, computed as Keras computes them.

A loss gives one value per example (``call``: shape ``y_pred.shape[:-1]``, the last axis
summed or averaged as in Keras) and reduces them: ``'sum_over_batch_size'`` (Keras's default,
the mean; tf-keras's ``'auto'`` is the same), ``'sum'`` or ``'none'``.

From probabilities, the cross-entropies follow tf-keras 2.x (the h5-era lessons), with
``EPSILON`` = 1e-7:

* categorical: each row renormalised to sum 1, then clipped to [eps, 1 - eps] (Keras 3 too);
* sparse categorical: clipped, then renormalised (tf-keras takes ``log_softmax(log p)``); Keras 3
  renormalises first, which differs only where the clip acts;
* binary: clipped to [eps, 1 - eps], then ``-(t log(p + eps) + (1 - t) log(1 - p + eps))``;
  Keras 3 adds no eps inside the logs (a relative difference of about eps / p).

Fused with the output activation: when a model ends in the activation a cross-entropy pairs
with (softmax, sigmoid) and the loss is on probabilities (``from_logits=False``, the
default), ``fit`` hands the loss the logits and :meth:`Loss.on_logits` uses the stable form of
:mod:`minidl.functions.loss`. tf-keras computes exactly that too (its softmax and sigmoid
outputs carry their logits, which its cross-entropies take). Keras 3 computes from the clipped
probabilities instead, so where a predicted probability of the true class is below eps its
loss stops at ``-log(eps)`` = 16.1 and its gradient is zero, while the fused loss keeps
growing and keeps pulling; elsewhere the two agree to rounding. ``from_logits=True`` takes a
model without a final activation and uses the same stable forms.

Targets never broadcast: they must have the predictions' shape up to size-1 axes (sparse
labels: ``y_pred.shape[:-1]``, or that with a trailing 1, whole numbers below the class
count), else a ValueError names the loss and both shapes.
"""
import minidl.functions as F
from minidl.backends import get_array_module
from minidl.functions.loss import class_labels, matched_targets

EPSILON = 1e-7
REDUCTIONS = ('sum_over_batch_size', 'auto', 'sum', 'none')
SPARSE_HINT = ('; class indices need sparse_categorical_crossentropy, or one-hot targets '
               '(minidl.utils.to_categorical)')


class Loss:
    """``loss(y_true, y_pred)`` -> the reduced loss, a Tensor (a scalar unless
    ``reduction='none'``). Subclasses give ``call``, the values per example, and, for the
    cross-entropies, ``call_on_logits``."""

    name = None
    fused_activation = None  # the output activation whose logits ``on_logits`` takes

    def __init__(self, reduction='sum_over_batch_size', name=None):
        if reduction not in REDUCTIONS:
            raise ValueError(f'{type(self).__name__}: reduction must be one of '
                             f'{", ".join(REDUCTIONS)}, got {reduction!r}')
        self.reduction, self.name = reduction, name or self.name

    def __call__(self, y_true, y_pred):
        return self._reduced(self.call(y_true, y_pred))

    def on_logits(self, y_true, logits):
        """The loss of ``fused_activation(logits)``, computed from the logits."""
        return self._reduced(self.call_on_logits(y_true, logits))

    def call(self, y_true, y_pred):
        raise NotImplementedError(type(self).__name__)

    def call_on_logits(self, y_true, logits):
        raise NotImplementedError(type(self).__name__)

    def _reduced(self, values):
        if self.reduction == 'none':
            return values
        return F.sum(values) if self.reduction == 'sum' else F.mean(values)

    def get_config(self):
        return {'name': self.name, 'reduction': self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f'{type(self).__name__}({self.get_config()})'


def _match(y_true, y_pred, loss, hint=''):
    """Targets of the prediction's shape and dtype; only size-1 axes may differ (Keras)."""
    return matched_targets(y_true, y_pred.shape, loss.name, hint).astype(y_pred.dtype)


def _clipped_log(p):
    return F.log(F.clip(p, EPSILON, 1 - EPSILON))


class CategoricalCrossentropy(Loss):
    """``-sum(t * log p)`` over ``axis`` against one-hot (or soft) targets; ``label_smoothing``
    ``s`` trains on ``t (1 - s) + s / K`` for K classes."""

    name = 'categorical_crossentropy'

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction='sum_over_batch_size', name='categorical_crossentropy'):
        super().__init__(reduction, name)
        self.from_logits, self.label_smoothing, self.axis = \
            bool(from_logits), float(label_smoothing), int(axis)

    @property
    def fused_activation(self):
        return None if self.from_logits or self.axis != -1 else 'softmax'

    def call(self, y_true, y_pred):
        if self.from_logits:
            return self.call_on_logits(y_true, y_pred)
        t = self._targets(y_true, y_pred)
        p = y_pred / F.sum(y_pred, axis=self.axis, keepdims=True)
        return -F.sum(t * _clipped_log(p), axis=self.axis)

    def call_on_logits(self, y_true, logits):
        t = self._targets(y_true, logits)
        if self.axis != -1:
            return -F.sum(t * F.log_softmax(logits, self.axis), axis=self.axis)
        k = logits.shape[-1]
        return F.softmax_cross_entropy(logits.reshape(-1, k), t.reshape(-1, k),
                                       'none').reshape(logits.shape[:-1])

    def _targets(self, y_true, y_pred):
        t = _match(y_true, y_pred, self, SPARSE_HINT)
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / y_pred.shape[self.axis]
        return t

    def get_config(self):
        return {**super().get_config(), 'from_logits': self.from_logits,
                'label_smoothing': self.label_smoothing, 'axis': self.axis}


class SparseCategoricalCrossentropy(Loss):
    """The categorical cross-entropy of class indices (shape ``y_pred.shape[:-1]``)."""

    name = 'sparse_categorical_crossentropy'

    def __init__(self, from_logits=False, reduction='sum_over_batch_size',
                 name='sparse_categorical_crossentropy'):
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)

    @property
    def fused_activation(self):
        return None if self.from_logits else 'softmax'

    def call(self, y_true, y_pred):
        if self.from_logits:
            return self.call_on_logits(y_true, y_pred)
        xp = get_array_module(y_pred.data)
        labels = xp.asarray(class_labels(y_true, y_pred.shape, self.name))
        p = F.clip(y_pred.reshape(-1, y_pred.shape[-1]), EPSILON, 1 - EPSILON)
        picked = p[xp.arange(len(labels)), labels]
        return (F.log(F.sum(p, axis=-1)) - F.log(picked)).reshape(y_pred.shape[:-1])

    def call_on_logits(self, y_true, logits):
        labels = class_labels(y_true, logits.shape, self.name)
        return F.softmax_cross_entropy(logits.reshape(-1, logits.shape[-1]), labels,
                                       'none').reshape(logits.shape[:-1])

    def get_config(self):
        return {**super().get_config(), 'from_logits': self.from_logits}


class BinaryCrossentropy(Loss):
    """``-(t log p + (1 - t) log(1 - p))`` averaged over ``axis``; ``label_smoothing`` ``s``
    trains on ``t (1 - s) + s / 2``."""

    name = 'binary_crossentropy'

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction='sum_over_batch_size', name='binary_crossentropy'):
        super().__init__(reduction, name)
        self.from_logits, self.label_smoothing, self.axis = \
            bool(from_logits), float(label_smoothing), int(axis)

    @property
    def fused_activation(self):
        return None if self.from_logits else 'sigmoid'

    def call(self, y_true, y_pred):
        if self.from_logits:
            return self.call_on_logits(y_true, y_pred)
        t = self._targets(y_true, y_pred)
        p = F.clip(y_pred, EPSILON, 1 - EPSILON)
        return -F.mean(t * F.log(p + EPSILON) + (1 - t) * F.log(1 - p + EPSILON),
                       axis=self.axis)

    def call_on_logits(self, y_true, logits):
        t = self._targets(y_true, logits)
        return F.mean(F.sigmoid_binary_cross_entropy(logits, t, 'none'), axis=self.axis)

    def _targets(self, y_true, y_pred):
        t = _match(y_true, y_pred, self)
        return t * (1 - self.label_smoothing) + 0.5 * self.label_smoothing \
            if self.label_smoothing else t

    def get_config(self):
        return {**super().get_config(), 'from_logits': self.from_logits,
                'label_smoothing': self.label_smoothing, 'axis': self.axis}


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true) ** 2)`` over the last axis."""

    name = 'mean_squared_error'

    def call(self, y_true, y_pred):
        error = y_pred - _match(y_true, y_pred, self)
        return F.mean(error * error, axis=-1)


class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|)`` over the last axis."""

    name = 'mean_absolute_error'

    def call(self, y_true, y_pred):
        return F.mean(F.abs(y_pred - _match(y_true, y_pred, self)), axis=-1)


class Huber(Loss):
    """``e^2 / 2`` for errors ``|e| <= delta``, ``delta (|e| - delta / 2)`` beyond (squared
    near the target, linear far away: outliers pull less), averaged over the last axis."""

    name = 'huber_loss'

    def __init__(self, delta=1.0, reduction='sum_over_batch_size', name='huber_loss'):
        super().__init__(reduction, name)
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        size = F.abs(y_pred - _match(y_true, y_pred, self))
        inside = F.minimum(size, self.delta)  # |e| up to delta: the squared part
        return F.mean(0.5 * inside * inside + self.delta * (size - inside), axis=-1)

    def get_config(self):
        return {**super().get_config(), 'delta': self.delta}


class KLDivergence(Loss):
    """``sum(t log(t / p))`` over the last axis, ``t`` and ``p`` clipped to [eps, 1]."""

    name = 'kl_divergence'

    def call(self, y_true, y_pred):
        xp = get_array_module(y_pred.data)
        t = xp.clip(_match(y_true, y_pred, self), EPSILON, 1)
        return F.sum(t * (xp.log(t) - F.log(F.clip(y_pred, EPSILON, 1))), axis=-1)


class FunctionLoss(Loss):
    """Wrap a user function ``fn(y_true, y_pred) -> Tensor`` (per example, or already a
    scalar), reduced like the built-in losses."""

    def __init__(self, fn, reduction='sum_over_batch_size'):
        super().__init__(reduction, getattr(fn, '__name__', 'custom_loss'))
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-example categorical cross-entropy (see :class:`CategoricalCrossentropy`)."""
    return CategoricalCrossentropy(from_logits, label_smoothing, axis).call(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-example cross-entropy of class indices (:class:`SparseCategoricalCrossentropy`)."""
    return SparseCategoricalCrossentropy(from_logits).call(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-example binary cross-entropy (see :class:`BinaryCrossentropy`)."""
    return BinaryCrossentropy(from_logits, label_smoothing, axis).call(y_true, y_pred)


def mean_squared_error(y_true, y_pred): return MeanSquaredError().call(y_true, y_pred)
def mean_absolute_error(y_true, y_pred): return MeanAbsoluteError().call(y_true, y_pred)
def huber(y_true, y_pred, delta=1.0): return Huber(delta).call(y_true, y_pred)
def kl_divergence(y_true, y_pred): return KLDivergence().call(y_true, y_pred)


mse, mae, kld = mean_squared_error, mean_absolute_error, kl_divergence
_BY_NAME = {
    'categorical_crossentropy': CategoricalCrossentropy,
    'sparse_categorical_crossentropy': SparseCategoricalCrossentropy,
    'binary_crossentropy': BinaryCrossentropy,
    'mean_squared_error': MeanSquaredError, 'mse': MeanSquaredError,
    'mean_absolute_error': MeanAbsoluteError, 'mae': MeanAbsoluteError,
    'huber': Huber, 'huber_loss': Huber,
    'kl_divergence': KLDivergence, 'kld': KLDivergence,
    'kullback_leibler_divergence': KLDivergence,
}
# The functions above, given to compile, become their loss objects (which fuse).
_BY_FUNCTION = {categorical_crossentropy: CategoricalCrossentropy,
                sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError,
                mean_absolute_error: MeanAbsoluteError, huber: Huber,
                kl_divergence: KLDivergence}


def get(identifier):
    """A Loss from a name ('categorical_crossentropy', 'mse', 'MAE', 'huber', 'kld', ...; case
    does not matter), a Loss, one of this module's functions, or any function
    ``fn(y_true, y_pred)``."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(f'unknown loss {identifier!r}; known losses: '
                             f'{", ".join(sorted(_BY_NAME))}')
        return _BY_NAME[key]()
    if callable(identifier):
        known = _BY_FUNCTION.get(identifier)
        return known() if known else FunctionLoss(identifier)
    raise TypeError(f'a loss must be a name, a Loss or a function, got {identifier!r}')
