"""Keras 3's weight layout: ``save_weights('x.weights.h5')`` and the ``model.weights.h5``
inside a ``.keras`` archive.

The layout (as Keras 3.15 writes it)::

    /vars                          attrs name: the model itself (it holds no variables)
    /layers/<key>/vars             attrs name; datasets 0, 1, ...: the layer's variables
    /layers/<key>/layers/<key>/... a nested model's layers, the same way
    /optimizer/vars                datasets 0, 1, ...: iterations, learning rate, slots

A layer's ``<key>`` is not its name but its class's name in snake case, numbered among its
siblings of that class in model order (``conv2d``, ``dense``, ``dense_1``): Keras finds each
layer's variables by walking the model it loads into, so the keys are computed from the model,
never read from the file (the ``name`` attributes are not consulted; files from Keras 2.13 use
``_layer_checkpoint_dependencies`` for ``layers``, which is accepted). Within a layer, variables
are numbered trainable ones first, each kind in creation order. A functional model lists its
input layer (key ``input_layer``, no variables); a Sequential does not. minidl's functional
``Model`` takes Keras's class name ``Functional``.

Loading is strict where Keras is lenient: a weighted layer the file lacks, a stored layer the
model lacks, or a shape that does not fit is an error listing every misfit (or, with
``skip_mismatch``, a warning, the layer keeping its weights), never a partial silent load.
``save_weights`` files hold no optimizer variables (Keras 3's do not either); a ``.keras``
archive's weights file does, and :mod:`minidl.io.keras_training` gives them their meaning.
Reading goes through :class:`minidl.io.keras_h5.Reader`, so every dataset is checked from its
metadata before its data is read.
"""
import re

import numpy as np

from minidl.io import keras_h5

_CLASS_NAMES = {'Model': 'Functional'}  # minidl classes Keras 3 spells differently


def is_keras3(f):
    """Whether the open h5 file ``f`` holds Keras 3's layout rather than Keras 2's."""
    return 'layer_names' not in f.attrs and 'model_weights' not in f and \
        ('layers' in f or 'vars' in f or '_layer_checkpoint_dependencies' in f)


def snake_case(name):
    """Keras's key for a class name: ``Conv2D`` -> ``conv2d``, ``MaxPooling2D`` ->
    ``max_pooling2d``, ``GlobalAveragePooling1D`` -> ``global_average_pooling1d``."""
    name = re.sub(r'\W+', '', name)
    name = re.sub(r'(.)([A-Z][a-z]+)', r'\1_\2', name)
    return re.sub(r'([a-z])([A-Z])', r'\1_\2', name).lower()


def layer_keys(model):
    """``[(key, layer)]`` for ``model.layers``: the class's snake-case name, then ``_1``,
    ``_2``, ... for later layers of the same class."""
    counts, keys = {}, []
    for layer in model.layers:
        kind = type(layer).__name__
        base = snake_case(_CLASS_NAMES.get(kind, kind))
        seen = counts.get(base, -1) + 1
        counts[base] = seen
        keys.append((base if seen == 0 else f'{base}_{seen}', layer))
    return keys


def variables(layer):
    """A leaf layer's weights in Keras 3's order: created trainable first, then the rest."""
    return [w for w in layer._weights if w.trainable] + \
        [w for w in layer._weights if not w.trainable]


def _is_model(layer):
    return hasattr(layer, 'layers')


# --- writing -----------------------------------------------------------------------------
def write_weights(group, model):
    """Write ``model`` into the h5 ``group`` (a file's root) in Keras 3's layout."""
    _write_vars(group, model, [])
    _write_layers(group, model)


def _write_layers(group, model):
    for key, layer in layer_keys(model):
        sub = group.require_group('layers').create_group(key)
        _write_vars(sub, layer, [] if _is_model(layer) else variables(layer))
        if _is_model(layer):
            _write_layers(sub, layer)


def _write_vars(group, layer, weights):
    write_vars(group, layer.name, [w.numpy() for w in weights])


def write_vars(group, name, arrays):
    """``vars`` with ``name`` (fixed-length, so the file holds no global heap) and ``arrays``
    as datasets ``0``, ``1``, ... (a layer's variables, or an optimizer's)."""
    vars_group = group.create_group('vars')
    vars_group.attrs['name'] = np.bytes_(name.encode('utf-8'))
    for i, array in enumerate(arrays):
        keras_h5.write_array(vars_group, str(i), array)


# --- reading -----------------------------------------------------------------------------
def load_weights(reader, model, group=None, skip_mismatch=False):
    """Give ``model`` the weights of the Keras 3 layout in ``group`` (default: the root of
    ``reader``, a :class:`~minidl.io.keras_h5.Reader`). Every stored shape is checked against
    its weight before any data is read; the model changes only when all of it fits (with
    ``skip_mismatch``, the layers that do not fit are skipped with a warning)."""
    found, problems = [], []
    _match(reader, model, reader.file if group is None else group, found, problems)
    reader.assign(found, problems, skip_mismatch, _assign, stacklevel=3)


def _assign(layer, arrays):
    """Set a layer's weights from arrays in :func:`variables` order."""
    by_weight = {id(w): a for w, a in zip(variables(layer), arrays)}
    layer.set_weights([by_weight[id(w)] for w in layer.weights])


def _match(reader, model, group, found, problems):
    """Pair each weighted leaf layer under ``model`` with its stored datasets (into
    ``found``); describe every misfit, and every stored layer the model lacks, in
    ``problems``."""
    children = _children(reader, group)
    keys = layer_keys(model)
    for key, layer in keys:
        sub = reader.group(children, key) if children is not None else None
        where = f'{group.name.rstrip("/")}/layers/{key}'
        if _is_model(layer):
            if sub is None:
                if _weighted(layer):
                    problems.append(f'{layer.name} (a model, {where}) is not in the file')
                continue
            _match(reader, layer, sub, found, problems)
            continue
        stored = datasets(reader, sub, where) if sub is not None else []
        weights = variables(layer)
        expected, got = [w.shape for w in weights], [d.shape for d in stored]
        if expected != got:
            problems.append(f'{layer.name} ({where}) expects {expected}, the file has {got}')
        elif weights:
            found.append((layer, stored))
    problems += _strays(reader, children, {key for key, _ in keys})


def _children(reader, group):
    """The group of a model's layers (``layers``, or Keras 2.13's spelling), None if none."""
    children = reader.group(group, 'layers')
    return children if children is not None else \
        reader.group(group, '_layer_checkpoint_dependencies')


def _weighted(model):
    return any(_weighted(layer) if _is_model(layer) else layer._weights
               for layer in model.layers)


def datasets(reader, sub, where):
    """The datasets ``0``, ``1``, ... of ``sub/vars``, checked from their metadata."""
    vars_group = reader.group(sub, 'vars')
    if vars_group is None:
        return []
    names = list(vars_group.keys())
    if sorted(names) != sorted(str(i) for i in range(len(names))):
        raise reader.error(f'{where}/vars should hold datasets 0..{len(names) - 1}, holds '
                           f'{", ".join(sorted(names)[:10])}')
    return [reader.dataset(vars_group, str(i)) for i in range(len(names))]


def _strays(reader, children, keys):
    """A problem for each stored layer outside ``keys`` that holds variables or layers."""
    if children is None:
        return []
    problems = []
    for key in sorted(set(children.keys()) - keys):
        sub = reader.group(children, key)
        vars_group = reader.group(sub, 'vars')
        if (vars_group is not None and len(vars_group)) or _children(reader, sub) is not None:
            problems.append(f'the file holds {children.name}/{key}, which the model has no '
                            f'layer for')
    return problems
