"""Finite-difference gradient checking, in float64 only.

``gradcheck(fn, inputs)`` projects the output onto a fixed random direction ``r`` so that one
backward pass gives the analytic gradient of the scalar ``L = sum(fn(*inputs) * r)``, then
compares it with central differences ``(L(x + eps) - L(x - eps)) / 2 eps``. ``mode='elementwise'``
perturbs every element; ``mode='directional'`` perturbs along one random direction, which is
cheap for big inputs (Chainer's ``check_backward`` does the same).
"""
import numpy as np

from minidl.autograd import Tensor, no_grad
from minidl.backends import get_array_module


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree."""


def _scalar_loss(fn, inputs, direction):
    with no_grad():
        out = fn(*inputs)
    return float((out.data * direction).sum())


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, mode='elementwise', seed=0):
    """Check ``fn``'s gradients w.r.t. every input tensor with ``requires_grad``.

    ``inputs`` are float64 Tensors. Returns True, or raises :class:`GradcheckError` naming the
    worst element (input, index, numeric and analytic values).
    """
    checked = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    for x in checked:
        if x.dtype != np.float64:
            raise TypeError(f'gradcheck needs float64 inputs (float32 differences are noise); '
                            f'got {x.dtype}')
    rng = np.random.default_rng(seed)
    for x in checked:
        x.grad = None
    out = fn(*inputs)
    xp = get_array_module(out.data)
    direction = xp.asarray(rng.standard_normal(out.shape))
    out.backward(direction)
    for position, x in enumerate(checked):
        analytic = xp.zeros_like(x.data) if x.grad is None else x.grad
        if mode == 'elementwise':
            _check_elementwise(fn, inputs, direction, x, position, analytic, eps, atol, rtol)
        elif mode == 'directional':
            _check_directional(fn, inputs, direction, x, position, analytic, eps, atol, rtol,
                               rng)
        else:
            raise ValueError(f"mode must be 'elementwise' or 'directional', got {mode!r}")
    return True


def _central_difference(fn, inputs, direction, x, step, eps):
    original = x.data.copy()
    x.data = original + eps * step
    plus = _scalar_loss(fn, inputs, direction)
    x.data = original - eps * step
    minus = _scalar_loss(fn, inputs, direction)
    x.data = original
    return (plus - minus) / (2 * eps)


def _check_elementwise(fn, inputs, direction, x, position, analytic, eps, atol, rtol):
    xp = get_array_module(x.data)
    numeric = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        step = xp.zeros_like(x.data)
        step[index] = 1.0
        numeric[index] = _central_difference(fn, inputs, direction, x, step, eps)
    analytic = np.asarray(analytic.get() if hasattr(analytic, 'get') else analytic)
    error = np.abs(numeric - analytic) - (atol + rtol * np.abs(numeric))
    if error.size and error.max() > 0:
        worst = np.unravel_index(np.argmax(error), error.shape)
        raise GradcheckError(f'gradient of input {position} (shape {x.shape}) is wrong at index '
                             f'{tuple(int(i) for i in worst)}: numeric {numeric[worst]:.8g}, '
                             f'analytic {analytic[worst]:.8g}')


def _check_directional(fn, inputs, direction, x, position, analytic, eps, atol, rtol, rng):
    xp = get_array_module(x.data)
    step = xp.asarray(rng.standard_normal(x.shape))
    numeric = _central_difference(fn, inputs, direction, x, step, eps)
    expected = float((analytic * step).sum())
    if abs(numeric - expected) > atol + rtol * abs(numeric):
        raise GradcheckError(f'directional derivative for input {position} (shape {x.shape}) '
                             f'is wrong: numeric {numeric:.8g}, analytic {expected:.8g}')
