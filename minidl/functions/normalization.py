"""Batch normalisation over every axis but the last (the channels).

Training normalises with the batch's own mean and variance and folds them into the moving
averages (in place, like PyTorch's ``F.batch_norm``); inference uses the moving averages, which
makes it an affine map and so a composition of elementwise ops.
"""
from minidl.autograd import Function, as_array
from minidl.backends import get_array_module


class BatchNormTraining(Function):
    """``gamma * (x - mean) / sqrt(var + eps) + beta`` with the batch's statistics."""

    def __init__(self, eps):
        self.eps = eps

    def forward(self, x, gamma, beta):
        xp = get_array_module(x)
        axes = tuple(range(x.ndim - 1))
        self.mean, self.var = x.mean(axis=axes), x.var(axis=axes)
        self.inv_std = 1 / xp.sqrt(self.var + self.eps)
        self.xhat = (x - self.mean) * self.inv_std
        self.gamma = gamma
        return self.xhat * gamma + beta

    def backward(self, gy):
        axes = tuple(range(gy.ndim - 1))
        count = gy.size // gy.shape[-1]
        dxhat = gy * self.gamma
        gx = self.inv_std / count * (count * dxhat - dxhat.sum(axis=axes)
                                     - self.xhat * (dxhat * self.xhat).sum(axis=axes))
        return gx, (gy * self.xhat).sum(axis=axes), gy.sum(axis=axes)


def batch_norm(x, gamma, beta, moving_mean, moving_var, training=False, momentum=0.99,
               eps=1e-3):
    """Normalise ``x`` (..., C) per channel; at training also update the moving statistics.

    ``moving_mean`` and ``moving_var`` are raw arrays (C,) updated in place as
    ``m = momentum * m + (1 - momentum) * batch_value`` (Keras's convention).
    """
    channels = as_array(x).shape[-1]
    if as_array(gamma).shape != (channels,):
        raise ValueError(f'batch_norm: parameters of shape {as_array(gamma).shape} do not match '
                         f'an input with {channels} channels')
    if not training:
        inv_std = 1 / get_array_module(moving_var).sqrt(moving_var + eps)
        return (x - moving_mean) * inv_std * gamma + beta
    fn = BatchNormTraining(eps)
    y = fn(x, gamma, beta)
    moving_mean *= momentum
    moving_mean += (1 - momentum) * fn.mean
    moving_var *= momentum
    moving_var += (1 - momentum) * fn.var
    return y
