"""Keras model configs to minidl models and back: the one place that speaks Keras's dialects.

Reading (:func:`from_config`) takes three spellings of an architecture: Keras 2's
``model_config`` (tf-keras 2.x ``model.save('x.h5')``), Keras 3's ``config.json`` (inside a
``.keras`` archive) and the one older minidl files hold. They differ in how a layer is wrapped
(Keras 3 adds ``module``, ``registered_name``, ``build_config``), how an input shape is spelled
(``batch_input_shape``, ``batch_shape``), a dtype (a name or a ``DTypePolicy``), initializers and
constraints (a name or ``{'class_name': ..., 'config': ...}``) and a functional graph's edges.
Every layer of a config is translated before any is built, and whatever minidl cannot honour
is collected, so one WeightFileError lists every unsupported layer class and argument (layer,
class, argument) rather than a TypeError from the first constructor. What an argument means
in Keras decides what happens to it:

* arguments the minidl layer takes pass through (an activation must be one minidl has), and
  so do its regularizers (``{'class_name': 'L2', 'config': {'l2': 0.01}}``), written back the
  same way;
* initializers the minidl layer does not take are dropped silently: they only pick starting
  values, which the file's weights replace (an unknown one where the layer takes one is
  dropped with a warning: the layer's default starts it);
* arguments that only shape training - regularizers of layers that take none or of a kind
  minidl lacks, a ``noise_shape`` or ``seed`` of a layer that does not take one, a call's
  ``training`` flag - are dropped, with one warning naming those that were set;
* arguments minidl supports in one value only where the layer does not take them
  (``data_format='channels_last'``, ``groups=1``, ``sparse=False``, ``ragged=False``, ...) are
  accepted at that value;
* anything else is refused, and so is code: a ``Lambda``, tf-keras's ``TFOpLambda`` (an
  operator applied to a Keras tensor), a Keras 3 operation (``keras.src.ops``).

A functional model's graph: each layer lists its calls (``inbound_nodes``; a shared layer has
several, a merge or a model of several inputs takes a list), each naming the tensors it takes
as ``[layer, node, tensor]``: Keras 2's ``[[['a', 0, 0, {}], ['b', 0, 0, {}]]]``, Keras 3's
``[{'args': [[keras tensor, keras tensor]], 'kwargs': {}}]`` (``[keras tensor]`` for one),
older minidl's ``inbound: ['a', 'b']``. ``node`` counts the calls of that layer, except that
Keras 2 numbers a nested model's calls from 1 (its node 0 is its own graph), and so does
Keras 3 in ``input_layers``/``output_layers`` for a nested functional model; ``tensor`` picks
one output of a model of several. The layers are made first, then called, round after round,
wherever every tensor a call takes exists, as Keras does (a shared layer's later call may take
a tensor of a layer listed after it).

Writing (:func:`serialize`; :func:`file_config` for files, which refuses code first) spells a
model as that Keras writes it, so tf-keras 2.x and Keras 3 ``load_model`` read minidl's files;
the Keras 2 spelling is also what ``model.get_config()`` returns. minidl's layer class names
are Keras's; its functional ``Model`` is written as Keras's ``Functional``; its layers come in
Keras's order (:func:`minidl.models.graph_layers`), each one's calls in the order they were
made, as Keras numbers them.
"""
import collections
import inspect
import warnings

import numpy as np

from minidl import constraints, initializers, regularizers
from minidl import layers as layers_module
from minidl.functions.activation import ACTIVATIONS
from minidl.io.errors import WeightFileError
from minidl.layers.base import Layer, Operation, snake_case
from minidl.layers.core import InputLayer
from minidl.layers.merging import Merge

BUILD_SLACK = 1 << 16  # bytes a model built from a file's config may take beyond its weights
# What building a damaged or foreign config raises; each becomes a WeightFileError.
CONFIG_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
                 RecursionError)
# Keras arguments minidl takes in one value only: the value that means what minidl does.
_ONLY = {'data_format': 'channels_last', 'groups': 1, 'sparse': False, 'ragged': False,
         'optional': False, 'mask_zero': False, 'keepdims': False, 'renorm': False,
         'lora_rank': None, 'quantization_config': None}
# Keras arguments that change only training, never what a loaded model computes.
_TRAINING_ONLY = ('kernel_regularizer', 'bias_regularizer', 'activity_regularizer',
                  'embeddings_regularizer', 'beta_regularizer', 'gamma_regularizer',
                  'depthwise_regularizer', 'pointwise_regularizer', 'noise_shape', 'seed',
                  'rng_type')
# Keras arguments that configure a feature refused unless off (renorm, LoRA): no effect.
_UNUSED = ('renorm_clipping', 'renorm_momentum', 'lora_alpha')
_MODELS = ('Sequential', 'Functional', 'Model')
# The Keras modules of the objects a layer config holds as {'class_name', 'config'}.
_OBJECT_MODULES = {'constraint': 'keras.constraints', 'regularizer': 'keras.regularizers'}
# Keras layers whose config holds code: a Lambda's function, a TensorFlow operation's name.
_CODE = ('Lambda', 'TFOpLambda', 'SlicingOpLambda')


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
        self.problems, self.dropped = [], []
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
        if class_name in _CODE or module.startswith(('keras.src.ops', 'keras.ops')):
            self.problems.append(f'{config.get("name")} ({class_name}): code (a function), '
                                 f'which minidl does not run from a file')
            return None
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
        kwargs = {}
        accepted = _arguments(cls)
        for key, value in config.items():
            self.argument(label, accepted, kwargs, key, value)
        return lambda: cls.from_config(kwargs)

    def argument(self, label, accepted, kwargs, key, value):
        """Translate one Keras argument into ``kwargs`` or note it as dropped or refused."""
        key = 'batch_input_shape' if key == 'batch_shape' else key
        if key in _UNUSED:
            return
        if key in _ONLY and key not in accepted:
            if value != _ONLY[key]:
                self.problems.append(f'{label}: argument {key}={value!r} (minidl supports '
                                     f'{_ONLY[key]!r} only)')
        elif key.endswith('_regularizer') and key in accepted:
            kwargs[key] = self.regularizer(label, key, value)
        elif key in _TRAINING_ONLY and key not in accepted:
            if value is not None:
                self.dropped.append(f'{label} {key}={_short(value)}')
        elif key.endswith('_initializer'):
            if key in accepted:
                kwargs[key] = self.initializer(label, key, value)
        elif key not in accepted and key.endswith('_constraint') and value is None:
            return  # no constraint (tf-keras writes SeparableConv2D's unused kernel_constraint)
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

    def regularizer(self, label, key, value):
        """A minidl regularizer for a Keras one; one minidl lacks is dropped with a warning
        (it changes training only)."""
        if isinstance(value, dict):
            value = {'class_name': value.get('class_name'), 'config': value.get('config', {})}
        try:
            return regularizers.get(value)
        except (ValueError, TypeError) as exc:
            self.dropped.append(f'{label} {key}={_short(value)} ({exc})')
            return None

    def constraint(self, label, key, value):
        if isinstance(value, dict):
            value = {'class_name': value.get('class_name'), 'config': value.get('config', {})}
        try:
            return constraints.get(value)
        except (ValueError, TypeError) as exc:
            self.problems.append(f'{label}: argument {key} ({exc})')
            return None

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
        """A function building the functional model of ``config``: every layer is made
        first, then called once per call the config lists, in an order in which each call's
        inputs exist (a shared layer's second call may take what a layer listed after it
        makes), as Keras rebuilds a model."""
        from minidl.models import Model
        graph = _Graph(self, config['layers'])
        builders = {}
        for spec in config['layers']:
            name = _spec_name(spec)
            calls = graph.calls[name]
            builders[name] = self.spec(spec, max((len(refs) for refs, _ in calls), default=1))
            if builders[name] is not None:
                self.call_arguments(f'{name} ({spec["class_name"]})', _calls(spec))
        inputs = graph.ends(config['input_layers'], 'input')
        outputs = graph.ends(config['output_layers'], 'output')
        order = graph.schedule()

        def build():
            layers = {name: builder() for name, builder in builders.items()}
            made = {(name, 0): [layer.output] for name, layer in layers.items()
                    if isinstance(layer, InputLayer)}
            for name, call, refs, packed in order:
                given = [made[source, k][tensor] for source, k, tensor in refs]
                out = layers[name](given if packed else given[0])
                made[name, call] = out if isinstance(out, list) else [out]
            model = Model([made[name, k][tensor] for name, k, tensor in inputs],
                          [made[name, k][tensor] for name, k, tensor in outputs],
                          name=config['name'])
            return _frozen(model, config)
        return build

    def call_arguments(self, label, calls):
        """Drop a call's ``training`` flag with a warning; refuse any other argument but an
        empty mask."""
        for _, _, kwargs in calls:
            for key, value in kwargs.items():
                if key == 'training':
                    if value is not None:
                        self.dropped.append(f'{label} called with training={value!r}')
                elif not (key == 'mask' and value is None):
                    self.problems.append(f'{label}: call argument {key}={_short(value)}')


class _Graph:
    """The calls of one functional config's layers, with their references to the tensors
    they take resolved to ``(layer name, call, tensor)``: ``call`` counts that layer's calls
    from 0, whatever the spelling. What does not resolve is a problem of ``translation``."""

    def __init__(self, translation, specs):
        self.problems = translation.problems
        self.spelling = _spelling(specs)
        self.classes = {_spec_name(spec): spec['class_name'] for spec in specs}
        self.outputs = {_spec_name(spec): _output_count(spec) for spec in specs}
        self.calls = {}  # layer name -> [(refs as spelled, packed)]
        for spec in specs:
            name, calls = _spec_name(spec), [(refs, packed) for refs, packed, _ in _calls(spec)]
            if spec['class_name'] != 'InputLayer' and not (calls and all(r for r, _ in calls)):
                self.problems.append(f'{name} ({spec["class_name"]}): takes no input in the '
                                     f'graph')
            self.calls[name] = calls

    def ref(self, label, ref, end=False):
        """``(layer, call, tensor)`` of a reference ``[layer, node, tensor]`` (``end``: one
        of ``input_layers``/``output_layers``), None and a problem where the model has no
        such tensor."""
        source, node, tensor = ref
        if source in self.classes:
            call = node - _first_call(self.classes[source], self.spelling, end)
            calls = max(len(self.calls[source]), 1)  # an InputLayer's tensor counts as call 0
            if 0 <= call < calls and 0 <= tensor < self.outputs[source]:
                return source, call, tensor
        self.problems.append(f'{label}: takes output [{node}][{tensor}] of {source!r}, which '
                             f'no layer of the model makes')
        return None

    def ends(self, value, kind):
        """The tensors ``input_layers`` or ``output_layers`` (``kind``) names; inputs must be
        InputLayers'."""
        refs = [self.ref(f"the model's {kind} {ref[0]!r}", ref, end=True)
                for ref in _end_refs(value)]
        for ref in refs:
            if kind == 'input' and ref and self.classes[ref[0]] != 'InputLayer':
                self.problems.append(f"the model's input {ref[0]!r} is a "
                                     f"{self.classes[ref[0]]}, not an InputLayer")
        return refs

    def schedule(self):
        """``[(layer name, call, refs, packed)]`` in an order that makes every call's inputs
        before it: Keras's, the layers in turn, each one's calls in order, round after round
        until all are made. A call that can never be made (a cycle) is a problem."""
        known = len(self.problems)
        pending = {name: [([self.ref(f'{name} ({self.classes[name]})', ref) for ref in refs],
                           packed) for refs, packed in calls]
                   for name, calls in self.calls.items()}
        if len(self.problems) > known:
            return []
        made = {(name, 0) for name, kind in self.classes.items() if kind == 'InputLayer'}
        order, progress = [], True
        while progress:
            progress = False
            for name, calls in pending.items():
                while calls and all(ref[:2] in made for ref in calls[0][0]):
                    call = len(self.calls[name]) - len(calls)
                    refs, packed = calls.pop(0)
                    order.append((name, call, refs, packed))
                    made.add((name, call))
                    progress = True
        for name, calls in pending.items():
            if calls:
                self.problems.append(f'{name} ({self.classes[name]}): call '
                                     f'{len(self.calls[name]) - len(calls)} waits on inputs '
                                     f'no other call can make first (the graph has a cycle)')
        return order


def _spelling(specs):
    """Which config a functional model's layers come from: 'minidl' (older minidl's
    ``inbound`` names), 'keras3' (calls as ``{'args': ..., 'kwargs': ...}``) or 'keras2'."""
    if any('inbound' in spec for spec in specs):
        return 'minidl'
    nodes = [node for spec in specs for node in spec.get('inbound_nodes') or ()]
    return 'keras3' if any(isinstance(node, dict) for node in nodes) else 'keras2'


def _first_call(class_name, spelling, end=False):
    """The node index a config gives a layer's first call. Keras 2 counts a nested model's
    own graph as its node 0; Keras 3 does so for a nested functional model in
    ``input_layers``/``output_layers`` only (``end``); older minidl names layers alone."""
    if spelling == 'keras2':
        return int(class_name in _MODELS)
    return int(spelling == 'keras3' and end and class_name in ('Functional', 'Model'))


def _spec_name(spec):
    return spec.get('name') or spec['config']['name']


def _output_count(spec):
    """How many tensors one call of the layer of ``spec`` gives: a nested functional
    model's outputs, one for any other layer."""
    if spec['class_name'] in ('Functional', 'Model'):
        return len(_end_refs(spec['config']['output_layers']))
    return 1


def _calls(spec):
    """``[(refs, packed, call kwargs)]``, one per call of a functional config's layer, each
    ref ``[layer name, node index, tensor index]`` as spelled; ``packed`` when the layer is
    called on a list (a merge, a model of several inputs)."""
    if 'inbound' in spec:  # older minidl: the names of the layers it takes
        names = spec['inbound']
        return [([(name, 0, 0) for name in names], len(names) > 1, {})] if names else []
    calls = []
    for node in spec.get('inbound_nodes') or []:
        if isinstance(node, dict):  # Keras 3 calls layers with the model's own training flag
            args = node.get('args') or []
            kwargs = {k: v for k, v in (node.get('kwargs') or {}).items() if k != 'training'}
            packed = len(args) == 1 and isinstance(args[0], (list, tuple))
            tensors = _keras_tensors(args)
            if len(tensors) != len(args[0] if packed else args) or len(args) != 1:
                kwargs['args'] = args  # not one tensor or one list of them: refused
            refs = [tuple(t['config']['keras_history']) for t in tensors]
            calls.append((refs, packed, kwargs))
        else:  # Keras 2: [[name, node, tensor, kwargs], ...], or one such ref alone
            node = [node] if node and isinstance(node[0], str) else node
            kwargs = {}
            for ref in node:
                kwargs.update(ref[3] if len(ref) > 3 else {})
            calls.append(([tuple(ref[:3]) for ref in node], len(node) > 1, kwargs))
    return calls


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


def _end_refs(value):
    """The ``(layer name, node, tensor)`` of ``input_layers``/``output_layers``: Keras 2's
    ``[[name, 0, 0], ...]``, Keras 3's ``[name, 0, 0]`` for one, older minidl's names."""
    if len(value) == 3 and isinstance(value[0], str) and not isinstance(value[1], str):
        value = [value]
    return [(end, 0, 0) if isinstance(end, str) else tuple(end) for end in value]


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

    spelling = 'keras2'

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

    def ref(self, x, calls, end=False):
        """``[layer name, node index, tensor index]`` of the symbolic tensor ``x``, whose
        call is the layer's ``calls[id(x.node)]``-th in the model (an input's: 0)."""
        first = _first_call(class_name(x.layer), self.spelling, end)
        return [x.layer.name, calls.get(id(x.node), 0) + first, x.index]

    def node(self, node, calls):
        """One call, ``[[layer, node, tensor, {}], ...]``: the tensors it takes."""
        return [self.ref(x, calls) + [{}] for x in node.inputs]

    def ends(self, tensors, calls):
        return [self.ref(x, calls, end=True) for x in tensors]


class _Keras3(_Keras2):
    """How Keras 3 spells a config (``config.json`` of a ``.keras`` archive)."""

    spelling = 'keras3'

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

    def node(self, node, calls):
        """One call, ``{'args': [tensor], 'kwargs': {}}``, or ``[[tensor, ...]]`` for a call
        on a list, each tensor a ``__keras_tensor__`` naming where it comes from."""
        tensors = [self.wrap(None, '__keras_tensor__', {
            'shape': list(x.shape), 'dtype': x.dtype.name,
            'keras_history': self.ref(x, calls)}) for x in node.inputs]
        return {'args': [tensors] if node.packed else tensors, 'kwargs': {}}

    def ends(self, tensors, calls):
        ends = super().ends(tensors, calls)
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


def _layer_config(layer, dialect):
    """A layer's own config with Keras's spelling of its dtype, initializers, constraints."""
    config = layer.get_config()
    config['dtype'] = dialect.dtype(layer.dtype.name)
    for key in sorted(_arguments(type(layer))):
        if key.endswith('_initializer') and hasattr(layer, key):
            config[key] = dialect.wrap('keras.initializers',
                                       *_initializer_config(getattr(layer, key)))
        elif key.rsplit('_', 1)[-1] in _OBJECT_MODULES and config.get(key):
            config[key] = dialect.wrap(_OBJECT_MODULES[key.rsplit('_', 1)[-1]],
                                       config[key]['class_name'], config[key]['config'])
    if dialect is KERAS2:  # tf-keras's names where Keras 3 renamed an argument
        for ours, theirs in getattr(layer, 'keras2_names', {}).items():
            config[theirs] = config.pop(ours)
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
    """A functional model's layers in its order, each with its calls in the model (a shared
    layer has several, in the order they were made), and the tensors that are its inputs
    and outputs."""
    from minidl.models import call_indices
    calls = call_indices(model._nodes)
    nodes = collections.defaultdict(list)
    for node in sorted(model._nodes, key=lambda node: node.serial):
        nodes[id(node.layer)].append(node)
    layers = []
    for layer in model.layers:
        spec = serialize(layer, dialect)
        spec['name'] = layer.name
        spec['inbound_nodes'] = [dialect.node(node, calls) for node in nodes[id(layer)]]
        layers.append(spec)
    return {'name': model.name, 'trainable': model.trainable, 'layers': layers,
            'input_layers': dialect.ends(model.inputs, calls),
            'output_layers': dialect.ends(model.outputs, calls)}


def file_config(model, path, dialect=KERAS2):
    """``serialize(model, dialect)`` for the file ``path``. A model holding code (a Lambda,
    an operator applied to symbolic tensors) cannot be written: one ValueError names the file
    and every such layer, nested models' included."""
    code = _code_layers(model)
    if code:
        raise ValueError(f'{path}: {model.name} cannot be saved with its architecture: '
                         f'{", ".join(code)} compute with code (a function), which a config '
                         f'cannot hold. Save the weights (save_weights) and rebuild the model '
                         f'in code to load them')
    return serialize(model, dialect)


def _code_layers(model):
    """``name (class)`` of each layer under ``model`` that is a function (an Operation) or
    has one as its activation."""
    found = []
    for layer in model.layers:
        if hasattr(layer, 'layers'):
            found += _code_layers(layer)
        elif isinstance(layer, Operation) or callable(getattr(layer, 'activation', None)):
            found.append(f'{layer.name} ({type(layer).__name__})')
    return found
