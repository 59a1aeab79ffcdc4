"""Models: the functional ``Model(inputs, outputs)`` and ``Sequential``.

A model is a layer made of layers: it can be called, nested (a VGG16 base added to a
Sequential counts as one layer) and frozen as a whole. Training (compile/fit/evaluate/predict)
comes from :class:`minidl.training.Trainer`; files from :mod:`minidl.saving`.
"""
import collections

from minidl.backends import check_device
from minidl.layers.base import Layer, SymbolicTensor, format_shape
from minidl.layers.core import Input, InputLayer
from minidl.summary import print_summary
from minidl.training import Trainer
from minidl.utils import as_list


def graph_nodes(inputs, outputs):
    """The layer calls (Nodes) between symbolic ``inputs`` and ``outputs``, producers before
    consumers; an output that does not descend from the inputs is an error naming it."""
    input_ids = {id(x) for x in inputs}
    order, done = [], set()
    stack = [(y.node, False) for y in reversed(outputs) if id(y) not in input_ids]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        if not node.inputs:
            raise ValueError(f'{node.outputs[0]} does not descend from the inputs given: '
                             f'{inputs}')
        stack.append((node, True))
        stack.extend((x.node, False) for x in reversed(node.inputs) if id(x) not in input_ids)
    return order


def graph_layers(inputs, outputs, nodes):
    """The layers of a graph in Keras's order, which its configs and weight files follow:
    deepest first, a layer's depth being the most calls on a path from it to an output (its
    deepest call's, for a shared layer); ties in the order a walk back from the outputs, each
    call's inputs in turn, first meets them. ``nodes`` are :func:`graph_nodes`'."""
    met, seen, input_ids = {}, set(), {id(x) for x in inputs}
    stack = list(reversed(outputs))
    while stack:
        y = stack.pop()
        if id(y.node) not in seen:
            seen.add(id(y.node))
            met.setdefault(id(y.layer), (len(met), y.layer))
            if id(y) not in input_ids:
                stack.extend(reversed(y.node.inputs))
    depth, layer_depth = {}, {}
    for node in reversed(nodes):  # each call after every call that uses its outputs
        d = max(depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = d
        for x in node.inputs:
            depth[id(x.node)] = max(depth.get(id(x.node), 0), d + 1)
    for x in inputs:
        layer_depth.setdefault(id(x.layer), depth.get(id(x.node), 0))
        met.setdefault(id(x.layer), (-1, x.layer))
    order = sorted(layer_depth, key=lambda key: (-layer_depth[key], met[key][0]))
    return [met[key][1] for key in order]


def call_indices(nodes):
    """``{id(node): k}``: each node of ``nodes`` is its layer's k-th call among them, in the
    order the calls were made (Keras's node index within a model; an input's is 0)."""
    counts, indices = collections.Counter(), {}
    for node in sorted(nodes, key=lambda node: node.serial):
        indices[id(node)] = counts[id(node.layer)]
        counts[id(node.layer)] += 1
    return indices


def replay(nodes, values, training=None, logits=(), retain=()):
    """Compute ``nodes`` in order on real tensors; ``values`` maps id(symbolic tensor) to its
    Tensor and gains every output computed. Nodes in ``logits`` (ids) stop before their
    layer's final activation; tensors in ``retain`` (ids) keep their gradient."""
    for node in nodes:
        layer, args = node.layer, node.arguments([values[id(x)] for x in node.inputs])
        if id(node) in logits:
            result = layer.call_logits(layer._prepare(args), training)
        else:
            result = layer(args, training)
        for y, value in zip(node.outputs, as_list(result) if len(node.outputs) > 1 else
                            [result]):
            if id(y) in retain:
                value.retain_grad()
            values[id(y)] = value
    return values


def _shapes_text(shape):
    if isinstance(shape, list):
        return '[' + ', '.join(map(format_shape, shape)) + ']'
    return format_shape(shape)


class Model(Trainer, Layer):
    """A graph of layers from symbolic ``inputs`` (``layers.Input``) to ``outputs``."""

    casts_integer_inputs = False  # each of its layers decides
    takes_list = True  # one tensor per input; check_input_shape counts them

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.layers = []
        if inputs is not None:
            self._set_graph(as_list(inputs), as_list(outputs))

    def _set_graph(self, inputs, outputs):
        self.inputs, self.outputs = inputs, outputs
        self._nodes = graph_nodes(inputs, outputs)
        self.layers = graph_layers(inputs, outputs, self._nodes)
        self.built = True
        self.input_shape = inputs[0].shape if len(inputs) == 1 else [x.shape for x in inputs]
        self.output_shape = outputs[0].shape if len(outputs) == 1 else [
            y.shape for y in outputs]

    def _graph_ends(self, attribute):
        if not self.built:
            raise ValueError(f'{self.name} has no {attribute[:-1]} yet: give its first layer an '
                             f'input_shape, or call it on data first')
        ends = getattr(self, attribute)
        return ends[0] if len(ends) == 1 else ends

    @property
    def input(self):
        return self._graph_ends('inputs')

    @property
    def output(self):
        return self._graph_ends('outputs')

    def _record_node(self, x, out):
        """A model keeps its own graph's input and output when it is used as a layer."""

    # --- computing ------------------------------------------------------------------------
    def call(self, x, training=None, logits=False):
        """Run the graph on real data; ``logits`` (True, or the positions of some outputs)
        stops those outputs' layers before their final activation (for fused losses).

        Every output keeps its ``.grad`` after a backward pass, also one that later layers
        use: with outputs ``[feature_maps, scores]``, ``scores[0, k].backward()`` leaves
        d score / d feature maps in ``feature_maps.grad`` (what Grad-CAM needs)."""
        values = dict(zip(map(id, self.inputs), as_list(x) if len(self.inputs) > 1 else [x]))
        ends = {id(y) for y in self.outputs}
        stopped = range(len(self.outputs)) if logits is True else logits or ()
        logits = {id(self.outputs[i].node) for i in stopped}
        replay(self._nodes, values, training, logits, retain=ends)
        results = [values[id(y)] for y in self.outputs]
        return results[0] if len(results) == 1 else results

    def call_logits(self, x, training=False):
        return self.call(x, training, logits=True)

    @property
    def input_names(self):
        """The names of the input layers, in order: the keys of a dict of input arrays."""
        return [x.layer.name for x in as_list(self.input)]

    @property
    def output_names(self):
        """The names of the layers that make the outputs, in order (a layer met again gets
        ``_1``, ``_2``, ... as in Keras): the keys of per-output losses, targets and logs."""
        names = []
        for y in as_list(self.output):
            name, count = y.layer.name, 0
            while name in names:
                count += 1
                name = f'{y.layer.name}_{count}'
            names.append(name)
        return names

    @property
    def output_activations(self):
        """The final activation of each output that ``call(x, logits=...)`` can stop before:
        its layer's activation where no other layer reads that output, 'linear' elsewhere."""
        read = {id(x) for node in self._nodes for x in node.inputs}
        return [getattr(y.layer, 'activation', 'linear')
                if id(y) not in read and len(y.node.outputs) == 1 else 'linear'
                for y in self.outputs]

    @property
    def activation(self):
        """The activation of the layer that produces the (single) output."""
        ends = self.output_activations
        return ends[0] if len(ends) == 1 else 'linear'

    def compute_output_shape(self, input_shape):
        return self.output_shape

    def check_input_shape(self, input_shape):
        expected = self.input_shape
        several = isinstance(expected, list)
        if several != isinstance(input_shape, list) or several and len(expected) != len(
                input_shape):
            names = ', '.join(t.layer.name for t in self.inputs)
            raise ValueError(f'{self.name} takes {len(self.inputs)} input(s) ({names}) of '
                             f'shape {_shapes_text(expected)}, got {_shapes_text(input_shape)}')
        for got, want in zip(*[s if several else [s] for s in (input_shape, expected)]):
            if len(got) != len(want) or any(w is not None and g is not None and g != w
                                            for g, w in zip(got[1:], want[1:])):
                raise ValueError(f'{self.name} expects input of shape '
                                 f'{_shapes_text(expected)}, got {_shapes_text(input_shape)}')

    # --- weights --------------------------------------------------------------------------
    def _collect(self, attribute):
        seen = {}
        for layer in self.layers:
            for w in getattr(layer, attribute):
                seen.setdefault(id(w), w)
        return list(seen.values())

    @property
    def weights(self):
        return self._collect('weights')

    @property
    def trainable_weights(self):
        return self._collect('trainable_weights') if self.trainable else []

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return self._collect('non_trainable_weights')

    def _apply_trainable(self):
        """Freezing a model freezes every layer in it (Keras's rule); unfreezing thaws all."""
        for layer in self.layers:
            layer.trainable = self._trainable

    _device = 'cpu'

    def to(self, device):
        """Move every weight to 'cpu' or 'gpu'; layers built later are created there too."""
        self._device = check_device(device)
        for layer in self.layers:
            layer.to(device)
        return self

    @property
    def device(self):
        return self._device

    def multiplications(self):
        counts = [layer.multiplications() for layer in self.layers]
        return None if None in counts else sum(counts)

    def get_layer(self, name=None, index=None):
        """A layer by name or by position."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f'{self.name} has no layer named {name!r}; its layers are '
                         f'{[layer.name for layer in self.layers]}')

    def summary(self, print_fn=print):
        """Print Keras's table (plus multiplications per example) and the param totals."""
        print_summary(self, print_fn)

    # --- files ----------------------------------------------------------------------------
    def save(self, filepath):
        from minidl.saving import save_model
        save_model(self, filepath)

    def save_weights(self, filepath):
        from minidl.saving import save_weights
        save_weights(self, filepath)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False):
        from minidl.saving import load_weights
        load_weights(self, filepath, by_name, skip_mismatch)

    def get_config(self):
        from minidl.io.keras_config import functional_config
        return functional_config(self)


class Sequential(Model):
    """A stack of layers, each feeding the next. Built as soon as the input shape is known
    (from an ``Input(shape)`` put first, the first layer's ``input_shape``, or the first data
    it sees)."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name)
        self._stack = []
        self._declared_input_shape = None  # from an Input or InputLayer put first
        self.built = False
        for layer in layers or ():
            self.add(layer)

    def add(self, layer):
        """Append a layer (or a whole model, which then acts as one layer).

        As in Keras, an ``Input(shape)`` or ``InputLayer`` put first only declares the input
        shape; it does not become one of ``layers``."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._stack:
                raise ValueError(f'{self.name}: an Input or InputLayer can only come first, '
                                 f'before {self._stack[0].name}')
            self._declared_input_shape = layer.input_shape_arg
            return
        if not isinstance(layer, Layer):
            raise TypeError(f'{self.name}.add expects a Layer, got {layer!r}')
        if layer.name in {other.name for other in self._stack}:
            raise ValueError(f'{self.name} already holds a layer named {layer.name!r}')
        self._stack.append(layer)
        if self.built:
            self._set_graph(self.inputs, [layer(self.outputs[0])])
            layer.to(self._device)
        elif len(self._stack) == 1 and self._known_input_shape() is not None:
            self.build(self._known_input_shape())
        self.layers = list(self._stack)

    def _known_input_shape(self):
        """The input shape declared by an Input, the first layer or a first nested model."""
        first = self._stack[0]
        return self._declared_input_shape or first.input_shape_arg or (
            first.input_shape if isinstance(first, Model) else None)

    def pop(self):
        """Remove the last layer."""
        self._stack.pop()
        self.built = False
        self.layers = list(self._stack)
        if self._stack and self._known_input_shape() is not None:
            self.build(self._known_input_shape())

    def build(self, input_shape):
        """Trace the stack on a symbolic input of ``input_shape`` (batch axis included)."""
        x = inputs = Input(batch_shape=(None,) + tuple(input_shape)[1:])
        for layer in self._stack:
            x = layer(x)
        self._set_graph([inputs], [x])
        self.layers = list(self._stack)
        self.to(self._device)

    def __call__(self, x, training=None):
        if not self.built and not isinstance(x, SymbolicTensor):
            self.build((None,) + tuple(x.shape)[1:])
        elif not self.built:
            self.build(x.shape)
        return super().__call__(x, training)

    def call(self, x, training=None, logits=False):
        for layer in self._stack[:-1]:
            x = layer(x, training)
        last = self._stack[-1]
        if logits:
            return last.call_logits(last._prepare(x), training)
        return last(x, training)

    @property
    def output_names(self):
        return [self._stack[-1].name] if self._stack else []

    @property
    def output_activations(self):
        return [getattr(self._stack[-1], 'activation', 'linear')] if self._stack else []

    def get_config(self):
        from minidl.io.keras_config import sequential_config
        return sequential_config(self)


def load_model(filepath, compile=True):  # noqa: A002 - Keras's keyword
    """Rebuild a model saved with ``model.save`` (architecture, weights, compile settings)."""
    from minidl.saving import load_model as load
    return load(filepath, compile)
