"""Keras model configs to minidl models and back: the one place that speaks Keras's dialects.

Reading (:func:`from_config`) takes three spellings of an architecture: Keras 2's
``model_config`` (tf-keras 2.x ``model.save('x.h5')``), Keras 3's ``config.json`` (inside a
``.keras`` archive) and the one older minidl files hold. They differ in how a layer is wrapped
(Keras 3 adds ``module``, ``registered_name``, ``build_config``), how an input shape is spelled
(``batch_input_shape``, ``batch_shape``), a dtype (a name or a ``DTypePolicy``), initializers and
constraints (a name or ``{'class_name': ..., 'config': ...}``) and a functional graph's edges
(Keras 2's ``[[['layer', 0, 0, {}]]]``, Keras 3's ``[{'args': [keras tensor], 'kwargs': {}}]``,
older minidl's ``inbound: ['layer']``). Every layer of a config is translated before any is
built, and whatever minidl cannot honour is collected, so one WeightFileError lists every
unsupported layer class and argument (layer, class, argument) rather than a TypeError from the
first constructor. What an argument means in Keras decides what happens to it:

* arguments the minidl layer takes pass through (an activation must be one minidl has);
* initializers the minidl layer does not take are dropped silently: they only pick starting
  values, which the file's weights replace (an unknown one where the layer takes one is
  dropped with a warning: the layer's default starts it);
* arguments that only shape training - regularizers, Dropout's ``noise_shape`` and ``seed``, a
  call's ``training`` flag - are dropped, with one warning naming those that were set;
* arguments minidl supports in one value only (``data_format='channels_last'``, ``groups=1``,
  ``sparse=False``, ``ragged=False``, ``mask_zero=False``, ...) are accepted at that value;
* BatchNormalization's ``axis`` must be the last axis, checked once the model is built;
* anything else, and a layer called more than once (shared layers), is refused.

Writing (:func:`serialize`, and :func:`keras3_config` for ``.keras`` archives) spells a model
as that Keras writes it, so tf-keras 2.x and Keras 3 ``load_model`` read minidl's files; the
Keras 2 spelling is also what ``model.get_config()`` returns. minidl's layer class names are
Keras's; its functional ``Model`` is written as Keras's ``Functional``.
"""
import inspect
import warnings

import numpy as np

from minidl import constraints, initializers
from minidl import layers as layers_module
from minidl.functions.activation import ACTIVATIONS
from minidl.io.errors import WeightFileError
from minidl.layers.base import Layer, snake_case
from minidl.layers.core import InputLayer
from minidl.layers.merging import Merge
from minidl.layers.normalization import BatchNormalization

BUILD_SLACK = 1 << 16  # bytes a model built from a file's config may take beyond its weights
# What building a damaged or foreign config raises; each becomes a WeightFileError.
CONFIG_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
                 RecursionError)
# Keras arguments minidl takes in one value only: the value that means what minidl does.
_ONLY = {'data_format': 'channels_last', 'groups': 1, 'sparse': False, 'ragged': False,
         'optional': False, 'mask_zero': False, 'keepdims': False, 'synchronized': False,
         'renorm': False, 'lora_rank': None, 'quantization_config': None}
# Keras arguments that change only training, never what a loaded model computes.
_TRAINING_ONLY = ('kernel_regularizer', 'bias_regularizer', 'activity_regularizer',
                  'embeddings_regularizer', 'beta_regularizer', 'gamma_regularizer',
                  'noise_shape', 'seed')
# Keras arguments that configure a feature refused unless off (renorm, LoRA): no effect.
_UNUSED = ('renorm_clipping', 'renorm_momentum', 'lora_alpha')
_MODELS = ('Sequential', 'Functional', 'Model')


def _layer_classes():
    return {name: obj for name, obj in vars(layers_module).items()
            if isinstance(obj, type) and issubclass(obj, Layer)}


def _arguments(cls):
    """The keyword arguments ``cls`` takes, its bases' (through ``**kwargs``) included."""
    names = []
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params if p.name != 'self' and
                  p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return set(names)


# --- reading -----------------------------------------------------------------------------
def from_config(spec, source, key='model_config'):
    """The model (or layer) a Keras 2, Keras 3 or minidl config ``spec`` describes. Whatever
    cannot be built raises one WeightFileError naming ``source`` (the file) and ``key``."""
    translation = _Translation()
    try:
        build = translation.spec(spec)
        translation.refuse(source, key)
        model = build()
        translation.check_axes()
        translation.refuse(source, key)
    except WeightFileError:
        raise
    except CONFIG_ERRORS as exc:
        raise WeightFileError(source, f'{key} cannot be built: {type(exc).__name__}: '
                                      f'{exc}') from None
    translation.warn(source)
    return model


class _Translation:
    """One config's translation: a builder per layer, and what it refused and dropped."""

    def __init__(self):
        self.problems, self.dropped, self.axes = [], [], []
        self.classes = _layer_classes()

    def refuse(self, source, key):
        if self.problems:
            raise WeightFileError(source, f'{key} uses what minidl does not support:\n  ' +
                                  '\n  '.join(self.problems))

    def warn(self, source):
        if self.dropped:
            warnings.warn(f'{source}: settings that only affect training were dropped: ' +
                          '; '.join(self.dropped), stacklevel=3)

    def spec(self, spec, inputs=1):
        """A function building the layer or model ``{'class_name': ..., 'config': ...}``
        describes; ``inputs`` is the number of tensors the graph gives it."""
        class_name, config = spec['class_name'], spec['config']
        if not isinstance(config, dict):
            raise TypeError(f'the config of a {class_name} is not a dict')
        module, registered = spec.get('module') or 'keras', spec.get('registered_name') or ''
        if not module.startswith('keras') or '>' in registered:
            self.problems.append(f'{config.get("name")} ({class_name}): a custom class '
                                 f'({registered or module})')
            return None
        if class_name == 'Sequential':
            return self.sequential(config)
        if class_name in _MODELS:
            return self.functional(config)
        return self.layer(class_name, config, inputs)

    def layer(self, class_name, config, inputs):
        label = f'{config.get("name")} ({class_name})'
        cls = self.classes.get(class_name)
        if cls is None:
            self.problems.append(f'{label}: unknown layer class')
            return None
        if inputs > 1 and not issubclass(cls, Merge):
            self.problems.append(f'{label}: takes one input, the graph gives it {inputs}')
        kwargs, axis = {}, None
        accepted = _arguments(cls)
        for key, value in config.items():
            if key == 'axis' and cls is BatchNormalization:
                axis = value[0] if isinstance(value, list) and len(value) == 1 else value
            else:
                self.argument(label, accepted, kwargs, key, value)
        return lambda: self.built(cls.from_config(kwargs), axis)

    def argument(self, label, accepted, kwargs, key, value):
        """Translate one Keras argument into ``kwargs`` or note it as dropped or refused."""
        key = 'batch_input_shape' if key == 'batch_shape' else key
        if key in _UNUSED:
            return
        if key in _ONLY:
            if value != _ONLY[key]:
                self.problems.append(f'{label}: argument {key}={value!r} (minidl supports '
                                     f'{_ONLY[key]!r} only)')
        elif key in _TRAINING_ONLY:
            if value is not None:
                self.dropped.append(f'{label} {key}={_short(value)}')
        elif key.endswith('_initializer'):
            if key in accepted:
                kwargs[key] = self.initializer(label, key, value)
        elif key not in accepted:
            self.problems.append(f'{label}: unknown argument {key}={_short(value)}')
        elif key == 'dtype':
            kwargs[key] = self.dtype(label, value)
        elif key == 'activation':
            kwargs[key] = self.activation(label, value)
        elif key.endswith('_constraint'):
            kwargs[key] = self.constraint(label, key, value)
        else:
            kwargs[key] = value

    def dtype(self, label, value):
        """A dtype name from a name or a (Keras 3 ``DTypePolicy``, Keras 2 ``Policy``) dict."""
        name = value['config']['name'] if isinstance(value, dict) else value
        try:
            return np.dtype(name).name
        except TypeError:
            self.problems.append(f'{label}: argument dtype={name!r} (minidl computes in one '
                                 f'NumPy dtype, such as float32)')
            return 'float32'

    def activation(self, label, value):
        """An activation name; Keras 3 may write ``{'class_name': 'function', 'config':
        'relu', ...}``."""
        name = value.get('config') if isinstance(value, dict) else value
        if (name or 'linear') not in ACTIVATIONS:
            self.problems.append(f'{label}: argument activation={name!r} (minidl has '
                                 f'{", ".join(ACTIVATIONS)})')
            return None
        return name

    def initializer(self, label, key, value):
        """A minidl initializer for a Keras one; an unknown one leaves the layer's default
        (the weights loaded next replace the values anyway)."""
        if isinstance(value, dict):
            value = {'class_name': value.get('class_name'), 'config': {
                k: v for k, v in (value.get('config') or {}).items() if v is not None}}
        try:
            return _by_name(initializers.get(value))
        except (ValueError, TypeError) as exc:
            self.dropped.append(f'{label} {key} ({exc}; the default is used)')
            return 'glorot_uniform' if key == 'kernel_initializer' else \
                'uniform' if key == 'embeddings_initializer' else 'zeros'

    def constraint(self, label, key, value):
        if isinstance(value, dict):
            value = {'class_name': value.get('class_name'), 'config': value.get('config', {})}
        try:
            return constraints.get(value)
        except (ValueError, TypeError) as exc:
            self.problems.append(f'{label}: argument {key} ({exc})')
            return None

    def built(self, layer, axis):
        """``layer``, its BatchNormalization ``axis`` kept to check once it is built."""
        if axis is not None:
            self.axes.append((layer, axis))
        return layer

    def check_axes(self):
        """minidl normalises the last axis: refuse a BatchNormalization over another one."""
        for layer, axis in self.axes:
            rank = len(layer.input_shape) if layer.built else None
            if axis != -1 and (rank is None or axis != rank - 1):
                self.problems.append(f'{layer.name} (BatchNormalization): argument axis={axis}'
                                     f' (minidl normalises the last axis only, of inputs '
                                     f'{layer.input_shape})')

    def sequential(self, config):
        from minidl.models import Sequential
        builders = [self.spec(spec) for spec in config['layers']]
        shape = config.get('build_input_shape') or config.get('batch_input_shape')

        def build():
            model = Sequential(name=config['name'])
            for builder in builders:
                model.add(builder())
            if not model.built and shape:
                model.build(tuple(shape))
            return _frozen(model, config)
        return build

    def functional(self, config):
        from minidl.models import Model
        entries, classes = [], {}
        for spec in config['layers']:
            name = spec.get('name') or spec['config']['name']
            sources = self.sources(spec, name, classes)
            classes[name] = spec['class_name']
            entries.append((name, self.spec(spec, max(len(sources), 1)), sources))

        def build():
            tensors = {}
            for name, builder, sources in entries:
                layer = builder()
                given = [tensors[source] for source in sources]
                if not given:
                    tensors[name] = layer.output
                else:
                    tensors[name] = layer(given if len(given) > 1 else given[0])
            model = Model([tensors[n] for n in _ends(config['input_layers'])],
                          [tensors[n] for n in _ends(config['output_layers'])],
                          name=config['name'])
            return _frozen(model, config)
        return build

    def sources(self, spec, name, known):
        """The names of the layers whose outputs the layer of ``spec`` takes, from its one
        call (Keras 2, Keras 3 or minidl spelling); an input layer has none. ``known`` maps
        the layers before it to their classes."""
        label = f'{name} ({spec["class_name"]})'
        nodes = _nodes(spec)
        if len(nodes) > 1:
            self.problems.append(f'{label}: called {len(nodes)} times (shared layers are not '
                                 f'supported)')
        if not nodes and spec['class_name'] != 'InputLayer':
            self.problems.append(f'{label}: takes no input in the graph')
        refs, call_kwargs = nodes[0] if nodes else ([], {})
        for key, value in call_kwargs.items():
            if key == 'training':
                if value is not None:
                    self.dropped.append(f'{label} called with training={value!r}')
            elif not (key == 'mask' and value is None):
                self.problems.append(f'{label}: call argument {key}={_short(value)}')
        for source, node, tensor in refs:
            if source not in known or node != _call_node(known[source]) and node != 0 or \
                    tensor != 0:
                self.problems.append(f'{label}: takes output {node}, {tensor} of {source!r}, '
                                     f'which no layer before it makes')
        return [ref[0] for ref in refs]


def _nodes(spec):
    """``[(refs, call kwargs)]``, one per call of a functional config's layer, each ref
    ``(layer name, node index, tensor index)``."""
    if 'inbound' in spec:  # older minidl: the names of the layers it takes
        return [([(name, 0, 0) for name in spec['inbound']], {})] if spec['inbound'] else []
    nodes = []
    for node in spec.get('inbound_nodes') or []:
        if isinstance(node, dict):  # Keras 3 calls layers with the model's own training flag
            refs = [tuple(t['config']['keras_history']) for t in _keras_tensors(node['args'])]
            kwargs = {k: v for k, v in (node.get('kwargs') or {}).items() if k != 'training'}
            nodes.append((refs, kwargs))
        else:  # Keras 2: [[name, node, tensor, kwargs], ...]
            kwargs = {}
            for ref in node:
                kwargs.update(ref[3] if len(ref) > 3 else {})
            nodes.append(([tuple(ref[:3]) for ref in node], kwargs))
    return nodes


def _by_name(initializer):
    """An initializer at its defaults by its name, as minidl layers keep one given by name
    (so a minidl model's config survives the round trip), any other as it is."""
    if not isinstance(initializer, initializers.Initializer):
        return initializer
    name = snake_case(type(initializer).__name__)
    default = initializers.get(name) if hasattr(initializers, name) else None
    same = type(default) is type(initializer) and \
        default.get_config() == initializer.get_config()
    return name if same else initializer


def _call_node(class_name):
    """The node index of a layer's first call in a functional graph: Keras 2 counts a
    nested model's own graph as its node 0."""
    return 1 if class_name in _MODELS else 0


def _keras_tensors(args):
    """The Keras 3 ``__keras_tensor__`` records in a node's (nested) arguments."""
    found, stack = [], [args]
    while stack:
        item = stack.pop()
        if isinstance(item, dict) and item.get('class_name') == '__keras_tensor__':
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack += reversed(item)
    return found


def _ends(value):
    """The layer names of ``input_layers``/``output_layers``: Keras 2's ``[[name, 0, 0]]``,
    Keras 3's ``[name, 0, 0]`` for one, minidl's ``[name]``."""
    if len(value) == 3 and isinstance(value[0], str) and not isinstance(value[1], str):
        return [value[0]]
    return [end if isinstance(end, str) else end[0] for end in value]


def _frozen(model, config):
    """``model`` frozen as a whole where its config says so (its layers keep their flags
    otherwise)."""
    if config.get('trainable') is False:
        model.trainable = False
    return model


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


# --- writing -----------------------------------------------------------------------------
class _Keras2:
    """How tf-keras 2.x spells a config (``model_config`` of ``model.save('x.h5')``)."""

    def wrap(self, module, class_name, config, registered_name=None):
        return {'class_name': class_name, 'config': config}

    def dtype(self, name):
        return name

    def input_spec(self, name, shape, dtype):
        return self.wrap('keras.layers', 'InputLayer', {
            'batch_input_shape': list(shape), 'dtype': dtype, 'sparse': False, 'ragged': False,
            'name': name})

    def layer_config(self, config):
        return config

    def declare_input(self, config, shape, first):
        """Tell a Sequential ``config`` its input ``shape`` where the model declared it: on
        its first layer if that has an input shape, else by an InputLayer put first."""
        if 'batch_input_shape' not in config['layers'][0]['config']:
            config['layers'].insert(0, self.input_spec(f'{first}_input', shape, 'float32'))

    def built(self, spec, layer):
        return spec

    def node(self, inputs):
        return [[[x.layer.name, _call_node(class_name(x.layer)), 0, {}] for x in inputs]]

    def ends(self, tensors):
        return [[t.layer.name, 0, 0] for t in tensors]


class _Keras3(_Keras2):
    """How Keras 3 spells a config (``config.json`` of a ``.keras`` archive)."""

    def wrap(self, module, class_name, config, registered_name=None):
        return {'module': module, 'class_name': class_name, 'config': config,
                'registered_name': registered_name}

    def dtype(self, name):
        return self.wrap('keras', 'DTypePolicy', {'name': name})

    def input_spec(self, name, shape, dtype):
        return self.wrap('keras.layers', 'InputLayer', {
            'batch_shape': list(shape), 'dtype': dtype, 'sparse': False, 'ragged': False,
            'name': name})

    def layer_config(self, config):
        config.pop('batch_input_shape', None)  # Keras 3 takes shapes from an InputLayer only
        config.pop('input_length', None)
        return config

    def declare_input(self, config, shape, first):
        """An InputLayer first, and ``build_input_shape``, as Keras 3 writes them."""
        config['layers'].insert(0, self.input_spec(f'{first}_input', shape, 'float32'))
        config['build_input_shape'] = list(shape)

    def built(self, spec, layer):
        if layer.built and not isinstance(layer, InputLayer):
            spec['build_config'] = {'input_shape': list(layer.input_shape)}
        return spec

    def node(self, inputs):
        return [{'args': [self.wrap(None, '__keras_tensor__', {
            'shape': list(x.shape), 'dtype': 'float32',
            'keras_history': [x.layer.name, 0, 0]}) for x in inputs], 'kwargs': {}}]

    def ends(self, tensors):
        ends = super().ends(tensors)
        return ends[0] if len(ends) == 1 else ends


KERAS2, KERAS3 = _Keras2(), _Keras3()


def class_name(layer):
    """The Keras class ``layer`` is written as: its own, Functional for a functional Model."""
    from minidl.models import Model, Sequential
    if isinstance(layer, Model) and not isinstance(layer, Sequential):
        return 'Functional'
    return type(layer).__name__


def serialize(layer, dialect=KERAS2):
    """``{'class_name': ..., 'config': ...}`` of a layer or model, as Keras 2 (``KERAS2``) or
    Keras 3 (``KERAS3``) writes it."""
    name = class_name(layer)
    if name == 'Sequential':
        spec = dialect.wrap('keras', name, sequential_config(layer, dialect))
    elif name == 'Functional':
        spec = dialect.wrap('keras.src.models.functional', name,
                            functional_config(layer, dialect), name)
    elif isinstance(layer, InputLayer):
        spec = dialect.input_spec(layer.name, layer.input_shape_arg, layer.dtype.name)
    else:
        spec = dialect.wrap('keras.layers', name, _layer_config(layer, dialect))
    return dialect.built(spec, layer)


def keras3_config(model):
    """The ``config.json`` of a ``.keras`` archive holding ``model``."""
    return serialize(model, KERAS3)


def _layer_config(layer, dialect):
    """A layer's own config with Keras's spelling of its dtype, initializers, constraints."""
    config = layer.get_config()
    config['dtype'] = dialect.dtype(layer.dtype.name)
    for key in sorted(_arguments(type(layer))):
        if key.endswith('_initializer') and hasattr(layer, key):
            config[key] = dialect.wrap('keras.initializers',
                                       *_initializer_config(getattr(layer, key)))
        elif key.endswith('_constraint') and config.get(key):
            config[key] = dialect.wrap('keras.constraints', config[key]['class_name'],
                                       config[key]['config'])
    if isinstance(layer, BatchNormalization):
        config['axis'] = -1
    return dialect.layer_config(config)


def _initializer_config(initializer):
    """``(class name, config)`` of an initializer given by name or as an object."""
    initializer = initializers.get(initializer)
    if not isinstance(initializer, initializers.Initializer):
        raise TypeError(f'cannot save the initializer {initializer!r}: only Initializer '
                        f'objects have a config; subclass minidl.initializers.Initializer')
    return type(initializer).__name__, initializer.get_config()


def sequential_config(model, dialect=KERAS2):
    """A Sequential's layers, its input shape given as that Keras gives it."""
    config = {'name': model.name, 'trainable': model.trainable,
              'layers': [serialize(layer, dialect) for layer in model.layers]}
    if model.built and model.layers:
        dialect.declare_input(config, model.input_shape, model.layers[0].name)
    return config


def functional_config(model, dialect=KERAS2):
    """A functional model's layers in graph order, each with the call that feeds it."""
    inputs = {id(node.layer): node.inputs for node in model._nodes}
    layers = []
    for layer in model.layers:
        spec = serialize(layer, dialect)
        spec['name'] = layer.name
        spec['inbound_nodes'] = dialect.node(inputs[id(layer)]) if id(layer) in inputs else []
        layers.append(spec)
    return {'name': model.name, 'trainable': model.trainable, 'layers': layers,
            'input_layers': dialect.ends(model.inputs),
            'output_layers': dialect.ends(model.outputs)}
