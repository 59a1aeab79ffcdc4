"""Regularizers: penalties on a weight (or on a layer's output) added to the training loss.

``Dense(64, kernel_regularizer=regularizers.l2(1e-4))`` adds ``1e-4 * sum(kernel ** 2)`` to
every batch's loss, so each step also pulls the weights towards zero (weight decay: the
gradient of the penalty is ``2e-4 * kernel``). L1's penalty ``l1 * sum(|w|)`` pulls every
weight by the same amount, pushing small ones to exactly zero (sparse weights).
``activity_regularizer`` penalises the layer's output instead, divided by the batch size.
The penalties are in ``model.losses`` and in the ``loss`` that ``fit`` reports, as in Keras.

Names and defaults are Keras's: ``L1(l1=0.01)``, ``L2(l2=0.01)``, ``L1L2(l1=0.0, l2=0.0)``;
``l1``/``l2`` are the classes, and ``l1_l2(l1=0.01, l2=0.01)`` is tf-keras's function (Keras 3
made it the class, with zero defaults; ``'l1_l2'`` by name follows tf-keras too).
"""
import minidl.functions as F
from minidl.autograd import Tensor
from minidl.backends import get_array_module
from minidl.utils import Configurable, Registry


class Regularizer(Configurable):
    """Base class: ``__call__(w)`` returns the penalty, a scalar Tensor, of the Tensor ``w``."""

    def __call__(self, w):
        raise NotImplementedError(f'{type(self).__name__} must define __call__')


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _factor('l1', l1), _factor('l2', l2)

    def __call__(self, w):
        terms = ([self.l1 * F.sum(F.abs(w))] if self.l1 else []) + \
            ([self.l2 * F.sum(w * w)] if self.l2 else [])
        if not terms:
            return Tensor(get_array_module(w.data).zeros((), w.dtype))
        return sum(terms[1:], terms[0])


class L1(L1L2):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {'l1': self.l1}


class L2(L1L2):
    """``l2 * sum(w ** 2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {'l2': self.l2}


def _factor(name, value):
    value = float(value)
    if not value >= 0:
        raise ValueError(f'regularizer: {name} must be a number >= 0, got {value!r}')
    return value


l1, l2 = L1, L2


def l1_l2(l1=0.01, l2=0.01):
    """``L1L2(l1, l2)`` with tf-keras's defaults, 0.01 each."""
    return L1L2(l1=l1, l2=l2)


_REGISTRY = Registry('regularizer', {'L1': L1, 'L2': L2, 'L1L2': L1L2})


def get(identifier):
    """A regularizer from a name ('l1', 'l2', 'l1_l2', 'L2', ...; case and underscores do not
    matter), a Keras config dict (``{'class_name': 'L2', 'config': {'l2': 0.001}}``), or any
    callable ``f(w) -> scalar Tensor``, returned as is. ``None`` stays ``None``."""
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.replace('_', '').lower() == 'l1l2':
        return l1_l2()
    return _REGISTRY.build(identifier, 'a callable f(w)')


def serialize(regularizer):
    """The config dict that :func:`get` turns back into ``regularizer`` (``None`` for none)."""
    return _REGISTRY.serialize(regularizer, Regularizer)
