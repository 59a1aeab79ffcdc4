"""Compile settings and optimizer state in Keras's spellings, both ways: the one place that
knows how each Keras names minidl's optimizers, their arguments and their slots.

tf-keras writes an h5 file's ``training_config`` (``optimizer_config``, ``Custom>Adam``) and
``optimizer_weights`` (``iteration:0``, ``Adam/m/<weight>:0``), matched back by name; Keras 3
writes a ``.keras`` archive's ``compile_config`` and the archive weights' ``optimizer/vars``
(``0``: iterations, ``1``: the learning rate, unless it is a schedule, then each trainable
weight's slots in Keras's order), matched back by position, as Keras 3 does. What minidl cannot
train as saved (an optimizer or schedule it lacks, a loss on logits) is a ValueError naming it: a model that trains differently from its file would be a silent wrong answer.
"""
import contextlib
import inspect
import re
import warnings

import numpy as np

from minidl import losses, optimizers
from minidl.io import keras3_weights, keras_h5
from minidl.io.errors import WeightFileError
from minidl.io.keras_config import CONFIG_ERRORS, KERAS2, KERAS3


# Keras's names of each minidl optimizer's slots: (minidl slot, tf-keras 2.11+'s name, older
# tf.keras's, Keras 3's), in groups: both Keras create a group's slots weight by weight (a
# weight's m, then its v, then the next weight's), the groups one after the other (every
# weight's RMSprop velocity, then every momentum), and save them in that order. A slot is kept
# where the optimizer's options ask for it (``slot_names``); tf-keras's SGD keeps its slot even
# without momentum. AdamW has Adam's slots.
_SLOTS = {'SGD': [[('velocity', 'm', 'momentum', 'momentum')]],
          'RMSprop': [[('sq_avg', 'velocity', 'rms', 'velocity')],
                      [('velocity', 'momentum', 'momentum', 'momentum')],
                      [('avg_grad', 'average_gradient', 'mg', 'average_gradient')]],
          'Adam': [[('m', 'm', 'm', 'momentum'), ('v', 'v', 'v', 'velocity')],
                   [('v_max', 'vhat', 'vhat', 'velocity_hat')]],
          'Adagrad': [[('accumulator', 'accumulator', 'accumulator', 'accumulator')]],
          'Adadelta': [[('sq_avg', 'accumulated_grad', 'accum_grad', 'accumulated_grad'),
                        ('delta_sq_avg', 'accumulated_delta_var', 'accum_var',
                         'accumulated_delta_var')]],
          'Adamax': [[('m', 'm', 'm', 'momentum'), ('u', 'u', 'v', 'norm')]],
          'Nadam': [[('m', 'm', 'm', 'momentum'), ('v', 'v', 'v', 'velocity')]]}
_TF_KERAS_ALWAYS = {'velocity'}  # of SGD, the one optimizer whose only slot is optional
_INDEX = re.compile(r':\d+$')  # the ':0' TensorFlow appends to variable names


def _slots(optimizer):
    """``_SLOTS`` of ``optimizer``'s class, or of the minidl class it derives from."""
    kind = next((cls.__name__ for cls in type(optimizer).__mro__ if cls.__name__ in _SLOTS),
                None)
    if kind is None:
        raise ValueError(f'{type(optimizer).__name__} has no Keras counterpart; minidl saves '
                         f'the state of {", ".join(_SLOTS)}')
    return _SLOTS[kind]


def _order(optimizer, params, tf_keras=False):
    """``[(weight, slot entry of _SLOTS)]`` in the order Keras keeps the optimizer's variables
    (tf-keras's, with its SGD slot, when ``tf_keras``)."""
    kept = set(optimizer.slot_names)
    if tf_keras and isinstance(optimizer, optimizers.SGD):
        kept |= _TF_KERAS_ALWAYS
    return [(w, entry) for group in _slots(optimizer) for w in params
            for entry in group if entry[0] in kept]


def _keras3_trailing(optimizer, params):
    """Keras 3's optimizer variables after the slots: Nadam's product of momenta, in the
    weights' dtype (minidl recomputes it from ``iterations`` when it reads a file)."""
    if not isinstance(optimizer, optimizers.Nadam):
        return []
    return [np.array(optimizer.u_product, dtype=params[0].dtype if params else np.float32)]


def write_optimizer_weights(f, model):
    """``optimizer_weights`` as tf-keras writes it and reads it back (by position):
    ``iteration:0``, then for each trainable weight each slot, ``<optimizer>/<slot>/<weight>:0``
    (zeros for a weight not updated yet)."""
    optimizer, params = model.optimizer, model.trainable_weights
    iterations, slots = optimizer.get_state(params)
    state = {id(w): slot for w, slot in zip(params, slots)}
    named = [('iteration:0', np.int64(iterations))]
    for w, (slot, keras_slot, *_) in _order(optimizer, params, tf_keras=True):
        named.append((f'{optimizer.name}/{keras_slot}/{w.name}:0', state[id(w)].get(
            slot, np.full(w.shape, optimizer.slot_start(slot), w.dtype))))
    group = f.create_group('optimizer_weights')
    keras_h5.write_names(group.attrs, 'weight_names', [name for name, _ in named])
    for name, array in named:
        keras_h5.write_array(group, name, array)


def load_optimizer_weights(reader, model):
    """Restore the optimizer state of ``optimizer_weights``, as tf-keras, older tf.keras,
    Keras 3 or minidl wrote it, matched to the weights by name (files without one train on from a fresh
    optimizer, as in Keras). State whose names say nothing of the weights (Keras 2.0's
    ``training/RMSprop/Variable:0``) is not restored, with a warning, as tf-keras does with
    state it cannot use."""
    group = reader.group(reader.file, 'optimizer_weights')
    if group is None:
        return
    names = reader.names(group, 'weight_names') or []
    iterations = reader.dataset(group, names[0]) if names and \
        _INDEX.sub('', names[0]).split('/')[-1] in ('iterations', 'iteration', 'iter') else None
    if iterations is None or iterations.shape != () or iterations.dtype.kind != 'i':
        raise reader.error('optimizer_weights has no iteration count')
    params = model.trainable_weights
    by_name, slots = {w.name: w for w in params}, {id(w): {} for w in params}
    for name in names[1:]:
        if name.split('/')[-1] == 'learning_rate':  # Keras 3 keeps its rate as a variable
            continue
        target = _slot_of(model.optimizer, by_name, name)
        if target is None:
            warnings.warn(f'{reader.path}: optimizer_weights/{name} names no slot of a '
                          f'weight of {model.name}; the optimizer starts afresh', stacklevel=3)
            return
        weight, slot = target
        data = reader.dataset(group, name)
        if slot is not None and data.shape != weight.shape:
            raise reader.error(f'optimizer_weights/{name} has shape {data.shape}, its weight '
                               f'{weight.name} {weight.shape}')
        if slot is not None:
            slots[id(weight)][slot] = data
    state = [{slot: reader.array(data) for slot, data in slots[id(w)].items()} for w in params]
    try:
        model.optimizer.set_state(params, int(reader.array(iterations)), state)
    except ValueError as exc:
        raise reader.error(f'optimizer_weights do not fit: {exc}') from None


def _slot_of(optimizer, by_name, name):
    """``(weight, minidl slot)`` that the stored optimizer variable ``name`` holds, with slot
    None for a Keras slot this optimizer does not keep (SGD's without momentum); None when the
    name is none of minidl's ``<weight>/<slot>``, tf-keras's ``<optimizer>/<slot>/<weight>``
    (``<slot>/<weight>`` once tf-keras has loaded the model from a file and saved it again),
    older tf.keras's ``<optimizer>/<weight>/<slot>`` or Keras 3's
    ``<optimizer>/<model>_<layer>_<weight>_<slot>``."""
    name = _INDEX.sub('', name)
    weight, _, slot = name.rpartition('/')
    if weight in by_name and slot in optimizer.slot_names:
        return by_name[weight], slot
    parts = name.split('/')
    for slot, tf_keras, tf_keras_1, keras_3 in (entry for group in _slots(optimizer)
                                                for entry in group):
        readings = ['/'.join(parts[2:]) if parts[1:2] == [tf_keras] else None,
                    '/'.join(parts[1:]) if parts[:1] == [tf_keras] else None,
                    '/'.join(parts[1:-1]) if parts[-1] == tf_keras_1 else None,
                    _keras3_weight(by_name, parts[-1], keras_3)]
        weight = next((w for w in readings if w in by_name), None)
        if weight is not None:
            return by_name[weight], slot if slot in optimizer.slot_names else None
    return None


def _keras3_weight(by_name, stem, slot):
    """The weight name that Keras 3's ``<path with _ for />_<slot>`` ends with, the longest
    if several do; None if none does or two as long do."""
    if not stem.endswith(f'_{slot}'):
        return None
    stem = stem[:-len(slot) - 1]
    found = sorted((len(n), n) for n in by_name
                   if stem == n.replace('/', '_') or stem.endswith('_' + n.replace('/', '_')))
    if not found or (len(found) > 1 and found[-1][0] == found[-2][0]):
        return None
    return found[-1][1]


# --- compile settings, in tf-keras's spelling ----------------------------------------------
# Keras optimizer arguments that change nothing at these values (or ever, for minidl); a None
# (no clipping, the default epsilon) is dropped before.
_INERT = {'name': None, 'use_ema': (False,), 'ema_momentum': None,
          'ema_overwrite_frequency': None, 'jit_compile': None, 'is_legacy_optimizer': None}
_COMMON = ('weight_decay', 'clipnorm', 'clipvalue', 'global_clipnorm')
_ARGUMENTS = {'SGD': ('momentum', 'nesterov'), 'RMSprop': ('rho', 'momentum', 'epsilon', 'centered'),
              'Adam': ('beta_1', 'beta_2', 'epsilon', 'amsgrad'),
              'AdamW': ('beta_1', 'beta_2', 'epsilon', 'amsgrad'),
              'Adagrad': ('initial_accumulator_value', 'epsilon'), 'Adadelta': ('rho', 'epsilon'),
              'Adamax': ('beta_1', 'beta_2', 'epsilon'), 'Nadam': ('beta_1', 'beta_2', 'epsilon')}
_SCHEDULES = ('ExponentialDecay', 'InverseTimeDecay', 'PiecewiseConstantDecay', 'CosineDecay')
_LOSSES = ('CategoricalCrossentropy', 'SparseCategoricalCrossentropy', 'BinaryCrossentropy',
           'MeanSquaredError', 'MeanAbsoluteError', 'Huber', 'KLDivergence')


def _optimizer_config(optimizer, wrap):
    """``optimizer``'s Keras config, each object spelled by ``wrap(module, class_name, config)``
    (a dialect of :mod:`minidl.io.keras_config`): a schedule in Keras's spelling, and a
    ``decay`` as the ``InverseTimeDecay`` schedule that computes the same rate."""
    config = optimizer.get_config()
    decay = config.pop('decay')
    rate = config['learning_rate']
    if isinstance(rate, dict):
        config['learning_rate'] = wrap('keras.optimizers.schedules', rate['class_name'],
                                       rate['config'])
    elif decay:
        config['learning_rate'] = wrap('keras.optimizers.schedules', 'InverseTimeDecay', {
            'initial_learning_rate': rate, 'decay_steps': 1, 'decay_rate': decay,
            'staircase': False, 'name': 'InverseTimeDecay'})
    return wrap('keras.optimizers', type(optimizer).__name__, config)


def training_config(model):
    """The ``training_config`` tf-keras writes in an h5 file: the optimizer as ``Custom>Adam``
    etc. with tf-keras's arguments, the losses and metrics by name, as compiled."""
    optimizer = _optimizer_config(model.optimizer, KERAS2.wrap)
    optimizer['class_name'] = 'Custom>' + optimizer['class_name']
    return {**_compiled(model, KERAS2.wrap), 'weighted_metrics': None,
            'optimizer_config': optimizer}


def compile_config(model):
    """The ``compile_config`` Keras 3 writes in a ``.keras`` archive's ``config.json``."""
    return {'optimizer': _optimizer_config(model.optimizer, KERAS3.wrap),
            **_compiled(model, KERAS3.wrap),
            'weighted_metrics': None, 'run_eagerly': False, 'steps_per_execution': 1,
            'jit_compile': False}


def _compiled(model, wrap):
    """``loss``, ``loss_weights`` and ``metrics`` as ``compile`` was given them (one, a list
    per output or a dict by output name): each metric by its name, each loss by its name or,
    set otherwise than by default (``label_smoothing``, ``from_logits``), by its config."""
    return {'loss': _named(model.loss, wrap), 'metrics': _named(model.compiled_metric_names),
            'loss_weights': _named(model.loss_weights)}


def _named(value, wrap=None):
    """``value`` with every metric or loss object replaced by its name (a loss whose settings
    differ from its class's defaults by ``wrap('keras.losses', class, config)``), lists and
    dicts kept."""
    if isinstance(value, dict):
        return {key: _named(item, wrap) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_named(item, wrap) for item in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    if wrap is not None and type(value).__name__ in _LOSSES and \
            value.get_config() != type(value)().get_config():
        return wrap('keras.losses', type(value).__name__, value.get_config())
    name = getattr(value, 'name', None) or getattr(value, '__name__', None)
    if not isinstance(name, str):
        raise ValueError(f'cannot save the compile setting {value!r}: losses and metrics are '
                         f'saved by name')
    return name


def keras3_compile_arguments(config):
    """``(optimizer, loss, metrics)`` from a Keras 3 ``compile_config`` (see
    :func:`compile_arguments`)."""
    return compile_arguments({'optimizer_config': config['optimizer'], 'loss': config['loss'],
                              'metrics': config.get('metrics'),
                              'loss_weights': config.get('loss_weights'),
                              'weighted_metrics': config.get('weighted_metrics')})


def compile_arguments(training):
    """``(optimizer, loss, metrics, loss_weights)`` for ``compile`` from a ``training_config``
    as tf-keras, Keras 2 or older minidl wrote it; losses and metrics keep the structure they
    were saved in (one, a list per output, a dict by output name). What minidl cannot train as
    saved (another optimizer or schedule, a loss on logits, weighted metrics) is a
    ValueError naming it."""
    if 'optimizer_config' not in training:  # minidl before it wrote Keras's spelling
        return optimizers.get(training['optimizer']), training['loss'], training['metrics']
    if training.get('weighted_metrics'):
        raise ValueError('weighted_metrics are not supported')
    return (_optimizer(training['optimizer_config']), _losses(training['loss']),
            _metrics(training.get('metrics') or []), training.get('loss_weights'))


def _optimizer(spec):
    """A minidl optimizer from a Keras ``{'class_name', 'config'}``."""
    name = spec['class_name'].split('>')[-1]
    kind = {key.lower(): key for key in _ARGUMENTS}.get(name.lower())
    if kind is None:
        raise ValueError(f'optimizer {name} is not one minidl has ({", ".join(_ARGUMENTS)})')
    config = {key: value for key, value in spec['config'].items() if value is not None}
    learning_rate, decay = _learning_rate(config.pop('learning_rate', config.pop('lr', None)))
    decay += config.pop('decay', 0.0) or 0.0
    kept = {key: config.pop(key) for key in _ARGUMENTS[kind] + _COMMON if key in config}
    unused = sorted(key for key, value in config.items() if key not in _INERT or (
        _INERT[key] is not None and value not in _INERT[key]))
    if unused:
        raise ValueError(f'{name} arguments minidl does not have: '
                         f'{", ".join(f"{key}={config[key]!r}" for key in unused)}')
    if learning_rate is not None:
        kept['learning_rate'] = learning_rate
    return getattr(optimizers, kind)(decay=decay, **kept)


def _learning_rate(value):
    """``(learning rate, decay)`` of a Keras learning rate: a number, the ``InverseTimeDecay``
    schedule ``lr / (1 + rate * step / steps)`` that minidl's ``decay`` is, or another
    schedule of :mod:`minidl.optimizers.schedules` (tf-keras's unnamed ones get Keras 3's
    default names)."""
    if not isinstance(value, dict):
        return value, 0.0
    kind = value.get('class_name')
    config = {key: item for key, item in value.get('config', {}).items() if item is not None}
    if kind not in _SCHEDULES:
        raise ValueError(f'learning-rate schedule {kind} is not supported (minidl has '
                         f'{", ".join(_SCHEDULES)})')
    if kind == 'InverseTimeDecay' and not config.get('staircase'):
        if not float(config['decay_steps']) > 0:
            raise ValueError(f'InverseTimeDecay decay_steps must be > 0, got '
                             f'{config["decay_steps"]!r}')
        return (config['initial_learning_rate'],
                float(config['decay_rate']) / config['decay_steps'])
    return optimizers.schedules.deserialize({'class_name': kind, 'config': config}), 0.0


def _losses(spec):
    """The loss names of a Keras config: one, a list per output or a dict by output name."""
    if isinstance(spec, list):
        return _loss(spec[0]) if len(spec) == 1 else [_loss(s) for s in spec]
    if isinstance(spec, dict) and 'class_name' not in spec:
        return {name: _loss(s) for name, s in spec.items()}
    return _loss(spec)


def _loss(spec):
    """A loss from a Keras loss: a name, or ``{'class_name', 'config'}`` of a loss class (the
    settings minidl's class takes; a ``dtype`` or an ``ignore_class`` of None is no setting);
    None (no loss) stays."""
    if spec is None or isinstance(spec, str):
        return spec
    if not isinstance(spec, dict) or spec.get('class_name') not in _LOSSES:
        raise ValueError(f'loss {spec!r} is not one minidl has')
    cls = getattr(losses, spec['class_name'])
    accepted = inspect.signature(cls).parameters
    config = {key: value for key, value in (spec.get('config') or {}).items()
              if not (key in ('dtype', 'ignore_class') and value is None)}
    unknown = sorted(key for key in config if key not in accepted)
    if unknown:
        raise ValueError(f'{spec["class_name"]} settings minidl does not have: '
                         f'{", ".join(f"{key}={config[key]!r}" for key in unknown)}')
    return cls(**config)


def _metrics(spec):
    """Metric names in their saved structure: a list, a list per output or a dict by output
    name; the list in a list that tf-keras writes for a single output becomes a plain one."""
    if isinstance(spec, dict):
        return {name: [_metric(m) for m in (s if isinstance(s, list) else [s])]
                for name, s in spec.items()}
    if len(spec) == 1 and isinstance(spec[0], list):
        spec = spec[0]
    return [[_metric(m) for m in s] if isinstance(s, list) else _metric(s) for s in spec]


def _metric(spec):
    """A metric name from a Keras metric: a name, or tf-keras's ``MeanMetricWrapper`` whose
    ``name`` is the name it was compiled with."""
    if isinstance(spec, str):
        return spec
    config = spec['config'] if isinstance(spec, dict) else {}
    if 'name' not in config:
        raise ValueError(f'metric {spec!r} is not one minidl has')
    return config['name']


def write_keras3_optimizer(f, model):
    """``optimizer/vars`` of a ``.keras`` archive's weights file, as Keras 3 writes it."""
    optimizer, params = model.optimizer, model.trainable_weights
    iterations, slots = optimizer.get_state(params)
    state = {id(w): slot for w, slot in zip(params, slots)}
    arrays = [np.int64(iterations)]
    if _keras3_has_rate(optimizer):
        arrays.append(np.float32(float(optimizer.learning_rate)))
    arrays.extend(state[id(w)].get(slot, np.full(w.shape, optimizer.slot_start(slot), w.dtype))
                  for w, (slot, *_) in _order(optimizer, params))
    arrays.extend(_keras3_trailing(optimizer, params))
    keras3_weights.write_vars(f.create_group('optimizer'), optimizer.name, arrays)


def _keras3_has_rate(optimizer):
    """Whether Keras 3 keeps the rate as a variable: not for a schedule (nor minidl's decay,
    which is saved as one)."""
    return not optimizer.decay and optimizer.schedule is None


def load_keras3_optimizer(reader, model):
    """Restore the state of ``optimizer/vars`` by position; a file whose variables do not
    match this optimizer's in number leaves it fresh, with a warning (as Keras 3 does)."""
    group = reader.group(reader.file, 'optimizer')
    stored = [] if group is None else keras3_weights.datasets(reader, group, 'optimizer')
    if not stored:
        return
    optimizer, params = model.optimizer, model.trainable_weights
    has_rate, order = _keras3_has_rate(optimizer), _order(optimizer, params)
    expected = 1 + has_rate + len(order) + len(_keras3_trailing(optimizer, params))
    if len(stored) != expected:
        warnings.warn(f'{reader.path}: optimizer/vars holds {len(stored)} variables, '
                      f'{type(optimizer).__name__} on {model.name} has {expected}; the '
                      f'optimizer starts afresh', stacklevel=3)
        return
    scalars = [reader.array(d) for d in stored[:1 + has_rate]]
    if any(s.shape != () for s in scalars) or scalars[0].dtype.kind not in 'iu':
        raise reader.error('optimizer/vars/0 (iterations) and 1 (learning rate) must be '
                           'scalars, the first an integer')
    state = {id(w): {} for w in params}
    for data, (w, (slot, *_)) in zip(stored[1 + has_rate:], order):
        if data.shape != w.shape:
            raise reader.error(f'optimizer/vars/{data.name.rsplit("/", 1)[-1]} ({slot} of '
                               f'{w.name}) has shape {data.shape}, the weight {w.shape}')
        state[id(w)][slot] = reader.array(data)
    optimizer.set_state(params, int(scalars[0]), [state[id(w)] for w in params])
    if has_rate and np.float32(float(optimizer.learning_rate)) != scalars[1]:
        optimizer.learning_rate = float(scalars[1])  # changed since compile (by a callback)


@contextlib.contextmanager
def config_errors(path, key, compile_hint=False):
    """A config that cannot be built (unknown classes, wrong types, missing keys) becomes a
    WeightFileError naming the file (and, for compile settings, the way around them)."""
    try:
        yield
    except WeightFileError:
        raise
    except CONFIG_ERRORS as exc:
        hint = '; load_model(path, compile=False) loads the model uncompiled' \
            if compile_hint else ''
        raise WeightFileError(path, f'{key} cannot be built: {type(exc).__name__}: {exc}'
                                    f'{hint}') from None
