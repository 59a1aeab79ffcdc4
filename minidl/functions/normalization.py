"""Normalisation: batch normalisation (statistics over the batch, per channel) and layer
normalisation (statistics over the features, per example).

Both rest on one primitive, :class:`Standardize` - ``(x - mean) / sqrt(var + eps)`` over some
axes, with its backward - and add the learned ``gamma * xhat + beta`` by composition. Batch
normalisation at training also folds the batch's statistics into moving averages (in place,
like PyTorch's ``F.batch_norm``); at inference it uses them, which makes it an affine map.
In a distributed ``fit``, a synchronized batch normalisation takes its statistics over the
global batch, every rank's piece together (Keras 3's ``synchronized=True``).
"""
import math

import numpy as np

from minidl.autograd import Function, as_array
from minidl.backends import get_array_module
from minidl.distributed.data_parallel import active
from minidl.functions.math import sqrt
from minidl.functions.reduce import mean, normalize_axes
from minidl.functions.shape import reshape


class Standardize(Function):
    """``xhat = (x - mean) / sqrt(var + eps)``, the statistics taken over ``axes`` (the
    variance without Bessel's correction, as Keras normalises).

    Backward, with ``g`` the incoming gradient and means over ``axes``:
    ``dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)``.

    ``parallel`` (the running :class:`~minidl.distributed.DataParallel`, or None) takes the
    statistics over every rank's batch: the sums become all-reduces, rank ``r`` weighting its
    ``n_r`` values per statistic by ``w_r = parallel.weight`` (0 for a Weightless batch), so
    ``N = sum_r w_r n_r``. The variance takes a second pass, around the global mean, as a
    single process computes it. Rank ``q``'s ``g`` is the gradient of its own mean loss, which
    the gradient average weights by ``s_q = w_q n_q / N``; so rank ``r``'s backward takes
    ``sum_q s_q sum(g_q) / n_r`` (and the same of ``g * xhat``) for ``mean(g)``: the global
    mean where the pieces are even, and exactly the single-process gradient where they are
    not. Dividing by ``n_r``, never 0, keeps a Weightless rank's ``dx`` finite for the average
    to multiply by 0.
    """

    def __init__(self, axes, eps, parallel=None):
        self.axes, self.eps, self.parallel = axes, eps, parallel

    def forward(self, x):
        xp = get_array_module(x)
        self.weight = x.dtype.type(1 if self.parallel is None else self.parallel.weight)
        self.count = math.prod(x.shape[a] for a in self.axes)
        total, self.total = self._sum([self.weight * x.sum(axis=self.axes, keepdims=True),
                                       xp.asarray(self.weight * self.count, x.dtype)],
                                      'the sums of a synchronized batch normalisation')
        self.mean = total / self.total
        centred = x - self.mean
        squares, = self._sum([self.weight * (centred * centred).sum(axis=self.axes,
                                                                    keepdims=True)],
                             'the squares of a synchronized batch normalisation')
        self.var = squares / self.total
        self.inv_std = 1 / xp.sqrt(self.var + x.dtype.type(self.eps))
        self.xhat = centred * self.inv_std
        return self.xhat

    def backward(self, gy):
        xhat = self.xhat
        share = self.weight * self.count / self.total
        g, gx = self._sum([share * gy.sum(axis=self.axes, keepdims=True),
                           share * (gy * xhat).sum(axis=self.axes, keepdims=True)],
                          'the gradients of a synchronized batch normalisation')
        count = gy.dtype.type(self.count)
        return self.inv_std * (gy - g / count - xhat * (gx / count))

    def _sum(self, parts, what):
        """``parts`` summed over every rank, packed into one all-reduce (``what`` names it in
        a timeout); ``parts`` themselves without ``parallel``."""
        if self.parallel is None:
            return parts
        xp = get_array_module(parts[0])
        buffer = xp.concatenate([part.ravel() for part in parts])
        self.parallel.comm.allreduce(buffer, what)
        pieces = xp.split(buffer, np.cumsum([part.size for part in parts])[:-1].tolist())
        return [piece.reshape(part.shape) for piece, part in zip(pieces, parts)]


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
               eps=1e-3, axis=-1, synchronized=False):
    """Normalise ``x`` per index of ``axis`` (the channels), over every other axis.

    ``gamma``, ``beta`` (C,) or None; ``moving_mean``, ``moving_var`` are raw arrays (C,). At
    training the batch's mean and (biased, as Keras 3) variance normalise, and the moving
    statistics are updated in place as ``m = momentum * m + (1 - momentum) * batch_value``.
    ``synchronized``: in a distributed ``fit``, the batch is the global one, every rank's
    piece together (see :class:`Standardize`), so the moving statistics stay equal on every
    rank; elsewhere it changes nothing.
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
    fn = Standardize(tuple(a for a in range(len(shape)) if a not in axis), eps,
                     active() if synchronized else None)
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
