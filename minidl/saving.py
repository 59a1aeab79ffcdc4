"""Saving and loading models in HDF5, laid out like Keras's h5 files.

``model.save(path)`` writes the architecture as JSON (attribute ``model_config``), the compile
settings (``training_config``), every weight under ``model_weights/<layer>/<weight>`` and the
optimizer's state (its iteration count and each trainable weight's slots, under
``optimizer_weights``), so training resumes exactly where it stopped. The architecture, the
compile settings and the optimizer state are spelled as tf-keras spells them
(``optimizer_config``, ``Custom>Adam``, ``iteration:0``, ``Adam/m/<weight>:0``), so tf-keras's
``load_model`` builds and compiles the model and takes the state; Keras 2's, Keras 3's,
older tf.keras's and older minidl's spellings are all read (the architecture's translation
lives in :mod:`minidl.io.keras_config`). A path ending ``.keras`` is saved, and a zip file is
loaded, as a Keras 3 archive (:mod:`minidl.io.keras_archive`). ``save_weights`` writes only
the weights: in Keras 3's layout (:mod:`minidl.io.keras3_weights`) for a name ending
``.weights.h5``, as Keras 3 requires, in Keras 2's otherwise; ``load_weights`` tells the two
apart by their content. Files are written to a temporary name and renamed
(:func:`minidl.utils.atomic_write`), so an interrupted save never leaves a half-written file
behind. The h5 layout itself, and the checks that make a damaged file an error rather than a
hang or a wrong answer, live in :mod:`minidl.io.keras_h5`; this module is the front door that
picks the format and turns configs into models.

Layers are matched in the order the file declares (``layer_names``), or with ``by_name=True``
by layer name (Keras 2's option); within a layer, weights are matched by name (``kernel``,
``gamma``, ...), since a layer's weight order changes with its trainable flags, and by
position only where the names are Keras 1's. A model is built from a file's config under a
budget of the bytes the file stores, so a config cannot make it allocate more than the weights
it claims to hold. Because the layout is Keras's, the same reader loads Keras's own weight
files, such as the pretrained ImageNet VGG16 (``applications.VGG16(weights='imagenet')``).

Compile settings minidl cannot train as saved (an optimizer it lacks, gradient clipping, a loss
on logits) are refused, naming them, rather than skipped: a model that trains differently from
the file is a silent wrong answer; ``load_model(path, compile=False)`` is the way around.

Anything wrong with a file raises :class:`minidl.io.WeightFileError` naming the file.
"""
import contextlib
import json
import re
import warnings

import h5py
import numpy as np

from minidl import optimizers
from minidl.io import keras3_weights, keras_archive, keras_h5
from minidl.io.errors import WeightFileError
from minidl.io.keras_config import BUILD_SLACK, CONFIG_ERRORS, file_config, from_config
from minidl.layers.base import Layer
from minidl.utils import atomic_write, remove_stale_temps

KERAS_VERSION = '2.21.0'  # the tf-keras whose model_config spelling minidl writes


# --- weights -----------------------------------------------------------------------------
def _weight_layers(model):
    """Every leaf layer that holds weights, nested models flattened, in order."""
    found = []
    for layer in model.layers:
        if hasattr(layer, 'layers'):
            found += _weight_layers(layer)
        elif layer._weights:
            found.append(layer)
    return found


def _stored_order(layer):
    """A layer's weights in the order they were created: what is stored, whatever the
    trainable flags (``layer.weights`` puts trainable ones first)."""
    return layer._weights


def _match_layers(reader, model, stored, ordered):
    """Pair each layer of ``model`` that has weights with a stored layer: by the file's
    declared order, or, where the file declares none, by name (or trivially, for one layer)."""
    targets = _weight_layers(model)
    if len(targets) != len(stored):
        raise reader.error(f'the file holds weights for {len(stored)} layers '
                           f'({", ".join(n for n, _ in stored)}) but {model.name} has '
                           f'{len(targets)} layers with weights '
                           f'({", ".join(layer.name for layer in targets)})')
    by_name = dict(stored)
    if ordered or len(targets) == 1:
        return list(zip(targets, stored))
    if len(by_name) == len(stored) and set(by_name) == {layer.name for layer in targets}:
        return [(layer, (layer.name, by_name[layer.name])) for layer in targets]
    raise reader.error(f'the file declares no layer order (no layer_names attribute) and its '
                       f'layers ({", ".join(sorted(by_name))}) are not named as '
                       f'{model.name}\'s ({", ".join(layer.name for layer in targets)})')


def _match_weights(layer, weights):
    """The stored datasets of one layer in ``layer.weights`` order: matched by weight name
    (``dense/kernel:0`` and ``kernel`` both name ``kernel``), by creation order where the
    names are not the layer's (Keras 1's ``W``, ``b``)."""
    own = _stored_order(layer)
    names = [w.name.split('/')[-1] for w in own]
    short = [name.split('/')[-1].split(':')[0] for name, _ in weights]
    if sorted(short) == sorted(names) and len(set(short)) == len(short):
        found = dict(zip(short, (data for _, data in weights)))
        by_weight = {id(w): found[name] for w, name in zip(own, names)}
    elif len(weights) == len(own):
        by_weight = {id(w): data for w, (_, data) in zip(own, weights)}
    else:
        return [data for _, data in weights]
    return [by_weight[id(w)] for w in layer.weights]


def _load_layers(reader, model, stored, ordered, skip_mismatch=False):
    """Give ``model``'s layers the weights ``stored`` (from :meth:`Reader.layers`), paired
    by the file's order."""
    _load_pairs(reader, _match_layers(reader, model, stored, ordered), skip_mismatch)


def _load_pairs(reader, pairs, skip_mismatch):
    """Load ``[(layer, (stored name, weights))]``. Every stored shape is checked against its
    weight from the file's metadata before any data is read, and every misfit is listed; the
    model changes only when all of it has been read and verified (with ``skip_mismatch``, the
    misfits are skipped with a warning instead)."""
    fits, problems = [], []
    for layer, (name, weights) in pairs:
        datasets = _match_weights(layer, weights)
        expected, got = [w.shape for w in layer.weights], [d.shape for d in datasets]
        if expected != got:
            problems.append(f'{layer.name} expects {expected}, file layer {name} has {got}')
        else:
            fits.append((layer, datasets))
    reader.assign(fits, problems, skip_mismatch,
                  lambda layer, arrays: layer.set_weights(arrays), stacklevel=4)


def _stored_bytes(stored):
    """The bytes of all the weight datasets of :meth:`Reader.layers`, from their metadata."""
    return sum(data.size * data.dtype.itemsize for _, weights in stored for _, data in weights)


@contextlib.contextmanager
def _writing(filepath):
    """A new h5 file written in place of ``filepath`` all-or-nothing."""
    with atomic_write(filepath) as tmp, h5py.File(tmp, 'w') as f:
        yield f


def save_weights(model, filepath):
    """Keras 3's layout for a name ending ``.weights.h5`` (what Keras 3 insists on), Keras 2's
    otherwise."""
    with _writing(filepath) as f:
        if str(filepath).endswith('.weights.h5'):
            keras3_weights.write_weights(f, model)
        else:
            keras_h5.write_layers(f.create_group('model_weights'), model, _stored_order)
            _write_version(f['model_weights'].attrs)


def load_weights(model, filepath, by_name=False, skip_mismatch=False):
    """Load weights saved by ``save_weights``/``save`` (or Keras 2 or 3): Keras 3's layout by
    its layer keys; Keras 2's matched to the layers by the file's order or, with ``by_name``,
    by layer name, and to each layer's weights by name. ``skip_mismatch`` skips, with a
    warning, the layers whose weights do not fit instead of refusing the file."""
    remove_stale_temps(filepath)
    with keras_h5.open_h5(filepath) as reader:
        if keras3_weights.is_keras3(reader.file):
            if by_name:
                raise reader.error('by_name=True is for Keras 2 h5 files; a Keras 3 '
                                   '.weights.h5 file is matched by its layer keys')
            keras3_weights.load_weights(reader, model, skip_mismatch=skip_mismatch)
            return
        group = reader.group(reader.file, 'model_weights') or reader.file
        stored, ordered = reader.layers(group)
        if by_name:
            _load_by_name(reader, model, stored, skip_mismatch)
        else:
            _load_layers(reader, model, stored, ordered, skip_mismatch)


def _load_by_name(reader, model, stored, skip_mismatch):
    """Keras 2's ``by_name=True``: each layer of ``model`` takes the stored layer of its name;
    layers the file lacks keep their weights, stored layers the model lacks are ignored."""
    names = [name for name, _ in stored]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise reader.error(f'by_name=True needs unique layer names; the file has '
                           f'{", ".join(twice)} more than once')
    by_name = dict(stored)
    pairs = [(layer, (layer.name, by_name[layer.name])) for layer in _weight_layers(model)
             if layer.name in by_name]
    _load_pairs(reader, pairs, skip_mismatch)


# --- optimizer state ---------------------------------------------------------------------
# Keras's names of each minidl optimizer's slots: (minidl slot, tf-keras 2.11+'s name, older
# tf.keras's, Keras 3's), in tf-keras's order. tf-keras's SGD keeps its slot even without
# momentum.
_SLOTS = {'SGD': [('velocity', 'm', 'momentum', 'momentum')],
          'RMSprop': [('sq_avg', 'velocity', 'rms', 'velocity')],
          'Adam': [('m', 'm', 'm', 'momentum'), ('v', 'v', 'v', 'velocity')]}
_INDEX = re.compile(r':\d+$')  # the ':0' TensorFlow appends to variable names


def _slots(optimizer):
    """``_SLOTS`` of ``optimizer``'s class, or of the minidl class it derives from."""
    kind = next((cls.__name__ for cls in type(optimizer).__mro__ if cls.__name__ in _SLOTS),
                None)
    if kind is None:
        raise ValueError(f'{type(optimizer).__name__} has no Keras counterpart; minidl saves '
                         f'the state of {", ".join(_SLOTS)}')
    return _SLOTS[kind]


def _write_optimizer(f, model):
    """``optimizer_weights`` as tf-keras writes it and reads it back (by position):
    ``iteration:0``, then for each trainable weight each slot, ``<optimizer>/<slot>/<weight>:0``
    (zeros for a weight not updated yet)."""
    optimizer, params = model.optimizer, model.trainable_weights
    iterations, slots = optimizer.get_state(params)
    named = [('iteration:0', np.int64(iterations))]
    for w, state in zip(params, slots):
        for slot, keras_slot, *_ in _slots(optimizer):
            named.append((f'{optimizer.name}/{keras_slot}/{w.name}:0',
                          state.get(slot, np.zeros(w.shape, w.dtype))))
    group = f.create_group('optimizer_weights')
    keras_h5.write_names(group.attrs, 'weight_names', [name for name, _ in named])
    for name, array in named:
        keras_h5.write_array(group, name, array)


def _load_optimizer(reader, model):
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
    for slot, tf_keras, tf_keras_1, keras_3 in _slots(optimizer):
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
_INERT = {'name': None, 'weight_decay': (0,), 'use_ema': (False,),
          'ema_momentum': None, 'ema_overwrite_frequency': None, 'jit_compile': None,
          'is_legacy_optimizer': None, 'amsgrad': (False,), 'centered': (False,)}
_ARGUMENTS = {'SGD': ('momentum', 'nesterov'), 'RMSprop': ('rho', 'epsilon'),
              'Adam': ('beta_1', 'beta_2', 'epsilon')}
_LOSSES = {'CategoricalCrossentropy': 'categorical_crossentropy',
           'SparseCategoricalCrossentropy': 'sparse_categorical_crossentropy',
           'BinaryCrossentropy': 'binary_crossentropy', 'MeanSquaredError': 'mse'}


def training_config(model):
    """The ``training_config`` tf-keras writes: the optimizer as ``Custom>Adam`` etc. with
    tf-keras's arguments (a ``decay`` becomes the ``InverseTimeDecay`` schedule that computes
    the same rate), the loss and metrics by name."""
    optimizer = model.optimizer
    config = optimizer.get_config()
    decay = config.pop('decay')
    if decay:
        config['learning_rate'] = {'class_name': 'InverseTimeDecay', 'config': {
            'initial_learning_rate': config['learning_rate'], 'decay_steps': 1,
            'decay_rate': decay, 'staircase': False, 'name': None}}
    return {'loss': model.loss.name, 'metrics': [key for key, _ in model.metrics],
            'weighted_metrics': None, 'loss_weights': None,
            'optimizer_config': {'class_name': f'Custom>{type(optimizer).__name__}',
                                 'config': config}}


def compile_arguments(training):
    """``(optimizer, loss, metrics)`` for ``compile`` from a ``training_config`` as tf-keras,
    Keras 2 or older minidl wrote it. What minidl cannot train as saved (another optimizer,
    gradient clipping, a loss on logits, several outputs) is a ValueError naming it."""
    if 'optimizer_config' not in training:  # minidl before it wrote Keras's spelling
        return optimizers.get(training['optimizer']), training['loss'], training['metrics']
    if training.get('loss_weights') or training.get('weighted_metrics'):
        raise ValueError('loss_weights and weighted_metrics are not supported')
    return (_optimizer(training['optimizer_config']), _loss(training['loss']),
            [_metric(m) for m in _flat(training.get('metrics') or [])])


def _optimizer(spec):
    """A minidl optimizer from a Keras ``{'class_name', 'config'}``."""
    name = spec['class_name'].split('>')[-1]
    kind = {key.lower(): key for key in _ARGUMENTS}.get(name.lower())
    if kind is None:
        raise ValueError(f'optimizer {name} is not one minidl has ({", ".join(_ARGUMENTS)})')
    config = {key: value for key, value in spec['config'].items() if value is not None}
    learning_rate, decay = _learning_rate(config.pop('learning_rate', config.pop('lr', None)))
    decay += config.pop('decay', 0.0) or 0.0
    if kind == 'RMSprop' and not config.get('momentum'):
        config.pop('momentum', None)
    kept = {key: config.pop(key) for key in _ARGUMENTS[kind] if key in config}
    unused = sorted(key for key, value in config.items() if key not in _INERT or (
        _INERT[key] is not None and value not in _INERT[key]))
    if unused:
        raise ValueError(f'{name} arguments minidl does not have: '
                         f'{", ".join(f"{key}={config[key]!r}" for key in unused)}')
    if learning_rate is not None:
        kept['learning_rate'] = learning_rate
    return getattr(optimizers, kind)(decay=decay, **kept)


def _learning_rate(value):
    """``(learning rate, decay)`` of a Keras learning rate: a number, or the
    ``InverseTimeDecay`` schedule ``lr / (1 + rate * step / steps)`` minidl's ``decay`` is."""
    if not isinstance(value, dict):
        return value, 0.0
    config = value.get('config', {})
    if value.get('class_name') != 'InverseTimeDecay' or config.get('staircase'):
        raise ValueError(f'learning-rate schedule {value.get("class_name")} is not supported '
                         f'(minidl has decay, which is InverseTimeDecay)')
    if not float(config['decay_steps']) > 0:
        raise ValueError(f'InverseTimeDecay decay_steps must be > 0, got '
                         f'{config["decay_steps"]!r}')
    return config['initial_learning_rate'], float(config['decay_rate']) / config['decay_steps']


def _loss(spec):
    """A loss name from a Keras loss: a name, or ``{'class_name', 'config'}`` of a loss class
    (on probabilities: minidl fuses the output activation itself)."""
    if isinstance(spec, list) and len(spec) == 1:
        spec = spec[0]
    if isinstance(spec, str):
        return spec
    if not isinstance(spec, dict) or spec.get('class_name') not in _LOSSES:
        raise ValueError(f'loss {spec!r} is not one minidl has')
    if spec.get('config', {}).get('from_logits'):
        raise ValueError(f'{spec["class_name"]}(from_logits=True) is not supported')
    return _LOSSES[spec['class_name']]


def _flat(metrics):
    """The metrics of a single-output model: tf-keras nests them in a list per output."""
    if isinstance(metrics, dict):
        metrics = list(metrics.values())
    if len(metrics) == 1 and isinstance(metrics[0], list):
        return metrics[0]
    if any(isinstance(m, (list, dict)) for m in metrics):
        raise ValueError('metrics of several outputs are not supported')
    return metrics


def _metric(spec):
    """A metric name from a Keras metric: a name, or tf-keras's ``MeanMetricWrapper`` whose
    ``name`` is the name it was compiled with."""
    if isinstance(spec, str):
        return spec
    config = spec['config'] if isinstance(spec, dict) else {}
    if 'name' not in config:
        raise ValueError(f'metric {spec!r} is not one minidl has')
    return config['name']


# --- whole models ------------------------------------------------------------------------
def save_model(model, filepath):
    """``model`` in Keras 2's h5 layout, or in Keras 3's ``.keras`` archive where
    ``filepath`` ends so."""
    if str(filepath).endswith('.keras'):
        keras_archive.save_model(model, filepath)
        return
    config = json.dumps(file_config(model, filepath))
    with _writing(filepath) as f:
        keras_h5.write_text(f.attrs, 'model_config', config)
        _write_version(f.attrs)
        if model.loss is not None:
            keras_h5.write_text(f.attrs, 'training_config', json.dumps(training_config(model)))
            _write_optimizer(f, model)
        keras_h5.write_layers(f.create_group('model_weights'), model, _stored_order)
        _write_version(f['model_weights'].attrs)


def _write_version(attrs):
    """``keras_version`` and ``backend``, where Keras 2 puts them: tf-keras reads weights
    without a ``keras_version`` as Keras 1's and converts their layouts."""
    attrs['keras_version'], attrs['backend'] = np.bytes_(KERAS_VERSION), np.bytes_('minidl')


def load_model(filepath, compile=True):  # noqa: A002
    """The model ``save_model`` (or Keras) wrote: built from its config, given its weights
    and, with ``compile``, compiled with its optimizer in the state it was saved in. A zip
    file (or a path ending ``.keras``) is read as a Keras 3 archive, anything else as Keras
    2's h5 layout."""
    remove_stale_temps(filepath)
    if keras_archive.is_archive(filepath) or str(filepath).endswith('.keras'):
        return keras_archive.load_model(filepath)
    with keras_h5.open_h5(filepath) as reader:
        f = reader.file
        config = _json(reader, f, 'model_config')
        if config is None:
            raise reader.error('no model_config attribute; was it written by save_weights '
                               'rather than save?')
        group = reader.group(f, 'model_weights')
        if group is None:
            raise reader.error('no model_weights group')
        stored, ordered = reader.layers(group)
        budget = _stored_bytes(stored) + BUILD_SLACK
        with Layer.weight_budget(budget, reader.path):
            model = from_config(config, reader.path)
        _load_layers(reader, model, stored, ordered)
        training = _json(reader, f, 'training_config') if compile else None
        if training is not None:
            with _config_errors(reader, 'training_config', compile_hint=True):
                model.compile(*compile_arguments(training))
            _load_optimizer(reader, model)
    return model


def _json(reader, f, key):
    """The JSON attribute ``key`` of the file, parsed; None when absent."""
    text = reader.text(f, key)
    try:
        return None if text is None else json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise reader.error(f'{key} is not valid JSON ({exc})') from None


@contextlib.contextmanager
def _config_errors(reader, key, compile_hint=False):
    """A config that cannot be built (unknown classes, wrong types, missing keys) becomes a
    WeightFileError naming the file (and, for compile settings, the way around them)."""
    try:
        yield
    except WeightFileError:
        raise
    except CONFIG_ERRORS as exc:
        hint = '; load_model(path, compile=False) loads the model uncompiled' \
            if compile_hint else ''
        raise reader.error(f'{key} cannot be built: {type(exc).__name__}: {exc}{hint}') \
            from None
