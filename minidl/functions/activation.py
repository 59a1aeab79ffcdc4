"""Activations: the fused bias + activation op, softmax and log-softmax.

``relu``, ``sigmoid`` and ``tanh`` are :class:`BiasActivation` without a bias, so each
activation's formula lives once, in the kernels (``bias_act_forward/backward``), and its
derivative is taken from the output ``y`` alone (e.g. ``y * (1 - y)`` for the sigmoid).
"""
from minidl.autograd import Function
from minidl.backends import get_array_module, kernels

KERNEL_ACTIVATIONS = ('linear', 'relu', 'sigmoid', 'tanh')
ACTIVATIONS = KERNEL_ACTIVATIONS + ('softmax',)


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


def check_activation(name):
    """Validate an activation name ('linear', 'relu', 'sigmoid', 'tanh', 'softmax', None)."""
    name = 'linear' if name is None else name
    if name not in ACTIVATIONS:
        raise ValueError(f'unknown activation {name!r}; expected one of {ACTIVATIONS}')
    return name


def bias_act(x, b=None, activation='linear'):
    """``activation(x + b)``; softmax runs after a plain bias add."""
    activation = check_activation(activation)
    if activation == 'softmax':
        return softmax(x if b is None else BiasActivation('linear')(x, b))
    fn = BiasActivation(activation)
    return fn(x) if b is None else fn(x, b)


def relu(x): return BiasActivation('relu')(x)
def sigmoid(x): return BiasActivation('sigmoid')(x)
def tanh(x): return BiasActivation('tanh')(x)
def softmax(x, axis=-1): return Softmax(axis)(x)
def log_softmax(x, axis=-1): return LogSoftmax(axis)(x)
