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

import h5py
import numpy as np

from minidl.io import keras3_weights, keras_archive, keras_h5, torch_checkpoint
from minidl.io.errors import WeightFileError
from minidl.io.keras_config import BUILD_SLACK, file_config, from_config
from minidl.io.keras_training import (compile_arguments, config_errors,
                                      load_optimizer_weights, training_config,
                                      write_optimizer_weights)
from minidl.io.torch_weights import load_torch_weights
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
    """Load weights saved by ``save_weights``/``save`` (or Keras 2 or 3; a ``.keras`` archive
    too, as Keras 3 allows; or a PyTorch state_dict, see :func:`minidl.io.load_torch_weights`):
    Keras 3's layout by its layer keys; Keras 2's matched to the
    layers by the file's order or, with ``by_name``, by layer name, and to each layer's weights
    by name. ``skip_mismatch`` skips, with a warning, the layers whose weights do not fit
    instead of refusing the file."""
    remove_stale_temps(filepath)
    if torch_checkpoint.is_checkpoint(filepath):
        if by_name or skip_mismatch:
            raise WeightFileError(filepath, 'a torch.save file is matched by module order; '
                                            'by_name and skip_mismatch are for Keras files')
        load_torch_weights(model, filepath)
        return
    if keras_archive.is_archive(filepath):
        if by_name:
            raise WeightFileError(filepath, 'by_name=True is for Keras 2 h5 files; a .keras '
                                            'archive is matched by its layer keys')
        keras_archive.load_weights(model, filepath, skip_mismatch)
        return
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
            write_optimizer_weights(f, model)
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
        return keras_archive.load_model(filepath, compile)
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
            with config_errors(reader.path, 'training_config', compile_hint=True):
                model.compile(*compile_arguments(training))
            load_optimizer_weights(reader, model)
    return model


def _json(reader, f, key):
    """The JSON attribute ``key`` of the file, parsed; None when absent."""
    text = reader.text(f, key)
    try:
        return None if text is None else json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise reader.error(f'{key} is not valid JSON ({exc})') from None
