"""Losses computed in their numerically stable fused forms.

Cross-entropy is taken from logits: softmax + log (or sigmoid + log) in one step never forms
``log(0)``, and the gradient is the famous ``probs - target``.
"""
import numpy as np

from minidl.autograd import Function, as_array
from minidl.backends import get_array_module, kernels
from minidl.functions.reduce import mean, sum as sum_

REDUCTIONS = ('mean', 'sum', 'none')


def _reduce(per_sample, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
    if reduction == 'none':
        return per_sample
    return mean(per_sample) if reduction == 'mean' else sum_(per_sample)


class SoftmaxCrossEntropy(Function):
    """Per-sample ``-sum(target * log_softmax(logits))`` for logits (N, K).

    ``target`` is integer class indices (N,) or a float distribution (N, K) such as one-hot.
    """

    def forward(self, logits, target):
        n, k = logits.shape
        sparse = target.ndim == 1
        if target.shape[0] != n or (not sparse and target.shape != logits.shape):
            raise ValueError(f'softmax_cross_entropy: logits of shape {tuple(logits.shape)} need '
                             f'targets of shape ({n},) (class indices) or ({n}, {k}) (one-hot), '
                             f'got {tuple(target.shape)}')
        xp = get_array_module(logits)
        self.target = target.astype(xp.int64) if sparse else target.astype(logits.dtype)
        loss, self.probs = kernels.softmax_xent_forward(logits, self.target)
        return loss

    def backward(self, g):
        return kernels.softmax_xent_backward(self.probs, self.target, g), None


class SigmoidBinaryCrossEntropy(Function):
    """Per-element ``-(t log s(z) + (1 - t) log(1 - s(z)))`` for logits z, stably."""

    def forward(self, z, t):
        if z.shape != t.shape:
            raise ValueError(f'sigmoid_binary_cross_entropy: logits of shape {tuple(z.shape)} '
                             f'and targets of shape {tuple(t.shape)} differ')
        xp = get_array_module(z)
        self.z, self.t = z, t.astype(z.dtype)
        return xp.maximum(z, 0) - z * self.t + xp.log1p(xp.exp(-xp.abs(z)))

    def backward(self, g):
        probs = kernels.bias_act_forward(self.z, None, 'sigmoid')
        return g * (probs - self.t), None


def softmax_cross_entropy(logits, target, reduction='mean'):
    """Cross-entropy of softmax(logits) (N, K) against class indices (N,) or one-hot (N, K)."""
    target = as_array(target)
    if np.issubdtype(target.dtype, np.integer) and target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    return _reduce(SoftmaxCrossEntropy()(logits, target), reduction)


def sigmoid_binary_cross_entropy(logits, target, reduction='mean'):
    """Binary cross-entropy of sigmoid(logits) against 0/1 targets of the same shape."""
    return _reduce(SigmoidBinaryCrossEntropy()(logits, target), reduction)


def mean_squared_error(prediction, target):
    """Mean over every element of ``(prediction - target) ** 2`` (a composition)."""
    diff = prediction - target
    return mean(diff * diff)
