"""Optimizers: how a gradient becomes a weight update.

Every optimizer runs the same loop, written once in :meth:`Optimizer.step`: clip the gradients,
then for each trainable weight that received one, shrink the weight by the decoupled weight decay
and update it in place from its gradient and its own running state (its *slots*: a velocity, a
running mean of squared gradients, ...). A subclass only names its slots and says how one weight
is updated, by calling the fused in-place kernel from :mod:`minidl.backends.kernels` (Numba on
the CPU, CUDA on the GPU).

Keras semantics throughout (Keras 3, which tf-keras 2.11+ agrees with): the rate is a variable
that ``K.set_value`` changes, or a schedule from :mod:`minidl.optimizers.schedules`; ``lr`` is
accepted for ``learning_rate`` (the lessons write ``RMSprop(lr=1e-4)``); every optimizer takes
``clipnorm``, ``clipvalue``, ``global_clipnorm`` and ``weight_decay``; and minidl's ``decay``
shrinks the rate over time as ``lr_t = learning_rate / (1 + decay * iterations)`` (Keras's
``InverseTimeDecay``, which is how it is saved).
"""
import re

import numpy as np

from minidl.autograd import Tensor
from minidl.backends import device_of, get_array_module, kernels, to_device
from minidl.backends.reference import nadam_momentum
from minidl.optimizers import schedules
from minidl.optimizers.schedules import LearningRateSchedule
from minidl.utils import Configurable, Registry, signature_config

_CLIPPING = ('clipnorm', 'clipvalue', 'global_clipnorm')


class Optimizer(Configurable):
    """Base class: the update loop, the per-weight slots, clipping, weight decay and the rate.

    ``iterations`` counts the calls to :meth:`step` (training batches). Slots are created on a
    weight's first update, shaped like it, with its dtype and device, filled with
    :meth:`slot_start`.

    Each step does what Keras 3 does, in its order: the gradients are clipped (``clipnorm``:
    each to L2 norm at most ``clipnorm``; ``global_clipnorm``: all together to a joint norm at
    most that; ``clipvalue``: each element into ``[-clipvalue, clipvalue]``; at most one of the
    three); each weight ``w`` with a gradient is decayed, ``w -= w * weight_decay * lr``
    (decoupled from the gradient, as in AdamW), then updated by the optimizer's rule; then its
    constraint, if any, projects it.
    """

    slot_names = ()  # the running arrays each weight needs, e.g. ('m', 'v') for Adam

    def __init__(self, learning_rate, decay=0.0, name=None, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, **kwargs):
        if 'lr' in kwargs:
            learning_rate = kwargs.pop('lr')
        if kwargs:
            raise TypeError(f'{type(self).__name__}: unexpected keyword argument(s) '
                            f'{", ".join(sorted(kwargs))}')
        self.schedule = None
        self._learning_rate = Tensor(np.array(0.0), name='learning_rate')
        self.learning_rate = learning_rate
        self.decay = _check_range(self, 'decay', decay, 0, float('inf'))
        if self.decay and self.schedule is not None:
            raise ValueError(f'{type(self).__name__}: decay={decay} and the schedule '
                             f'{self.schedule!r} both set the rate; give one (InverseTimeDecay '
                             f'is decay as a schedule)')
        self.weight_decay = _optional_range(self, 'weight_decay', weight_decay)
        self.clipnorm = _optional_range(self, 'clipnorm', clipnorm)
        self.clipvalue = _optional_range(self, 'clipvalue', clipvalue)
        self.global_clipnorm = _optional_range(self, 'global_clipnorm', global_clipnorm)
        given = [f'{key}={getattr(self, key)}' for key in _CLIPPING
                 if getattr(self, key) is not None]
        if len(given) > 1:
            raise ValueError(f'{type(self).__name__}: give at most one of clipnorm, clipvalue '
                             f'and global_clipnorm, got {", ".join(given)}')
        self.name = name or type(self).__name__
        self.iterations = 0
        self._slots = {}  # id(weight) -> (weight, {slot name: array})
        self._no_decay = ([], None)  # weights, and a name pattern, exempt from weight decay

    @property
    def learning_rate(self):
        """The rate as a variable (a 0-d Tensor), as in Keras: ``K.set_value(opt.learning_rate,
        1e-4)`` or ``opt.learning_rate = 1e-4`` sets the rate of the next step;
        ``K.get_value`` or ``float`` reads it. It is kept in float64, so it reads back exactly
        as it was given. With a schedule it is the rate of the next step, read-only (as in
        Keras, a scheduled rate cannot be set; assigning another schedule replaces it)."""
        if self.schedule is None:
            return self._learning_rate
        rate = np.array(self.current_learning_rate())
        rate.flags.writeable = False
        return Tensor(rate, name='learning_rate')

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self.schedule = value
            return
        if self.schedule is not None:
            raise TypeError(f'{self.name}: the learning rate is the schedule {self.schedule!r}, '
                            f'so it cannot be set to {value!r}; callbacks that set the rate '
                            f'(LearningRateScheduler) need an optimizer whose learning_rate is '
                            f'a number')
        self._learning_rate.data[...] = _check_range(self, 'learning_rate', value, 0,
                                                     float('inf'))

    lr = learning_rate  # the Keras 1/2 spelling

    def get_config(self):
        """The constructor's arguments, the rate as a number or as its schedule's
        ``{'class_name', 'config'}`` (a config is JSON)."""
        rate = float(self.learning_rate) if self.schedule is None else \
            schedules.serialize(self.schedule)
        return {**signature_config(self), 'learning_rate': rate,
                'weight_decay': self.weight_decay,
                **{key: getattr(self, key) for key in _CLIPPING}}

    @classmethod
    def from_config(cls, config):
        """The optimizer of :meth:`get_config`, a schedule's config becoming the schedule."""
        rate = config.get('learning_rate')
        if isinstance(rate, dict):
            config = {**config, 'learning_rate': schedules.deserialize(rate)}
        return cls(**config)

    def current_learning_rate(self):
        """The rate the next step uses: the schedule at ``iterations``, or
        ``learning_rate / (1 + decay * iterations)``."""
        if self.schedule is not None:
            return float(self.schedule(self.iterations))
        return float(self._learning_rate) / (1.0 + self.decay * self.iterations)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exempt from ``weight_decay`` the weights in ``var_list`` and those whose name
        contains a match of one of the patterns ``var_names`` (``['bias']``), as in Keras."""
        pattern = re.compile('|'.join(var_names)) if var_names else None
        self._no_decay = (list(var_list or ()), pattern)

    def _decays(self, param):
        weights, pattern = self._no_decay
        return not (any(param is w for w in weights) or
                    (pattern is not None and pattern.search(param.name or '')))

    def clip_gradients(self, grads):
        """``grads`` clipped as the optimizer's ``clipnorm``, ``global_clipnorm`` or
        ``clipvalue`` says (new arrays; the ones given are not changed)."""
        if self.clipnorm:
            return [g * self.clipnorm / _maximum(_squares(g) ** 0.5, self.clipnorm)
                    for g in grads]
        if self.global_clipnorm and grads:
            norm = sum(_squares(g) for g in grads) ** 0.5
            scale = self.global_clipnorm / _maximum(norm, self.global_clipnorm)
            return [g * scale for g in grads]
        if self.clipvalue:
            return [get_array_module(g).clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def step(self, params):
        """Update, in place, every weight in ``params`` whose ``.grad`` is not None, then
        project it with its ``.constraint`` if it has one (Keras's order).

        ``params`` are tensors with ``.data`` and ``.grad`` arrays of the same shape (the
        model's trainable weights after ``backward()``). One call is one training iteration.
        """
        lr = self.current_learning_rate()
        params = [param for param in params if param.grad is not None]
        for param in params:
            if param.grad.shape != param.data.shape:
                raise ValueError(f'{self.name}: the gradient of weight {param.name!r} has shape '
                                 f'{tuple(param.grad.shape)}, but the weight has shape '
                                 f'{tuple(param.data.shape)}')
        for param, grad in zip(params, self.clip_gradients([param.grad for param in params])):
            if self.weight_decay and self._decays(param):
                param.data -= param.data * (self.weight_decay * lr)
            self.update(param.data, grad, self.slots(param), lr)
            constraint = getattr(param, 'constraint', None)  # set by Layer.add_weight
            if constraint is not None:
                param.data[...] = constraint(param.data)
        self.iterations += 1

    def slot_start(self, name):
        """The value every element of slot ``name`` starts at (0; Adagrad's accumulator
        starts at its ``initial_accumulator_value``)."""
        return 0.0

    def slots(self, param):
        """The running state of one weight: ``{slot name: array shaped like param.data}``.

        Keyed by ``id(param)``; the weight itself is kept alongside, so its id cannot be reused
        by another object while the optimizer holds its state. Slots follow the weight when it
        moves between CPU and GPU.
        """
        entry = self._slots.get(id(param))
        if entry is None:
            xp = get_array_module(param.data)
            entry = (param, {name: xp.full_like(param.data, self.slot_start(name))
                             for name in self.slot_names})
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
                    name: to_device(np.array(state[name], dtype=param.dtype), device)
                    for name in self.slot_names})

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
    (epsilon inside the root, as tf-keras and Keras 3 put it), so weights with consistently
    large gradients take smaller steps. The optimizer of the lessons' convnets.
    ``centered=True`` also keeps the mean gradient ``mg`` the same way and divides by the
    running standard deviation ``sqrt(a - mg**2 + epsilon)``; ``momentum > 0`` accumulates the
    steps in a velocity, ``vel = momentum * vel + step``, and moves by ``vel``.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, decay=0.0, name='RMSprop', **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.rho = _check_range(self, 'rho', rho, 0, 1)
        self.momentum = _check_range(self, 'momentum', momentum, 0, 1)
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))
        self.centered = bool(centered)
        self.slot_names = ('sq_avg',) + ('velocity',) * bool(self.momentum) + \
            ('avg_grad',) * self.centered

    def update(self, data, grad, slots, lr):
        kernels.rmsprop_update(data, grad, slots['sq_avg'], slots.get('avg_grad'),
                               slots.get('velocity'), lr, self.rho, self.momentum, self.epsilon)


class Adam(Optimizer):
    """Adam: momentum on the gradient and RMSprop's scaling, both bias-corrected.

    Per weight, at step ``t = iterations + 1``: ``m = beta_1 m + (1 - beta_1) g``,
    ``v = beta_2 v + (1 - beta_2) g**2``, then
    ``w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)``.
    ``amsgrad=True`` divides by the largest ``v`` seen so far instead (``v_max``), so a
    weight's step size never grows back.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, decay=0.0, name='Adam', **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.beta_1 = _check_range(self, 'beta_1', beta_1, 0, 1)
        self.beta_2 = _check_range(self, 'beta_2', beta_2, 0, 1)
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))
        self.amsgrad = bool(amsgrad)
        self.slot_names = ('m', 'v') + ('v_max',) * self.amsgrad

    def update(self, data, grad, slots, lr):
        kernels.adam_update(data, grad, slots['m'], slots['v'], slots.get('v_max'), lr,
                            self.beta_1, self.beta_2, self.epsilon, self.iterations + 1)


class AdamW(Adam):
    """Adam with decoupled weight decay on by default (``weight_decay=0.004``, as Keras):
    each step first shrinks every weight by ``w -= w * weight_decay * lr``, apart from the
    gradient, so the decay is not rescaled by Adam's per-weight step sizes (Loshchilov &
    Hutter). Exempt biases with ``exclude_from_weight_decay(var_names=['bias'])``."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, decay=0.0, name='AdamW', **kwargs):
        if weight_decay is None:
            raise ValueError('AdamW: weight_decay must be a number, got None')
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, decay, name,
                         weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """Adagrad: each coordinate's step shrinks with the sum of all its squared gradients so
    far, ``acc += g**2``, ``w -= lr * g / sqrt(acc + epsilon)``; ``acc`` starts at
    ``initial_accumulator_value``. Rarely updated weights keep large steps."""

    slot_names = ('accumulator',)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 decay=0.0, name='Adagrad', **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.initial_accumulator_value = _check_range(
            self, 'initial_accumulator_value', initial_accumulator_value, 0, float('inf'))
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))

    def slot_start(self, name):
        return self.initial_accumulator_value

    def update(self, data, grad, slots, lr):
        kernels.adagrad_update(data, grad, slots['accumulator'], lr, self.epsilon)


class Adadelta(Optimizer):
    """Adadelta: RMSprop whose rate is the running RMS of the past steps themselves, so each
    step has the units of its weight: ``a = rho a + (1 - rho) g**2``,
    ``d = sqrt(D + epsilon) / sqrt(a + epsilon) * g``, ``D = rho D + (1 - rho) d**2``,
    ``w -= lr * d`` (Keras keeps a ``learning_rate``, 0.001; Zeiler's paper has none, i.e. 1)."""

    slot_names = ('sq_avg', 'delta_sq_avg')

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, decay=0.0, name='Adadelta',
                 **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.rho = _check_range(self, 'rho', rho, 0, 1)
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))

    def update(self, data, grad, slots, lr):
        kernels.adadelta_update(data, grad, slots['sq_avg'], slots['delta_sq_avg'], lr,
                                self.rho, self.epsilon)


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm for its scale, ``u = max(beta_2 u, |g|)``,
    ``w -= lr / (1 - beta_1**t) * m / (u + epsilon)`` at step ``t = iterations + 1``."""

    slot_names = ('m', 'u')

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0,
                 name='Adamax', **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.beta_1 = _check_range(self, 'beta_1', beta_1, 0, 1)
        self.beta_2 = _check_range(self, 'beta_2', beta_2, 0, 1)
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))

    def update(self, data, grad, slots, lr):
        kernels.adamax_update(data, grad, slots['m'], slots['u'], lr, self.beta_1, self.beta_2,
                              self.epsilon, self.iterations + 1)


class Nadam(Optimizer):
    """Nadam (Dozat): Adam with Nesterov momentum, the step looking ahead by the next
    momentum. The momentum warms up, ``mu_t = beta_1 * (1 - 0.5 * 0.96**t)``, and
    ``u_product`` (the product ``mu_1 ... mu_t``) bias-corrects m; see
    :func:`minidl.backends.reference.nadam_update` for the step."""

    slot_names = ('m', 'v')

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0,
                 name='Nadam', **kwargs):
        super().__init__(learning_rate, decay, name, **kwargs)
        self.beta_1 = _check_range(self, 'beta_1', beta_1, 0, 1)
        self.beta_2 = _check_range(self, 'beta_2', beta_2, 0, 1)
        self.epsilon = _check_range(self, 'epsilon', epsilon, 0, float('inf'))
        self.u_product = 1.0  # mu_1 ... mu_iterations

    def step(self, params):
        self.u_product *= nadam_momentum(self.beta_1, self.iterations + 1)
        super().step(params)

    def set_state(self, params, iterations, slots):
        super().set_state(params, iterations, slots)
        self.u_product = 1.0
        for t in range(1, self.iterations + 1):
            self.u_product *= nadam_momentum(self.beta_1, t)

    def update(self, data, grad, slots, lr):
        kernels.nadam_update(data, grad, slots['m'], slots['v'], lr, self.beta_1, self.beta_2,
                             self.epsilon, self.iterations + 1, self.u_product)


_REGISTRY = Registry('optimizer', {
    'sgd': SGD, 'rmsprop': RMSprop, 'adam': Adam, 'adamw': AdamW, 'adagrad': Adagrad,
    'adadelta': Adadelta, 'adamax': Adamax, 'nadam': Nadam})


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


def _optional_range(optimizer, name, value):
    """None, or ``value`` as a float ``>= 0``."""
    return None if value is None else _check_range(optimizer, name, value, 0, float('inf'))


def _squares(array):
    """The sum of squares of a whole array (its L2 norm squared), 0-d, of its dtype and device."""
    return (array * array).sum()


def _maximum(norm, limit):
    return get_array_module(norm).maximum(norm, limit)
