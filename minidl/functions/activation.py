"""Activations: the fused bias + activation op, softmax, and every Keras activation by name.

``relu``, ``sigmoid`` and ``tanh`` are :class:`BiasActivation` without a bias, so each of those
formulas lives once, in the kernels (``bias_act_forward/backward``), and its derivative is taken
from the output ``y`` alone (e.g. ``y * (1 - y)`` for the sigmoid). Softmax, log-softmax,
softplus and erf are the other primitives, each with its backward beside its forward; every
other Keras activation is a composition of these and of :mod:`minidl.functions.math`, so its
gradient is autograd's. ``activation=`` takes any name in :data:`ACTIVATIONS` or a callable.
"""
import math

from minidl.autograd import Function
from minidl.backends import get_array_module, kernels
from minidl.functions.math import Unary, abs as abs_, clip, exp, minimum

KERNEL_ACTIVATIONS = ('linear', 'relu', 'sigmoid', 'tanh')
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805  # Klambauer et al., 2017


def sum_rows(a):
    """(..., C) -> (C,): the sum over every position, as a bias gradient needs.

    Written as the product ``ones @ rows``: BLAS computes it about ten times faster than
    NumPy's reduction over axis 0, which adds one short row at a time.
    """
    rows = a.reshape(-1, a.shape[-1])
    return get_array_module(a).ones(rows.shape[0], a.dtype) @ rows


class BiasActivation(Function):
    """``y = act(x + b)`` over the last axis of ``x`` (..., C) with ``b`` (C,), in one pass."""

    def __init__(self, activation):
        self.activation = activation

    def forward(self, x, b=None):
        if b is not None and b.shape != x.shape[-1:]:
            raise ValueError(f'bias_act: bias of shape {tuple(b.shape)} does not match the last '
                             f'axis of an input of shape {tuple(x.shape)}')
        self.y = kernels.bias_act_forward(x, b, self.activation)
        return self.y

    def backward(self, gy):
        dz = kernels.bias_act_backward(gy, self.y, self.activation)
        if len(self.needs_input_grad) == 1:
            return dz
        return dz, sum_rows(dz) if self.needs_input_grad[1] else None


class Softmax(Function):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``: stable for logits of any size."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        return self.y * (gy - (gy * self.y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """``x - logsumexp(x)`` along ``axis``, computed after subtracting the maximum."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


class Softplus(Unary):
    """``log(1 + e^x)`` as ``logaddexp(0, x)`` (no overflow, tiny values kept); its derivative,
    the sigmoid, is ``1 - e^-y`` from the output."""

    compute = staticmethod(lambda xp, x: xp.logaddexp(0, x))
    derivative = staticmethod(lambda xp, x, y: -xp.expm1(-y))


class Erf(Unary):
    """The error function ``2/sqrt(pi) * integral_0^x e^(-t^2) dt`` to about 1e-14 (NumPy has
    none): for ``|x| < 2.5`` the series ``e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))``,
    whose terms are all positive; beyond, ``1 - erfc(x)`` from erfc's continued fraction
    ``e^(-x^2) / sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))``."""

    CUT, SERIES_TERMS, FRACTION_DEPTH = 2.5, 40, 25

    def compute(self, xp, x):
        a = xp.abs(x)
        small, large = xp.minimum(a, self.CUT), xp.maximum(a, self.CUT)
        term, total, ratio = small, small, 2 * small * small
        for n in range(1, self.SERIES_TERMS):
            term = term * ratio / (2 * n + 1)
            total = total + term
        series = (2 / math.sqrt(math.pi)) * xp.exp(-small * small) * total
        fraction = large
        for k in range(self.FRACTION_DEPTH, 0, -1):
            fraction = large + (k / 2) / fraction
        tail = 1 - xp.exp(-large * large) / (math.sqrt(math.pi) * fraction)
        return (xp.sign(x) * xp.where(a < self.CUT, series, tail)).astype(x.dtype)

    def derivative(self, xp, x, y):
        return (2 / math.sqrt(math.pi)) * xp.exp(-x * x)


def _where(condition, a, b):
    """``a`` where the constant array ``condition`` holds, else ``b``; each of the two gets a
    gradient only where it was chosen."""
    chosen = condition.astype(a.dtype)
    return a * chosen + b * (1 - chosen)


def linear(x): return x
def relu(x): return BiasActivation('relu')(x)
def sigmoid(x): return BiasActivation('sigmoid')(x)
def tanh(x): return BiasActivation('tanh')(x)
def softmax(x, axis=-1): return Softmax(axis)(x)
def log_softmax(x, axis=-1): return LogSoftmax(axis)(x)
def softplus(x): return Softplus()(x)
def erf(x): return Erf()(x)


def elu(x, alpha=1.0):
    """``x`` above 0, ``alpha * (e^x - 1)`` below (the exponential sees only ``x <= 0``)."""
    return _where(x.data > 0, x, alpha * (exp(minimum(x, 0.0)) - 1))


def selu(x):
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


def softsign(x): return x / (1 + abs_(x))
def silu(x): return x * sigmoid(x)
def exponential(x): return exp(x)
def relu6(x): return minimum(relu(x), 6.0)
def mish(x): return x * tanh(softplus(x))
def log_sigmoid(x): return -softplus(-x)


def leaky_relu(x, negative_slope=0.2):
    """``x`` above 0, ``negative_slope * x`` below: ``x`` times a constant slope per element."""
    xp = get_array_module(x.data)
    return x * xp.where(x.data > 0, 1, negative_slope).astype(x.dtype)


def hard_sigmoid(x):
    """Keras 3's ``relu6(x + 3) / 6``: 0 below -3, 1 above 3 (tf-keras used
    ``clip(0.2 x + 0.5, 0, 1)``, steeper, saturating at +-2.5)."""
    return clip(x + 3, 0.0, 6.0) / 6


def hard_silu(x): return x * hard_sigmoid(x)


def gelu(x, approximate=False):
    """``x * Phi(x)``, Phi the standard normal CDF, ``0.5 x (1 + erf(x / sqrt 2))`` (Keras's
    default); ``approximate=True``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    if approximate:
        return 0.5 * x * (1 + tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * (x * x * x))))
    return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))


ACTIVATIONS = {
    'linear': linear, 'relu': relu, 'sigmoid': sigmoid, 'tanh': tanh, 'softmax': softmax,
    'log_softmax': log_softmax, 'elu': elu, 'selu': selu, 'softplus': softplus,
    'softsign': softsign, 'silu': silu, 'swish': silu, 'gelu': gelu,
    'hard_sigmoid': hard_sigmoid, 'hard_silu': hard_silu, 'hard_swish': hard_silu,
    'exponential': exponential, 'leaky_relu': leaky_relu, 'relu6': relu6, 'mish': mish,
    'log_sigmoid': log_sigmoid,
}
_NAMES = {function: name for name, function in reversed(ACTIVATIONS.items())}  # first wins


def check_activation(activation):
    """An activation as layers keep it: its name ('relu', 'gelu', ...; None is 'linear'), or a
    callable ``f(tensor) -> tensor``. One of this module's functions becomes its name, so that
    ``activation=F.relu`` fuses, saves and loads as ``'relu'`` does."""
    if activation is None:
        return 'linear'
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f'unknown activation {activation!r}; expected a callable or one '
                             f'of {", ".join(ACTIVATIONS)}')
        return activation
    if callable(activation):
        return _NAMES.get(activation, activation)
    raise TypeError(f'an activation must be a name or a callable, got {activation!r}')


def activation_function(activation):
    """The function computing ``activation`` (a name or a callable)."""
    activation = check_activation(activation)
    return ACTIVATIONS[activation] if isinstance(activation, str) else activation


def bias_act(x, b=None, activation='linear'):
    """``activation(x + b)``: one kernel pass for linear, relu, sigmoid and tanh; any other
    activation runs on the result of a plain bias add."""
    activation = check_activation(activation)
    if isinstance(activation, str) and activation in KERNEL_ACTIVATIONS:
        fn = BiasActivation(activation)
        return fn(x) if b is None else fn(x, b)
    z = x if b is None else BiasActivation('linear')(x, b)
    return activation_function(activation)(z)
