"""Elementwise arithmetic and matrix product.

Binary operations broadcast like NumPy; their gradients are summed back to each input's shape
(:func:`unbroadcast`), which is where a bias shared by every row gets its summed gradient.
"""
from minidl.autograd import Function
from minidl.backends import get_array_module


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, to get ``shape``."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Broadcasting(Function):
    """A binary elementwise op: checks the shapes, then ``compute`` and ``partials``.

    ``partials(a, b, y, gy)`` returns the gradient for each input at the broadcast shape;
    the base class reduces them to the inputs' shapes.
    """

    def forward(self, a, b):
        xp = get_array_module(a, b)
        try:
            xp.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f'{type(self).__name__.lower()}: shapes {tuple(a.shape)} and '
                             f'{tuple(b.shape)} cannot be broadcast together') from None
        self.a, self.b = a, b
        self.y = self.compute(a, b)
        return self.y

    def backward(self, gy):
        grads = self.partials(self.a, self.b, self.y, gy)
        return tuple(unbroadcast(g, x.shape) if need and g is not None else None
                     for g, x, need in zip(grads, (self.a, self.b), self.needs_input_grad))


class Add(Broadcasting):
    compute = staticmethod(lambda a, b: a + b)
    partials = staticmethod(lambda a, b, y, gy: (gy, gy))


class Sub(Broadcasting):
    compute = staticmethod(lambda a, b: a - b)
    partials = staticmethod(lambda a, b, y, gy: (gy, -gy))


class Mul(Broadcasting):
    compute = staticmethod(lambda a, b: a * b)
    partials = staticmethod(lambda a, b, y, gy: (gy * b, gy * a))


class Div(Broadcasting):
    compute = staticmethod(lambda a, b: a / b)
    partials = staticmethod(lambda a, b, y, gy: (gy / b, -gy * y / b))


class Pow(Broadcasting):
    """``a ** b``; the gradient for ``b`` uses ``log(a)`` and so needs ``a > 0``."""

    compute = staticmethod(lambda a, b: a ** b)

    def partials(self, a, b, y, gy):
        xp = get_array_module(a)
        ga = gy * b * a ** (b - 1)
        gb = gy * y * xp.log(xp.where(a > 0, a, 1)) if self.needs_input_grad[1] else None
        return ga, gb


class Maximum(Broadcasting):
    """Elementwise max; on ties the gradient goes to the first argument."""

    compute = staticmethod(lambda a, b: get_array_module(a).maximum(a, b))
    partials = staticmethod(lambda a, b, y, gy: (gy * (a >= b), gy * (a < b)))


class Minimum(Broadcasting):
    """Elementwise min; on ties the gradient goes to the first argument."""

    compute = staticmethod(lambda a, b: get_array_module(a).minimum(a, b))
    partials = staticmethod(lambda a, b, y, gy: (gy * (a <= b), gy * (a > b)))


class Unary(Function):
    """A one-input elementwise op given by ``compute(x)`` and ``derivative(x, y)``."""

    def forward(self, x):
        self.x = x
        self.y = self.compute(get_array_module(x), x)
        return self.y

    def backward(self, gy):
        return gy * self.derivative(get_array_module(gy), self.x, self.y)


class Neg(Unary):
    compute = staticmethod(lambda xp, x: -x)
    derivative = staticmethod(lambda xp, x, y: -1)


class Exp(Unary):
    compute = staticmethod(lambda xp, x: xp.exp(x))
    derivative = staticmethod(lambda xp, x, y: y)


class Log(Unary):
    compute = staticmethod(lambda xp, x: xp.log(x))
    derivative = staticmethod(lambda xp, x, y: 1 / x)


class Sqrt(Unary):
    compute = staticmethod(lambda xp, x: xp.sqrt(x))
    derivative = staticmethod(lambda xp, x, y: 0.5 / y)


class Abs(Unary):
    compute = staticmethod(lambda xp, x: xp.abs(x))
    derivative = staticmethod(lambda xp, x, y: xp.sign(x))


class Clip(Unary):
    """Clamp to ``[low, high]``; the gradient passes only where the value was inside."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def compute(self, xp, x):
        return xp.clip(x, self.low, self.high)

    def derivative(self, xp, x, y):
        return (x >= self.low) & (x <= self.high)


class MatMul(Function):
    """Matrix product ``a @ b`` of 2-D (or batched) arrays; GEMM is BLAS or cuBLAS."""

    def forward(self, a, b):
        if a.ndim < 1 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise ValueError(f'matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not '
                             f'aligned (last axis of the first must equal the second-to-last '
                             f'axis of the second)')
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        xp = get_array_module(gy)
        a = self.a if self.a.ndim > 1 else self.a[None]
        gy2 = gy if self.a.ndim > 1 else gy[..., None, :]
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(gy2 @ xp.swapaxes(self.b, -1, -2), a.shape).reshape(self.a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(xp.swapaxes(a, -1, -2) @ gy2, self.b.shape)
        return ga, gb


def add(a, b): return Add()(a, b)
def sub(a, b): return Sub()(a, b)
def mul(a, b): return Mul()(a, b)
def div(a, b): return Div()(a, b)
def pow(a, b): return Pow()(a, b)  # noqa: A001 - mirrors the operator it implements
def maximum(a, b): return Maximum()(a, b)
def minimum(a, b): return Minimum()(a, b)
def neg(x): return Neg()(x)
def exp(x): return Exp()(x)
def log(x): return Log()(x)
def sqrt(x): return Sqrt()(x)
def abs(x): return Abs()(x)  # noqa: A001
def clip(x, low, high): return Clip(low, high)(x)
def matmul(a, b): return MatMul()(a, b)
