"""The kernels in plain NumPy: the readable specification the fast versions are tested against.

Every function here has a twin of the same name and signature in :mod:`numba_cpu` (CPU) and
:mod:`cuda` (GPU); :mod:`minidl.backends.kernels` picks one. The code favours clarity over
speed: windows are strided views of the padded input, and each backward op is written as the
adjoint of its forward op. Every kernel keeps the dtype of its input (float32 stays float32).
Max pooling's argmax is the narrowest integer type that holds its positions
(:func:`argmax_dtype`); backward reads it back, so every byte saved is saved twice.

Geometry, shared by all windowed kernels: images are channels-last ``(N, H, W, C)``,
``ksize=(kh, kw)``, ``stride=(sh, sw)``, ``pad=((top, bottom), (left, right))``,
``dilation=(dh, dw)``, and the output has ``OH = (H + top + bottom - dh*(kh-1) - 1) // sh + 1``
rows (likewise ``OW``).
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ACTIVATIONS = ('linear', 'relu', 'sigmoid', 'tanh')


# ---------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------

def output_size(size, k, stride, pad, dilation=1):
    """Window positions along one axis: ``(size + before + after - d*(k-1) - 1) // s + 1``."""
    return (size + pad[0] + pad[1] - dilation * (k - 1) - 1) // stride + 1


def _pad(x, pad, value=0):
    """x (N, H, W, C) with ``pad`` rows/columns of ``value`` around H and W (same dtype)."""
    return np.pad(x, ((0, 0), tuple(pad[0]), tuple(pad[1]), (0, 0)), constant_values=value)


def _windows(xpad, ksize, stride, dilation, writeable=False):
    """View (N, OH, OW, kh, kw, C) of a padded image: ``[n, i, j, p, q, c]`` is
    ``xpad[n, i*sh + p*dh, j*sw + q*dw, c]``. No data is copied."""
    (kh, kw), (sh, sw), (dh, dw) = ksize, stride, dilation
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    view = sliding_window_view(xpad, span, axis=(1, 2), writeable=writeable)
    return view[:, ::sh, ::sw, :, ::dh, ::dw].transpose(0, 1, 2, 4, 5, 3)


def _inside(x_shape, ksize, stride, pad):
    """(1, OH, OW, kh, kw, 1) bool: whether each window's tap (p, q) reads the input, not its
    padding."""
    ones = np.ones((1,) + tuple(x_shape[1:3]) + (1,), bool)
    return _windows(_pad(ones, pad, False), ksize, stride, (1, 1))


def _window_counts(x_shape, ksize, stride, pad, dtype):
    """(1, OH, OW, 1): how many positions of each window lie inside the unpadded input."""
    return _inside(x_shape, ksize, stride, pad).sum(axis=(3, 4), dtype=dtype)


def im2col(x, ksize, stride, pad, dilation):
    """x (N, H, W, C) -> cols (N, OH, OW, kh, kw, C), C-contiguous, zeros where padding is read.

    ``cols[n, i, j, p, q, c] = xpad[n, i*sh + p*dh, j*sw + q*dw, c]``: each output position's
    receptive field laid out in a row, so a convolution becomes one matrix product.
    """
    return np.ascontiguousarray(_windows(_pad(x, pad), ksize, stride, dilation))


def col2im(cols, x_shape, ksize, stride, pad, dilation):
    """cols (N, OH, OW, kh, kw, C) -> dx (N, H, W, C), the adjoint of :func:`im2col`.

    Every column entry is added to the input element it was read from; entries that read
    padding are dropped. Within one tap (p, q) the windows read distinct elements, so the
    taps are accumulated one at a time into the same window view that im2col copies.
    """
    n, h, w, c = x_shape
    (top, bottom), (left, right) = pad
    dxpad = np.zeros((n, h + top + bottom, w + left + right, c), cols.dtype)
    windows = _windows(dxpad, ksize, stride, dilation, writeable=True)
    for p in range(ksize[0]):
        for q in range(ksize[1]):
            windows[:, :, :, p, q] += cols[:, :, :, p, q]
    return np.ascontiguousarray(dxpad[:, top:top + h, left:left + w])


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------

def argmax_dtype(positions):
    """The index dtype of a max pooling's argmax, for values in ``[0, positions)``: uint8 up to
    256 positions (every window up to 16x16), int32 up to 2**31, int64 beyond.

    The argmax is written once per output by the forward pass and read once by the backward
    pass; as int64 it is twice the bytes of a float32 output, as uint8 a quarter of them.
    """
    if positions <= 2**8:
        return np.dtype(np.uint8)
    return np.dtype(np.int32 if positions <= 2**31 else np.int64)


def maxpool2d_forward(x, ksize, stride, pad):
    """x (N, H, W, C) -> y (N, OH, OW, C) and argmax (N, OH, OW, C) of
    ``argmax_dtype(kh * kw)``.

    ``argmax`` is the flat position ``p*kw + q`` of the winner inside its window: the first
    position (row-major) inside the input that holds the maximum, so padding never wins, even
    over a window of -inf. A NaN beats every number (as in ``np.argmax``), so a NaN input
    reaches the loss.
    """
    windows = _windows(_pad(x, pad, -np.inf), ksize, stride, (1, 1))
    n, oh, ow, kh, kw, c = windows.shape
    flat = windows.reshape(n, oh, ow, kh * kw, c)
    y = flat.max(axis=3)
    inside = _inside(x.shape, ksize, stride, pad).reshape(1, oh, ow, kh * kw, 1)
    wins = inside & ((flat == y[:, :, :, None]) | np.isnan(flat))
    return y, wins.argmax(axis=3).astype(argmax_dtype(kh * kw))


def maxpool2d_backward(dy, argmax, x_shape, ksize, stride, pad):
    """dy (N, OH, OW, C) -> dx (N, H, W, C): each dy goes to its window's winner, and inputs
    that win several overlapping windows collect the sum."""
    n, oh, ow, c = dy.shape
    kh, kw = ksize
    cols = np.zeros((n, oh, ow, kh * kw, c), dy.dtype)
    np.put_along_axis(cols, argmax[:, :, :, None], dy[:, :, :, None], axis=3)
    return col2im(cols.reshape(n, oh, ow, kh, kw, c), x_shape, ksize, stride, pad, (1, 1))


def avgpool2d_forward(x, ksize, stride, pad):
    """x (N, H, W, C) -> y (N, OH, OW, C): the mean over each window's positions inside the
    input (padding is left out of the divisor, as in TF/Keras 'same')."""
    total = _windows(_pad(x, pad), ksize, stride, (1, 1)).sum(axis=(3, 4))
    return total / _window_counts(x.shape, ksize, stride, pad, x.dtype)


def avgpool2d_backward(dy, x_shape, ksize, stride, pad):
    """dy (N, OH, OW, C) -> dx (N, H, W, C), the adjoint of :func:`avgpool2d_forward`: each
    window spreads ``dy / count`` over its positions."""
    share = dy / _window_counts(x_shape, ksize, stride, pad, dy.dtype)
    cols = np.broadcast_to(share[:, :, :, None, None, :], share.shape[:3] + tuple(ksize)
                           + share.shape[3:])
    return col2im(cols, x_shape, ksize, stride, pad, (1, 1))


def global_maxpool_forward(x):
    """x (N, L, C) -> y (N, C) the maximum over L, argmax (N, C) of ``argmax_dtype(L)``
    (first on ties; a NaN beats every number)."""
    argmax = x.argmax(axis=1)
    y = np.take_along_axis(x, argmax[:, None], axis=1)[:, 0]
    return y, argmax.astype(argmax_dtype(x.shape[1]))


def global_maxpool_backward(dy, argmax, L):
    """dy (N, C) -> dx (N, L, C), zero except ``dx[n, argmax[n, c], c] = dy[n, c]``."""
    n, c = dy.shape
    dx = np.zeros((n, L, c), dy.dtype)
    np.put_along_axis(dx, argmax[:, None], dy[:, None], axis=1)
    return dx


# ---------------------------------------------------------------------------------------------
# Bias + activation
# ---------------------------------------------------------------------------------------------

def _sigmoid(z):
    """1 / (1 + exp(-z)) without overflow: exp only ever sees -|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


_ACTIVATE = {
    'linear': lambda z: z,
    'relu': lambda z: np.maximum(z, 0, out=z),
    'sigmoid': _sigmoid,
    'tanh': lambda z: np.tanh(z, out=z),
}

# The derivative of each activation, written with its output y (what the backward pass keeps).
_DERIVATIVE_TIMES = {
    'linear': lambda dy, y: dy.copy(),
    'relu': lambda dy, y: dy * (y > 0),
    'sigmoid': lambda dy, y: dy * y * (1 - y),
    'tanh': lambda dy, y: dy * (1 - y * y),
}


def bias_act_forward(x, b, activation):
    """x (..., C), b (C,) or None -> y = act(x + b) (same shape), act one of ACTIVATIONS."""
    z = x.copy() if b is None else x + b
    return _ACTIVATE[activation](z)


def bias_act_backward(dy, y, activation):
    """dy, y (..., C) -> dz, the gradient w.r.t. the pre-activation z = x + b, from the output."""
    return _DERIVATIVE_TIMES[activation](dy, y)


# ---------------------------------------------------------------------------------------------
# Dropout masks from a counter-based RNG
# ---------------------------------------------------------------------------------------------

def mix32(x):
    """The 'lowbias32' integer hash on a uint32 array, arithmetic wrapping mod 2**32."""
    x = x ^ (x >> 16)
    x = x * np.uint32(0x7FEB352D)
    x ^= x >> 15
    x *= np.uint32(0x846CA68B)
    x ^= x >> 16
    return x


def _uint32(value):
    """A one-element uint32 array holding ``value mod 2**32`` (arrays wrap without warnings)."""
    return np.array([int(value) & 0xFFFFFFFF], np.uint32)


def dropout_key(seed, step):
    """The per-mask key ``mix32(seed ^ mix32(step + 0x9E3779B9))`` as a uint32 array (1,)."""
    return mix32(_uint32(seed) ^ mix32(_uint32(step) + np.uint32(0x9E3779B9)))


def dropout_threshold(rate):
    """Hashes below this uint32 value drop their element: ``min(floor(rate * 2**32), 2**32-1)``."""
    return min(math.floor(rate * 2 ** 32), 2 ** 32 - 1)


def dropout_mask(shape, rate, seed, step, dtype):
    """Inverted-dropout mask of ``shape``: ``1/(1-rate)`` where kept, 0 where dropped.

    Element i (flat, C order) is kept when ``mix32(i ^ key) >= threshold``: a pure function of
    (seed, step, i), so every implementation draws the same mask bit for bit.
    """
    size = int(np.prod(shape))
    index = np.arange(size, dtype=np.uint64).astype(np.uint32)
    keep = mix32(index ^ dropout_key(seed, step)) >= np.uint32(dropout_threshold(rate))
    scale = np.dtype(dtype).type(1.0 / (1.0 - rate))
    return np.where(keep, scale, np.dtype(dtype).type(0)).reshape(shape)


# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy
# ---------------------------------------------------------------------------------------------

def softmax_xent_forward(logits, target):
    """logits (N, K), target int64 (N,) or float (N, K) -> loss (N,), probs (N, K).

    The row maximum is subtracted first, so exp never overflows and the log-sum-exp is finite
    for any finite logits.
    """
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    probs = e / total
    log_probs = z - np.log(total)
    if target.ndim == 1:
        loss = -log_probs[np.arange(len(target)), target]
    else:
        loss = -(target * log_probs).sum(axis=1)
    return loss, probs


def softmax_xent_backward(probs, target, g):
    """probs (N, K), target (N,) or (N, K), g (N,) -> dlogits (N, K).

    ``g * (probs - onehot)`` for class indices; ``g * (probs * sum(target) - target)`` for
    distributions (the sum is 1 for one-hot rows).
    """
    if target.ndim == 1:
        d = probs.copy()
        d[np.arange(len(target)), target] -= 1
        return g[:, None] * d
    return g[:, None] * (probs * target.sum(axis=1, keepdims=True) - target)


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------

def embedding_backward(ids, dy, vocab_size):
    """ids (S...) integers, dy (S..., D) -> dW (vocab_size, D); repeated ids add up, in order."""
    d = dy.shape[-1]
    dW = np.zeros((vocab_size, d), dy.dtype)
    np.add.at(dW, ids.reshape(-1), dy.reshape(-1, d))
    return dW


# ---------------------------------------------------------------------------------------------
# Optimizer updates (in place; hyperparameters become Python floats so float32 stays float32)
# ---------------------------------------------------------------------------------------------

def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """Keras SGD: ``v = momentum*v - lr*g``, then ``param += v`` (or, with Nesterov,
    ``param += momentum*v - lr*g``); without momentum ``param -= lr*g`` and velocity is unused."""
    lr, momentum = float(lr), float(momentum)
    if momentum == 0:
        param -= lr * grad
        return
    velocity *= momentum
    velocity -= lr * grad
    param += momentum * velocity - lr * grad if nesterov else velocity


def rmsprop_update(param, grad, sq_avg, avg_grad, velocity, lr, rho, momentum, eps):
    """Keras RMSprop: ``a = rho*a + (1-rho)*g*g``, the step ``s = lr*g / sqrt(a + eps)``, or
    centered (``avg_grad`` given) ``mg = rho*mg + (1-rho)*g``, ``s = lr*g / sqrt(a - mg*mg +
    eps)``; then ``param -= s``, or with momentum (``velocity`` given) ``vel = momentum*vel + s``,
    ``param -= vel``."""
    lr, rho, momentum, eps = float(lr), float(rho), float(momentum), float(eps)
    sq_avg *= rho
    sq_avg += (1 - rho) * grad * grad
    if avg_grad is None:
        denominator = sq_avg + eps
    else:
        avg_grad *= rho
        avg_grad += (1 - rho) * grad
        denominator = sq_avg - avg_grad * avg_grad + eps
    step = lr * grad / np.sqrt(denominator)
    if velocity is None:
        param -= step
        return
    velocity *= momentum
    velocity += step
    param -= velocity


def adam_update(param, grad, m, v, v_max, lr, beta1, beta2, eps, t):
    """Adam at 1-based step t: ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g*g``, then
    ``param -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)``; AMSGrad (``v_max``
    given) keeps ``v_max = max(v_max, v)`` and divides by ``sqrt(v_max)`` instead."""
    beta1, beta2, eps = float(beta1), float(beta2), float(eps)
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    if v_max is not None:
        np.maximum(v_max, v, out=v_max)
        v = v_max
    param -= adam_step_size(lr, beta1, beta2, t) * m / (np.sqrt(v) + eps)


def adam_step_size(lr, beta1, beta2, t):
    """``lr * sqrt(1 - b2**t) / (1 - b1**t)``: Adam's bias corrections folded into one float."""
    return float(lr) * math.sqrt(1 - float(beta2) ** t) / (1 - float(beta1) ** t)


def adagrad_update(param, grad, accumulator, lr, eps):
    """Adagrad: ``acc += g*g``; ``param -= lr*g / sqrt(acc + eps)``, so each coordinate's
    step shrinks with the sum of its squared gradients so far."""
    lr, eps = float(lr), float(eps)
    accumulator += grad * grad
    param -= lr * grad / np.sqrt(accumulator + eps)


def adadelta_update(param, grad, sq_avg, delta_sq_avg, lr, rho, eps):
    """Adadelta: ``a = rho*a + (1-rho)*g*g``; the step ``d = sqrt(D + eps) / sqrt(a + eps) * g``
    has the units of the weight; ``D = rho*D + (1-rho)*d*d``; ``param -= lr*d``."""
    lr, rho, eps = float(lr), float(rho), float(eps)
    sq_avg *= rho
    sq_avg += (1 - rho) * grad * grad
    delta = np.sqrt(delta_sq_avg + eps) / np.sqrt(sq_avg + eps) * grad
    delta_sq_avg *= rho
    delta_sq_avg += (1 - rho) * delta * delta
    param -= lr * delta


def adamax_update(param, grad, m, u, lr, beta1, beta2, eps, t):
    """Adamax at 1-based step t: ``m = b1*m + (1-b1)*g``, the infinity norm
    ``u = max(b2*u, |g|)``, ``param -= lr / (1 - b1**t) * m / (u + eps)``."""
    beta1, beta2, eps = float(beta1), float(beta2), float(eps)
    m *= beta1
    m += (1 - beta1) * grad
    np.maximum(beta2 * u, np.abs(grad), out=u)
    param -= float(lr) / (1 - beta1 ** t) * m / (u + eps)


def nadam_update(param, grad, m, v, lr, beta1, beta2, eps, t, u_product):
    """Nadam (Dozat) at 1-based step t, ``u_product`` the product of the momenta ``mu_1..mu_t``
    (see :func:`nadam_coefficients`): Adam's moments, then a Nesterov look-ahead
    ``param -= (c_m*m + c_g*g) / (sqrt(v * c_v) + eps)``."""
    eps = float(eps)
    c_m, c_g, c_v = nadam_coefficients(lr, beta1, beta2, t, u_product)
    m *= float(beta1)
    m += (1 - float(beta1)) * grad
    v *= float(beta2)
    v += (1 - float(beta2)) * grad * grad
    param -= (c_m * m + c_g * grad) / (np.sqrt(v * c_v) + eps)


def nadam_momentum(beta1, t):
    """Nadam's momentum at step t, ``mu_t = b1 * (1 - 0.5 * 0.96**t)``, warming up to b1."""
    return float(beta1) * (1 - 0.5 * 0.96 ** t)


def nadam_coefficients(lr, beta1, beta2, t, u_product):
    """``(c_m, c_g, c_v)`` of Nadam's step t: ``lr * mu_{t+1} / (1 - u_product * mu_{t+1})``,
    ``lr * (1 - mu_t) / (1 - u_product)`` and ``1 / (1 - b2**t)``, as Keras computes them."""
    lr, u_product = float(lr), float(u_product)
    mu_t, mu_next = nadam_momentum(beta1, t), nadam_momentum(beta1, t + 1)
    return (lr * mu_next / (1 - u_product * mu_next), lr * (1 - mu_t) / (1 - u_product),
            1 / (1 - float(beta2) ** t))
