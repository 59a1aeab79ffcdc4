"""Learning-rate schedules, as Keras's ``keras.optimizers.schedules``: the rate as a function of
the training step. Pass one as ``learning_rate=``; before each step the optimizer calls it with
its ``iterations`` (the batches trained so far, from 0), so the rate changes every batch, not
every epoch. A schedule is a number in, a number out: ``ExponentialDecay(0.1, 100, 0.5)(200)``
is ``0.025``.
"""
import bisect
import math

from minidl.utils import Configurable, Registry


class LearningRateSchedule(Configurable):
    """Base class: ``schedule(step) -> rate`` for a step count ``step >= 0``."""

    def __call__(self, step):
        raise NotImplementedError(f'{type(self).__name__} must define __call__(step)')


class _StepDecay(LearningRateSchedule):
    """The settings ExponentialDecay and InverseTimeDecay share, and their :meth:`progress`."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive(self, 'decay_steps', decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def progress(self, step):
        """``step / decay_steps``, floored when the schedule is a staircase."""
        progress = step / self.decay_steps
        return math.floor(progress) if self.staircase else progress


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``: the rate shrinks by
    ``decay_rate`` every ``decay_steps`` steps, smoothly, or at once every ``decay_steps`` steps
    with ``staircase=True`` (the exponent floored)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name='ExponentialDecay'):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self.progress(step)


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (the fraction floored
    with ``staircase=True``); with ``decay_steps=1`` it is the ``decay`` argument every minidl
    optimizer takes, and how that argument is saved for Keras."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name='InverseTimeDecay'):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate / (1 + self.decay_rate * self.progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary: one
    more value than boundaries, the boundaries strictly increasing."""

    def __init__(self, boundaries, values, name='PiecewiseConstant'):
        if len(values) != len(boundaries) + 1:
            raise ValueError(f'PiecewiseConstantDecay needs one more value than boundaries, got '
                             f'{len(boundaries)} boundaries {list(boundaries)} and '
                             f'{len(values)} values {list(values)}')
        if any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(f'PiecewiseConstantDecay boundaries must increase strictly, got '
                             f'{list(boundaries)}')
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        return float(self.values[bisect.bisect_left(self.boundaries, step)])


class CosineDecay(LearningRateSchedule):
    """Half a cosine from the rate down to ``alpha`` times it over ``decay_steps`` steps, then
    flat: ``lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps))
    + alpha)``. With a ``warmup_target``, the rate first climbs linearly from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps`` steps, and the cosine
    then starts from ``warmup_target``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name='CosineDecay',
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive(self, 'decay_steps', decay_steps)
        self.alpha = float(alpha)
        self.name = name
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        start = self.initial_learning_rate
        if self.warmup_target is not None:
            if step < self.warmup_steps:
                return start + (self.warmup_target - start) * step / self.warmup_steps
            step, start = step - self.warmup_steps, self.warmup_target
        fraction = min(step, self.decay_steps) / self.decay_steps
        return start * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * fraction)) + self.alpha)


def _positive(schedule, name, value):
    if not value > 0:
        raise ValueError(f'{type(schedule).__name__}: {name} must be > 0, got {value!r}')
    return value


_REGISTRY = Registry('learning-rate schedule', {
    'ExponentialDecay': ExponentialDecay, 'InverseTimeDecay': InverseTimeDecay,
    'PiecewiseConstantDecay': PiecewiseConstantDecay, 'CosineDecay': CosineDecay})


def serialize(schedule):
    """``{'class_name', 'config'}`` of a schedule, the form :func:`deserialize` reads."""
    return {'class_name': type(schedule).__name__, 'config': schedule.get_config()}


def deserialize(config):
    """A schedule from ``{'class_name': 'ExponentialDecay', 'config': {...}}``."""
    if not isinstance(config, dict):
        raise TypeError(f'a learning-rate schedule config is a dict, got '
                        f'{type(config).__name__}: {config!r}')
    return _REGISTRY.build(config, 'a LearningRateSchedule')
