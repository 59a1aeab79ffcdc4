"""Losses computed in their numerically stable fused forms.

Cross-entropy is taken from logits: softmax + log (or sigmoid + log) in one step never forms
``log(0)``, and the gradient is the famous ``probs - target``.

Targets are checked here, where every backend's path passes: they never broadcast against the
predictions (:func:`matched_targets`), and class indices are whole numbers below the class
count (:func:`class_labels`), so the Numba and CUDA kernels never read outside a row.
"""
import numpy as np

from minidl.autograd import Function, Tensor, as_array
from minidl.backends import get_array_module, kernels
from minidl.functions.indices import checked_indices
from minidl.functions.reduce import mean, sum as sum_

REDUCTIONS = ('mean', 'sum', 'none')


def _reduce(per_sample, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
    if reduction == 'none':
        return per_sample
    return mean(per_sample) if reduction == 'mean' else sum_(per_sample)


def matched_targets(target, shape, op, hint=''):
    """``target`` as an array of predictions' ``shape``; only size-1 axes may differ (Keras).

    Anything else would broadcast, (20, 1) against (20, 3), into a silently wrong loss, so it
    is a ValueError naming ``op`` and both shapes (``hint`` says what to do instead).
    """
    target = _array(target)
    if target.dtype.kind not in 'biuf':
        raise ValueError(f'{op}: targets must be numbers, got an array of dtype {target.dtype}')
    if tuple(target.shape) != tuple(shape):
        if _without_ones(target.shape) != _without_ones(shape):
            raise ValueError(f'{op}: targets of shape {tuple(target.shape)} do not match '
                             f'predictions of shape {tuple(shape)}{hint}')
        target = target.reshape(shape)
    return target


def _array(target):
    """The raw array of a Tensor or an array; anything else (a list) through NumPy."""
    return as_array(target) if hasattr(target, 'shape') else np.asarray(target)


def _without_ones(shape):
    return tuple(d for d in shape if d != 1)


def class_labels(target, shape, op):
    """Class indices for scores of ``shape`` (..., K): an array of ``shape[:-1]``, or of that
    with a trailing 1 ((N,) or (N, 1) for scores (N, K)), checked, as int64 flattened (M,)."""
    target = _array(target)
    lead = tuple(shape[:-1])
    if tuple(target.shape) not in (lead, lead + (1,)):
        raise ValueError(f'{op}: class labels must have shape {lead} or {lead + (1,)} for '
                         f'predictions of shape {tuple(shape)}, got {tuple(target.shape)}')
    return checked_indices(target.reshape(-1), shape[-1], op)


class SoftmaxCrossEntropy(Function):
    """Per-sample ``-sum(target * log_softmax(logits))`` for logits (N, K).

    ``target`` is whole-number class indices (N,) in 0..K-1, checked here so that no kernel
    reads outside its row, or a float distribution (N, K) such as one-hot.
    """

    def forward(self, logits, target):
        if logits.ndim != 2:
            raise ValueError(f'softmax_cross_entropy: logits must have shape (N, K), got '
                             f'{tuple(logits.shape)}')
        n, k = logits.shape
        if target.shape not in ((n,), (n, k)):
            raise ValueError(f'softmax_cross_entropy: logits of shape {tuple(logits.shape)} need '
                             f'targets of shape ({n},) (class indices) or ({n}, {k}) (one-hot), '
                             f'got {tuple(target.shape)}')
        if target.ndim == 1:
            self.target = class_labels(target, logits.shape, 'softmax_cross_entropy')
        else:
            self.target = matched_targets(target, logits.shape,
                                          'softmax_cross_entropy').astype(logits.dtype)
        loss, self.probs = kernels.softmax_xent_forward(logits, self.target)
        return loss

    def backward(self, g):
        return kernels.softmax_xent_backward(self.probs, self.target, g), None


class SigmoidBinaryCrossEntropy(Function):
    """Per-element ``-(t log s(z) + (1 - t) log(1 - s(z)))`` for logits z, stably."""

    def forward(self, z, t):
        xp = get_array_module(z)
        self.z = z
        self.t = matched_targets(t, z.shape, 'sigmoid_binary_cross_entropy').astype(z.dtype)
        return xp.maximum(z, 0) - z * self.t + xp.log1p(xp.exp(-xp.abs(z)))

    def backward(self, g):
        probs = kernels.bias_act_forward(self.z, None, 'sigmoid')
        return g * (probs - self.t), None


def softmax_cross_entropy(logits, target, reduction='mean'):
    """Cross-entropy of softmax(logits) (N, K) against class indices (N,) or (N, 1), or
    one-hot (N, K)."""
    target = as_array(target)
    if target.ndim == 2 and target.shape[1] == 1 and logits.shape[-1] != 1:
        target = target[:, 0]
    return _reduce(SoftmaxCrossEntropy()(logits, target), reduction)


def sigmoid_binary_cross_entropy(logits, target, reduction='mean'):
    """Binary cross-entropy of sigmoid(logits) against 0/1 targets of the same shape."""
    return _reduce(SigmoidBinaryCrossEntropy()(logits, target), reduction)


def mean_squared_error(prediction, target):
    """Mean over every element of ``(prediction - target) ** 2`` (a composition); the shapes
    must match up to size-1 axes, never broadcast."""
    if isinstance(target, Tensor):
        matched_targets(target.data, prediction.shape, 'mean_squared_error')
        target = target.reshape(prediction.shape)
    else:
        target = matched_targets(target, prediction.shape, 'mean_squared_error')
    diff = prediction - target
    return mean(diff * diff)
