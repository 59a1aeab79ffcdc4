"""Saving and loading models in HDF5, laid out like Keras's h5 files.

``model.save(path)`` writes the architecture as JSON (attribute ``model_config``), the compile
settings (``training_config``), every weight under ``model_weights/<layer>/<weight>`` and the
optimizer's state (its iteration count and each weight's slots, under ``optimizer_weights``, as
Keras 2 does), so training resumes exactly where it stopped; ``save_weights`` writes only the
weights. Files are written to a temporary name and renamed (:func:`minidl.utils.atomic_write`),
so an interrupted save never leaves a half-written file behind. The h5 layout itself, and the
checks that make a damaged file an error rather than a hang or a wrong answer, live in
:mod:`minidl.io.keras_h5`. The architecture is written in tf-keras 2's spelling, so tf-keras
``load_model`` reads it, and read in Keras 2's, Keras 3's or older minidl's: the translation
lives in :mod:`minidl.io.keras_config`. A path ending ``.keras`` is saved, and a zip file is
loaded, as a Keras 3 archive (:mod:`minidl.io.keras_archive`); this module is the front door
that picks the format.

Layers are matched in the order the file declares (``layer_names``); within a layer, weights
are matched by name (``kernel``, ``gamma``, ...), since a layer's weight order changes with
its trainable flags, and by position only where the names are Keras 1's. A model is built
from a file's config under a budget of the bytes the file stores, so a config cannot make it
allocate more than the weights it claims to hold. Because the layout is Keras's, the same
reader loads Keras's own weight files, such as the pretrained ImageNet VGG16
(``applications.VGG16(weights='imagenet')``).

Anything wrong with a file raises :class:`minidl.io.WeightFileError` naming the file.
"""
import contextlib
import json

import h5py
import numpy as np

from minidl import optimizers
from minidl.io import keras_archive, keras_h5
from minidl.io.errors import WeightFileError
from minidl.io.keras_config import BUILD_SLACK, CONFIG_ERRORS, from_config, serialize
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


def _load_layers(reader, model, stored, ordered):
    """Give ``model``'s layers the weights ``stored`` (from :meth:`Reader.layers`). Every
    stored shape is checked against its weight from the file's metadata before any data is
    read, and every misfit is listed; the model changes only when all of it has been read and
    verified."""
    pairs, problems = [], []
    for layer, (name, weights) in _match_layers(reader, model, stored, ordered):
        datasets = _match_weights(layer, weights)
        expected, got = [w.shape for w in layer.weights], [d.shape for d in datasets]
        if expected != got:
            problems.append(f'{layer.name} expects {expected}, file layer {name} has {got}')
        pairs.append((layer, datasets))
    if problems:
        raise reader.error('weights do not fit:\n  ' + '\n  '.join(problems))
    values = [(layer, [reader.array(d) for d in datasets]) for layer, datasets in pairs]
    while values:  # each stored array is freed as soon as its layer holds a copy
        layer, arrays = values.pop()
        layer.set_weights(arrays)


def _stored_bytes(stored):
    """The bytes of all the weight datasets of :meth:`Reader.layers`, from their metadata."""
    return sum(data.size * data.dtype.itemsize for _, weights in stored for _, data in weights)


@contextlib.contextmanager
def _writing(filepath):
    """A new h5 file written in place of ``filepath`` all-or-nothing."""
    with atomic_write(filepath) as tmp, h5py.File(tmp, 'w') as f:
        yield f


def save_weights(model, filepath):
    with _writing(filepath) as f:
        keras_h5.write_layers(f.create_group('model_weights'), model, _stored_order)


def load_weights(model, filepath):
    """Load weights saved by ``save_weights``/``save`` (or Keras), matched to the layers by the
    file's order and to each layer's weights by name."""
    remove_stale_temps(filepath)
    with keras_h5.open_h5(filepath) as reader:
        group = reader.group(reader.file, 'model_weights') or reader.file
        _load_layers(reader, model, *reader.layers(group))


# --- optimizer state ---------------------------------------------------------------------
def _model_weights(model):
    """Every weight of ``model`` in stored order: the optimizer state is listed by it."""
    return [w for layer in _weight_layers(model) for w in _stored_order(layer)]


def _write_optimizer(f, model):
    """``optimizer_weights``: ``iterations``, then ``<weight>/<slot>`` for every slot."""
    params = _model_weights(model)
    iterations, slots = model.optimizer.get_state(params)
    group = f.create_group('optimizer_weights')
    named = [(f'{w.name}/{slot}', array) for w, state in zip(params, slots)
             for slot, array in state.items()]
    keras_h5.write_names(group.attrs, 'weight_names', ['iterations'] + [n for n, _ in named])
    keras_h5.write_array(group, 'iterations', np.int64(iterations))
    for name, array in named:
        keras_h5.write_array(group, name, array)


def _load_optimizer(reader, model):
    """Restore the optimizer state ``_write_optimizer`` stored (files without one train on
    from a fresh optimizer, as before)."""
    group = reader.group(reader.file, 'optimizer_weights')
    if group is None:
        return
    names = reader.names(group, 'weight_names') or []
    iterations = reader.dataset(group, 'iterations') if names[:1] == ['iterations'] else None
    if iterations is None or iterations.shape != () or iterations.dtype.kind != 'i':
        raise reader.error('optimizer_weights has no iteration count')
    params = _model_weights(model)
    by_name = {w.name: w for w in params}
    slots = {id(w): {} for w in params}
    for name in names[1:]:
        weight, _, slot = name.rpartition('/')
        data = reader.dataset(group, name)
        if weight not in by_name or data.shape != by_name[weight].shape:
            raise reader.error(f'optimizer_weights/{name} ({data.shape}) is not a slot of a '
                               f'weight of {model.name}')
        slots[id(by_name[weight])][slot] = data
    state = [{slot: reader.array(data) for slot, data in slots[id(w)].items()} for w in params]
    try:
        model.optimizer.set_state(params, int(reader.array(iterations)), state)
    except ValueError as exc:
        raise reader.error(f'optimizer_weights do not fit: {exc}') from None


# --- whole models ------------------------------------------------------------------------
def save_model(model, filepath):
    """``model`` in Keras 2's h5 layout, or in Keras 3's ``.keras`` archive where
    ``filepath`` ends so."""
    if str(filepath).endswith('.keras'):
        keras_archive.save_model(model, filepath)
        return
    with _writing(filepath) as f:
        keras_h5.write_text(f.attrs, 'model_config', json.dumps(serialize(model)))
        _write_version(f.attrs)
        if model.loss is not None:
            keras_h5.write_text(f.attrs, 'training_config', json.dumps({
                'optimizer': {'class_name': type(model.optimizer).__name__,
                              'config': model.optimizer.get_config()},
                'loss': model.loss.name, 'metrics': model.compiled_metric_names}))
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
            with _config_errors(reader, 'training_config'):
                model.compile(optimizers.get(training['optimizer']), training['loss'],
                              training['metrics'])
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
def _config_errors(reader, key):
    """A config that cannot be built (unknown classes, wrong types, missing keys) becomes a
    WeightFileError naming the file."""
    try:
        yield
    except WeightFileError:
        raise
    except CONFIG_ERRORS as exc:
        raise reader.error(f'{key} cannot be built: {type(exc).__name__}: {exc}') from None
