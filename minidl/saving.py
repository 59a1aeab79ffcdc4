"""Saving and loading models in HDF5, laid out like Keras's h5 files.

``model.save(path)`` writes the architecture as JSON (attribute ``model_config``), the compile
settings (``training_config``) and every weight under ``model_weights/<layer>/<weight>``;
``save_weights`` writes only the weights. Files are written to a temporary name and renamed,
so an interrupted save never leaves a half-written file behind.

Because the layout is Keras's, the same reader loads Keras's own weight files, such as the
pretrained ImageNet VGG16 (``applications.VGG16(weights='imagenet')``). The readers for
other frameworks' files live in :mod:`minidl.io`, as DESIGN.md plans; Keras's format needs
none of its own there.
"""
import json

import h5py

from minidl import layers as layers_module
from minidl import optimizers
from minidl.layers.base import Layer
from minidl.utils import atomic_write


def _layer_classes():
    return {name: obj for name, obj in vars(layers_module).items()
            if isinstance(obj, type) and issubclass(obj, Layer)}


def serialize(layer):
    return {'class_name': type(layer).__name__, 'config': layer.get_config()}


def deserialize(spec):
    """Rebuild a layer or a model from ``{'class_name': ..., 'config': ...}``."""
    name = spec['class_name']
    if name == 'Sequential':
        return _sequential_from_config(spec['config'])
    if name in ('Model', 'Functional'):
        return _functional_from_config(spec['config'])
    classes = _layer_classes()
    if name not in classes:
        raise ValueError(f'unknown layer class {name!r} in the saved model')
    return classes[name].from_config(spec['config'])


def sequential_config(model):
    config = {'name': model.name, 'layers': [serialize(layer) for layer in model.layers]}
    if model.built:
        config['batch_input_shape'] = list(model.input_shape)
    return config


def _sequential_from_config(config):
    from minidl.models import Sequential
    model = Sequential(name=config['name'])
    for spec in config['layers']:
        model.add(deserialize(spec))
    if not model.built and config.get('batch_input_shape'):
        model.build(tuple(config['batch_input_shape']))
    return model


def functional_config(model):
    """Layers in graph order, each with the name of the layer whose output it takes."""
    specs = [dict(serialize(layer), inbound=[]) for layer in model.layers]
    by_layer = {id(layer): spec for layer, spec in zip(model.layers, specs)}
    for node in model._nodes:
        by_layer[id(node.layer)]['inbound'] = [x.layer.name for x in node.inputs]
    return {'name': model.name, 'layers': specs,
            'input_layers': [x.layer.name for x in model.inputs],
            'output_layers': [y.layer.name for y in model.outputs]}


def _functional_from_config(config):
    from minidl.models import Model
    outputs = {}
    for spec in config['layers']:
        layer = deserialize(spec)
        outputs[layer.name] = layer.output if not spec['inbound'] else \
            layer(outputs[spec['inbound'][0]])
    return Model([outputs[n] for n in config['input_layers']],
                 [outputs[n] for n in config['output_layers']], name=config['name'])


# --- weights -----------------------------------------------------------------------------
def _write_weights(group, model):
    for layer in model.layers:
        sub = group.create_group(layer.name)
        if hasattr(layer, 'layers'):
            _write_weights(sub, layer)
            continue
        names = [w.name.split('/')[-1] for w in layer.weights]
        sub.attrs['weight_names'] = names
        for name, w in zip(names, layer.weights):
            sub.create_dataset(name, data=w.numpy())


def _weight_layers(model):
    """Every leaf layer that holds weights, nested models flattened, in order."""
    found = []
    for layer in model.layers:
        if hasattr(layer, 'layers'):
            found += _weight_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


def _read_weight_groups(group):
    """(name, [arrays]) for every stored layer with weights, in file order. Keras's own files
    store the names as bytes; they come back as str."""
    found = []
    for name in group.attrs.get('layer_names', list(group.keys())):
        name = name.decode() if isinstance(name, bytes) else str(name)
        sub = group[name]
        if 'weight_names' in sub.attrs:
            arrays = [sub[n][()] for n in sub.attrs['weight_names']]
            if arrays:
                found.append((name, arrays))
        else:
            found += _read_weight_groups(sub)
    return found


def _assign(model, stored, filepath):
    """Give each layer with weights the stored arrays at its position; list every misfit."""
    targets = _weight_layers(model)
    if len(targets) != len(stored):
        raise ValueError(f'{filepath}: the file holds weights for {len(stored)} layers '
                         f'({", ".join(n for n, _ in stored)}) but {model.name} has '
                         f'{len(targets)} layers with weights '
                         f'({", ".join(layer.name for layer in targets)})')
    problems = []
    for layer, (name, arrays) in zip(targets, stored):
        expected = [w.shape for w in layer.weights]
        got = [a.shape for a in arrays]
        if expected != got:
            problems.append(f'{layer.name} expects {expected}, file layer {name} has {got}')
    if problems:
        raise ValueError(f'{filepath}: weights do not fit:\n  ' + '\n  '.join(problems))
    for layer, (_, arrays) in zip(targets, stored):
        layer.set_weights(arrays)


def save_weights(model, filepath):
    with atomic_write(filepath) as tmp, h5py.File(tmp, 'w') as f:
        _write_group(f.create_group('model_weights'), model)


def _write_group(group, model):
    group.attrs['layer_names'] = [layer.name for layer in model.layers]
    _write_weights(group, model)


def load_weights(model, filepath):
    """Load weights saved by ``save_weights``/``save``, matched to the layers by order."""
    with _open(filepath) as f:
        group = f['model_weights'] if 'model_weights' in f else f
        stored = _read_weight_groups(group)
    _assign(model, stored, filepath)


def _open(filepath):
    try:
        return h5py.File(filepath, 'r')
    except OSError as exc:
        raise ValueError(f'{filepath}: not a readable HDF5 model file ({exc})') from None


# --- whole models ------------------------------------------------------------------------
def save_model(model, filepath):
    with atomic_write(filepath) as tmp, h5py.File(tmp, 'w') as f:
        f.attrs['model_config'] = json.dumps(serialize(model))
        if model.loss is not None:
            f.attrs['training_config'] = json.dumps({
                'optimizer': {'class_name': type(model.optimizer).__name__,
                              'config': model.optimizer.get_config()},
                'loss': model.loss.name, 'metrics': model.compiled_metric_names})
        _write_group(f.create_group('model_weights'), model)


def load_model(filepath, compile=True):  # noqa: A002
    with _open(filepath) as f:
        if 'model_config' not in f.attrs:
            raise ValueError(f'{filepath}: no model_config attribute; was it written by '
                             f'save_weights rather than save?')
        model = deserialize(json.loads(f.attrs['model_config']))
        stored = _read_weight_groups(f['model_weights'])
        training = json.loads(f.attrs['training_config']) \
            if compile and 'training_config' in f.attrs else None
    _assign(model, stored, filepath)
    if training is not None:
        optimizer_cls = getattr(optimizers, training['optimizer']['class_name'])
        model.compile(optimizer_cls.from_config(training['optimizer']['config']),
                      training['loss'], training['metrics'])
    return model
