"""Constraints: projections that keep a weight in a set, applied after every update (Keras's).

A constraint is a callable ``c(w) -> array of w's shape`` on a weight's array (NumPy or CuPy).
Layers take one by name or as an object, as in ``Dense(64, kernel_constraint=MaxNorm(3))``, and
the optimizer applies it to the weight right after each update, so the weight meets it between
any two training steps.

The classic one is max-norm, from the dropout paper (Srivastava et al., 2014): the weights
into each unit may not grow past a fixed length, which lets a large learning rate and dropout
work together without the weights blowing up. For a Dense kernel (in, units) the weights into
a unit are a column, so the norm is taken over ``axis=0``; for a Conv2D kernel
(kh, kw, cin, filters) it is taken over ``axis=[0, 1, 2]``, one norm per filter.
"""
from minidl.backends import get_array_module
from minidl.utils import Configurable, Registry

EPSILON = 1e-7  # Keras's fuzz factor: keeps the rescaling finite for an all-zero slice


class Constraint(Configurable):
    """Base class: ``__call__(w)`` returns the projected array; this one changes nothing."""

    def __call__(self, w):
        return w


class _NormConstraint(Constraint):
    """Rescales each slice of ``w`` along ``axis`` from its L2 norm to ``target(norm)``."""

    def __init__(self, axis=0):
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)

    def __call__(self, w):
        xp = get_array_module(w)
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        norms = xp.sqrt(xp.sum(w * w, axis=axis, keepdims=True))
        return w * (self.target(xp, norms) / (EPSILON + norms))

    def target(self, xp, norms):
        raise NotImplementedError(f'{type(self).__name__} must define target()')


class MaxNorm(_NormConstraint):
    """Each slice along ``axis`` has L2 norm at most ``max_value``; longer ones are scaled
    down onto that sphere."""

    def __init__(self, max_value=2, axis=0):
        super().__init__(axis)
        self.max_value = float(max_value)

    def target(self, xp, norms):
        return xp.clip(norms, 0, self.max_value)


class UnitNorm(_NormConstraint):
    """Each slice along ``axis`` is scaled to L2 norm 1."""

    def target(self, xp, norms):
        return xp.ones_like(norms)


class MinMaxNorm(_NormConstraint):
    """Each slice's norm is moved into ``[min_value, max_value]``; ``rate`` < 1 moves it only
    that fraction of the way, each step."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        super().__init__(axis)
        self.min_value, self.max_value, self.rate = float(min_value), float(max_value), float(rate)

    def target(self, xp, norms):
        return self.rate * xp.clip(norms, self.min_value, self.max_value) + \
            (1 - self.rate) * norms


class NonNeg(Constraint):
    """Negative entries become zero."""

    def __call__(self, w):
        return get_array_module(w).maximum(w, 0)


# Keras's other spellings: ``maxnorm`` is Keras 1's, ``max_norm`` Keras 2's.
max_norm = maxnorm = MaxNorm
unit_norm = unitnorm = UnitNorm
min_max_norm = MinMaxNorm
non_neg = nonneg = NonNeg

_REGISTRY = Registry('constraint', {'MaxNorm': MaxNorm, 'UnitNorm': UnitNorm,
                                    'MinMaxNorm': MinMaxNorm, 'NonNeg': NonNeg})


def get(identifier):
    """A constraint from a name (``'max_norm'``, ``'MaxNorm'``, ``'non_neg'``, ...; case and
    underscores do not matter), a Keras-style config dict (``{'class_name': 'MaxNorm',
    'config': {'max_value': 3}}``) or any callable, returned as is. ``None`` stays ``None``."""
    if identifier is None or callable(identifier):
        return identifier
    return _REGISTRY.build(identifier, 'a callable c(w)')


def serialize(constraint):
    """The config dict that :func:`get` turns back into ``constraint`` (``None`` for none)."""
    return _REGISTRY.serialize(constraint, Constraint)
