"""Normalisation: batch normalisation (statistics over the batch, per channel) and layer
normalisation (statistics over the features, per example).

Both rest on one primitive, :class:`Standardize` - ``(x - mean) / sqrt(var + eps)`` over some
axes, with its backward - and add the learned ``gamma * xhat + beta`` by composition. Batch
normalisation at training also folds the batch's statistics into moving averages (in place,
like PyTorch's ``F.batch_norm``); at inference it uses them, which makes it an affine map.
"""
from minidl.autograd import Function, as_array
from minidl.backends import get_array_module
from minidl.functions.math import sqrt
from minidl.functions.reduce import mean, normalize_axes
from minidl.functions.shape import reshape


class Standardize(Function):
    """``xhat = (x - mean) / sqrt(var + eps)``, the statistics taken over ``axes`` (the
    variance without Bessel's correction, as Keras normalises).

    Backward, with ``g`` the incoming gradient and means over ``axes``:
    ``dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)``.
    """

    def __init__(self, axes, eps):
        self.axes, self.eps = axes, eps

    def forward(self, x):
        xp = get_array_module(x)
        self.mean = x.mean(axis=self.axes, keepdims=True)
        self.var = x.var(axis=self.axes, keepdims=True)
        self.inv_std = 1 / xp.sqrt(self.var + x.dtype.type(self.eps))
        self.xhat = (x - self.mean) * self.inv_std
        return self.xhat

    def backward(self, gy):
        xhat = self.xhat
        return self.inv_std * (gy - gy.mean(axis=self.axes, keepdims=True)
                               - xhat * (gy * xhat).mean(axis=self.axes, keepdims=True))


def standardize(x, axes, eps):
    """``(x - mean) / sqrt(var + eps)`` with mean and variance over ``axes``."""
    return Standardize(normalize_axes(axes, as_array(x).ndim), eps)(x)


def _affine(y, gamma, beta, shape):
    """``y * gamma + beta`` with the parameters reshaped to broadcast as ``shape``; either may
    be None (Keras's ``scale=False`` / ``center=False``)."""
    if gamma is not None:
        y = y * reshape(gamma, shape)
    if beta is not None:
        y = y + reshape(beta, shape)
    return y


def _check_parameters(op, x_shape, axes, params):
    """The parameter shape for ``axes`` of ``x_shape``; each given parameter must have it."""
    expected = tuple(x_shape[a] for a in axes)
    for p in params:
        if p is not None and as_array(p).shape != expected:
            raise ValueError(f'{op}: parameters of shape {as_array(p).shape} do not match an '
                             f'input of shape {tuple(x_shape)} normalised per axis {axes} '
                             f'(expected {expected})')
    return tuple(x_shape[a] if a in axes else 1 for a in range(len(x_shape)))


def batch_norm(x, gamma, beta, moving_mean, moving_var, training=False, momentum=0.99,
               eps=1e-3, axis=-1):
    """Normalise ``x`` per index of ``axis`` (the channels), over every other axis.

    ``gamma``, ``beta`` (C,) or None; ``moving_mean``, ``moving_var`` are raw arrays (C,). At
    training the batch's mean and (biased, as Keras 3) variance normalise, and the moving
    statistics are updated in place as ``m = momentum * m + (1 - momentum) * batch_value``.
    """
    shape = as_array(x).shape
    axis = normalize_axes(axis, len(shape))
    broadcast = _check_parameters('batch_norm', shape, axis,
                                  (gamma, beta, moving_mean, moving_var))
    if not training:
        xp = get_array_module(moving_var)
        inv_std = 1 / xp.sqrt(moving_var.reshape(broadcast) + moving_var.dtype.type(eps))
        y = (x - moving_mean.reshape(broadcast)) * inv_std
        return _affine(y, gamma, beta, broadcast)
    fn = Standardize(tuple(a for a in range(len(shape)) if a not in axis), eps)
    y = fn(x)
    for moving, batch in ((moving_mean, fn.mean), (moving_var, fn.var)):
        moving *= momentum
        moving += (1 - momentum) * batch.reshape(moving.shape).astype(moving.dtype)
    return _affine(y, gamma, beta, broadcast)


def layer_norm(x, gamma=None, beta=None, axis=-1, eps=1e-3, rms_scaling=False):
    """Normalise each example over ``axis`` (an int or a tuple: the features), then scale by
    ``gamma`` and shift by ``beta``, both shaped as those axes of ``x``.

    ``rms_scaling`` is Keras 3's variant: ``x / sqrt(var + eps) * gamma`` (not centred, no beta).
    """
    shape = as_array(x).shape
    axes = normalize_axes(axis, len(shape))
    broadcast = _check_parameters('layer_norm', shape, axes, (gamma, beta))
    if not rms_scaling:
        return _affine(standardize(x, axes, eps), gamma, beta, broadcast)
    centred = x - mean(x, axes, keepdims=True)
    return _affine(x / sqrt(mean(centred * centred, axes, keepdims=True) + eps), gamma, None,
                   broadcast)
