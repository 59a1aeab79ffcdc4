"""Optimizers: how a gradient becomes a weight update.

Every optimizer runs the same loop, written once in :meth:`Optimizer.step`: for each trainable
weight that received a gradient, update the weight in place from that gradient and from the
weight's own running state (its *slots*: a velocity, a running mean of squared gradients, ...).
A subclass only names its slots and says how one weight is updated, by calling the fused
in-place kernel from :mod:`minidl.backends.kernels` (Numba on the CPU, CUDA on the GPU).

Keras semantics throughout: the rate is a variable that ``K.set_value`` changes; ``lr`` is
accepted for ``learning_rate`` (the lessons write ``RMSprop(lr=1e-4)``); and ``decay`` shrinks
the rate over time as ``lr_t = learning_rate / (1 + decay * iterations)``.
"""
import numpy as np

from minidl.autograd import Tensor
from minidl.backends import device_of, get_array_module, kernels, to_device
from minidl.utils import Configurable, Registry


class Optimizer(Configurable):
    """Base class: the update loop, the per-weight slots and the learning-rate schedule.

    ``iterations`` counts the calls to :meth:`step` (training batches). Slots are created on a
    weight's first update with ``xp.zeros_like(weight.data)``, so they share its shape, dtype
    and device.
    """

    slot_names = ()  # the running arrays each weight needs, e.g. ('m', 'v') for Adam

    def __init__(self, learning_rate, decay=0.0, name=None, **kwargs):
        if 'lr' in kwargs:
            learning_rate = kwargs.pop('lr')
        if kwargs:
            raise TypeError(f'{type(self).__name__}: unexpected keyword argument(s) '
                            f'{", ".join(sorted(kwargs))}')
        self._learning_rate = Tensor(np.array(0.0), name='learning_rate')
        self.learning_rate = learning_rate
        self.decay = _check_range(self, 'decay', decay, 0, float('inf'))
        self.name = name or type(self).__name__
        self.iterations = 0
        self._slots = {}  # id(weight) -> (weight, {slot name: array})

    @property
    def learning_rate(self):
        """The rate as a variable (a 0-d Tensor), as in Keras: ``K.set_value(opt.learning_rate,
        1e-4)`` or ``opt.learning_rate = 1e-4`` sets the rate of the next step;
        ``K.get_value`` or ``float`` reads it. It is kept in float64, so it reads back exactly
        as it was given."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate.data[...] = _check_range(self, 'learning_rate', value, 0,
                                                     float('inf'))

    lr = learning_rate  # the Keras 1/2 spelling

    def get_config(self):
        """The constructor's arguments, the rate as a number (a config is JSON)."""
        return {**super().get_config(), 'learning_rate': float(self.learning_rate)}

    def current_learning_rate(self):
        """The rate the next step uses: ``learning_rate / (1 + decay * iterations)``."""
        return float(self.learning_rate) / (1.0 + self.decay * self.iterations)

    def step(self, params):
        """Update, in place, every weight in ``params`` whose ``.grad`` is not None, then
        project it with its ``.constraint`` if it has one (Keras's order).

        ``params`` are tensors with ``.data`` and ``.grad`` arrays of the same shape (the
        model's trainable weights after ``backward()``). One call is one training iteration.
        """
        lr = self.current_learning_rate()
        for param in params:
            if param.grad is None:
                continue
            if param.grad.shape != param.data.shape:
                raise ValueError(f'{self.name}: the gradient of weight {param.name!r} has shape '
                                 f'{tuple(param.grad.shape)}, but the weight has shape '
                                 f'{tuple(param.data.shape)}')
            self.update(param.data, param.grad, self.slots(param), lr)
            constraint = getattr(param, 'constraint', None)  # set by Layer.add_weight
            if constraint is not None:
                param.data[...] = constraint(param.data)
        self.iterations += 1

    def slots(self, param):
        """The running state of one weight: ``{slot name: array shaped like param.data}``.

        Keyed by ``id(param)``; the weight itself is kept alongside, so its id cannot be reused
        by another object while the optimizer holds its state. Slots follow the weight when it
        moves between CPU and GPU.
        """
        entry = self._slots.get(id(param))
        if entry is None:
            xp = get_array_module(param.data)
            entry = (param, {name: xp.zeros_like(param.data) for name in self.slot_names})
            self._slots[id(param)] = entry
        state = entry[1]
        device = device_of(param.data)
        for name, array in state.items():
            if device_of(array) != device:
                state[name] = to_device(array, device)
        return state

    def get_state(self, params):
        """``(iterations, slots)``, what resuming training needs: ``slots[i]`` maps slot names
        to NumPy copies of ``params[i]``'s running state (empty for a weight never updated)."""
        slots = []
        for param in params:
            entry = self._slots.get(id(param))
            slots.append({name: np.array(to_device(array, 'cpu'))
                          for name, array in entry[1].items()} if entry else {})
        return self.iterations, slots

    def set_state(self, params, iterations, slots):
        """Resume from :meth:`get_state`'s ``(iterations, slots)`` for the same ``params``:
        each slot array is copied to its weight's dtype and device. Slots that do not fit
        their weight are a ValueError naming the weight, and nothing is changed."""
        if iterations < 0:
            raise ValueError(f'{self.name}: iterations must be >= 0, got {iterations}')
        for param, state in zip(params, slots):
            if state and sorted(state) != sorted(self.slot_names):
                raise ValueError(f'{self.name}: weight {param.name!r} has slots '
                                 f'{sorted(state)}, {type(self).__name__} keeps '
                                 f'{sorted(self.slot_names)}')
            for name, array in state.items():
                if array.shape != param.shape:
                    raise ValueError(f'{self.name}: slot {name} of weight {param.name!r} has '
                                     f'shape {array.shape}, the weight {param.shape}')
        self.iterations = int(iterations)
        for param, state in zip(params, slots):
            if state:
                device = device_of(param.data)
                self._slots[id(param)] = (param, {
                    name: to_device(np.array(array, dtype=param.dtype), device)
                    for name, array in state.items()})

    def update(self, data, grad, slots, lr):
        """Update one weight's ``data`` in place from ``grad`` and ``slots`` at rate ``lr``."""
        raise NotImplementedError(f'{type(self).__name__} must define update()')


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    With ``momentum = 0``: ``w -= lr * g``. Otherwise a velocity ``v`` (zero at first) is kept
    per weight: ``v = momentum * v - lr * g``, then ``w += v``, or with ``nesterov=True`` the
    look-ahead ``w += momentum * v - lr * g``.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, decay=0.0,
                 name='SGD', **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.momentum = _check_range(self, 'momentum', momentum, 0, 1)
        self.nesterov = bool(nesterov)
        self.slot_names = ('velocity',) if self.momentum else ()

    def update(self, data, grad, slots, lr):
        kernels.sgd_update(data, grad, slots.get('velocity'), lr, self.momentum, self.nesterov)


class RMSprop(Optimizer):
    """Divide each step by a running root-mean-square of recent gradients.

    Per weight: ``a = rho * a + (1 - rho) * g**2``, then ``w -= lr * g / sqrt(a + epsilon)``
    (epsilon inside the root, as tf-keras and Keras 3 put it),
    so weights with consistently large gradients take smaller steps. The optimizer of the
    lessons' convnets.
    """

    slot_names = ('sq_avg',)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, decay=0.0, name='RMSprop',
                 **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.rho = _check_range(self, 'rho', rho, 0, 1)
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))

    def update(self, data, grad, slots, lr):
        kernels.rmsprop_update(data, grad, slots['sq_avg'], lr, self.rho, self.epsilon)


class Adam(Optimizer):
    """Adam: momentum on the gradient and RMSprop's scaling, both bias-corrected.

    Per weight, at step ``t = iterations + 1``: ``m = beta_1 m + (1 - beta_1) g``,
    ``v = beta_2 v + (1 - beta_2) g**2``, then
    ``w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)``.
    """

    slot_names = ('m', 'v')

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0,
                 name='Adam', **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.beta_1 = _check_range(self, 'beta_1', beta_1, 0, 1)
        self.beta_2 = _check_range(self, 'beta_2', beta_2, 0, 1)
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))

    def update(self, data, grad, slots, lr):
        kernels.adam_update(data, grad, slots['m'], slots['v'], lr, self.beta_1, self.beta_2,
                            self.epsilon, self.iterations + 1)


_REGISTRY = Registry('optimizer', {'sgd': SGD, 'rmsprop': RMSprop, 'adam': Adam})


def get(identifier):
    """An optimizer from a name (``'rmsprop'``, any case), a Keras-style config dict
    (``{'class_name': 'RMSprop', 'config': {...}}``) or an :class:`Optimizer`, returned as is.
    Names give the optimizer with its default settings."""
    if isinstance(identifier, Optimizer):
        return identifier
    return _REGISTRY.build(identifier, 'an Optimizer instance')


def _check_range(optimizer, name, value, low, high):
    """``float(value)`` if ``low <= value <= high``, else a ValueError naming the argument."""
    value = float(value)
    if not low <= value <= high:
        raise ValueError(f'{type(optimizer).__name__}: {name} must be in [{low}, {high}], '
                         f'got {value}')
    return value
