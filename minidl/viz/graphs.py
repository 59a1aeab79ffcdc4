"""Pictures of graphs: a model's layers (:func:`plot_model`, as Keras's) and the autograd graph
behind a tensor (:func:`plot_graph`, as DeZero and torchviz draw it).

Each graph is first described as plain data (:func:`model_graph`, :func:`autograd_graph`:
labelled nodes and the edges between them), then written in Graphviz's DOT language
(:func:`model_to_dot`, :func:`graph_to_dot`), which needs nothing installed. Drawing the
picture needs Graphviz's ``dot`` program (``apt-get install graphviz``, ``brew install
graphviz`` or ``conda install graphviz``); without it the plot functions say so.
"""
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from minidl.autograd import Tensor, _topological_order
from minidl.layers.base import format_shape
from minidl.utils import atomic_write

GRAPHVIZ_MISSING = ("{what} needs Graphviz's `dot` program to draw {path}, and there is none "
                    "on PATH: install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: "
                    "brew install graphviz; conda: conda install graphviz), or write the "
                    "graph's DOT text with {text} and draw it elsewhere")
VECTOR_FORMATS = ('svg', 'pdf', 'ps', 'eps')


@dataclass
class Graph:
    """A graph to draw: ``nodes`` maps a node's key to its label lines and DOT attributes;
    ``edges`` are ``(from_key, to_key)`` pairs; ``clusters`` map a title to the node keys
    framed together (a nested model's layers)."""
    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    clusters: dict = field(default_factory=dict)

    def node(self, key, lines, **attributes):
        self.nodes[key] = (list(lines), attributes)

    def edge(self, source, target):
        if (source, target) not in self.edges:
            self.edges.append((source, target))


def _quote(text):
    return '"' + str(text).replace('\\', '\\\\').replace('"', '\\"') + '"'


def to_dot(graph, rankdir='TB', name='G'):
    """The DOT text of ``graph``, laid out top to bottom ('TB') or left to right ('LR')."""
    if rankdir not in ('TB', 'LR', 'BT', 'RL'):
        raise ValueError(f"rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    clustered = {key for keys in graph.clusters.values() for key in keys}

    def node_line(key):
        lines, attributes = graph.nodes[key]
        label = '\\n'.join(str(line).replace('\\', '\\\\').replace('"', '\\"')
                           for line in lines)
        extra = ''.join(f', {k}={_quote(v)}' for k, v in attributes.items())
        return f'  {_quote(key)} [label="{label}"{extra}];'

    out = [f'digraph {_quote(name)} {{', f'  rankdir={rankdir};',
           '  graph [fontname="Helvetica", fontsize=11];',
           '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", '
           'fontname="Helvetica", fontsize=11];', '  edge [color="#555555"];']
    out += [node_line(key) for key in graph.nodes if key not in clustered]
    for number, (title, keys) in enumerate(graph.clusters.items()):
        out += [f'  subgraph cluster_{number} {{', f'    label={_quote(title)};',
                '    style=dashed;']
        out += ['  ' + node_line(key) for key in keys]
        out.append('  }')
    out += [f'  {_quote(a)} -> {_quote(b)};' for a, b in graph.edges]
    out.append('}')
    return '\n'.join(out) + '\n'


def render(dot_text, to_file, dpi=96, what='plot_model', text='model_to_dot(model)'):
    """Draw ``dot_text`` into ``to_file`` with Graphviz's ``dot``; the format is the file's
    extension (png, svg, pdf, jpg, ...), and ``dpi`` sizes the bitmap ones. Returns the file's
    Path."""
    path = Path(to_file)
    program = shutil.which('dot')
    if program is None:
        raise RuntimeError(GRAPHVIZ_MISSING.format(what=what, path=path, text=text))
    fmt = path.suffix.lstrip('.').lower() or 'png'
    scale = [] if fmt in VECTOR_FORMATS else [f'-Gdpi={dpi}']  # vectors keep Graphviz's points
    with atomic_write(path) as tmp:
        done = subprocess.run([program, f'-T{fmt}', *scale, '-o', tmp],
                              input=dot_text, text=True, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f'{what}: Graphviz could not draw {path} as {fmt!r}: '
                               f'{done.stderr.strip()}')
    return path


# --- models ---------------------------------------------------------------------------------

def _layer_lines(layer, shapes, show_shapes, show_dtype, show_layer_names,
                 show_layer_activations, show_trainable):
    """The label of one layer's box. ``shapes`` are the (input, output) shape texts of its
    calls; 'multiple' where calls differ (a shared layer fed inputs of different sizes)."""
    kind = 'Functional' if type(layer).__name__ == 'Model' else type(layer).__name__
    lines = [f'{layer.name} ({kind})' if show_layer_names else kind]
    activation = layer.get_config().get('activation') if show_layer_activations else None
    if isinstance(activation, str) and kind != 'Activation':
        lines.append(f'activation: {activation}')
    if show_shapes:
        inputs, outputs = zip(*shapes) if shapes else ((), ())
        for title, texts in (('input', inputs), ('output', outputs)):
            texts = set(texts)
            lines.append(f'{title}: {texts.pop() if len(texts) == 1 else "multiple"}')
    if show_dtype:
        lines.append(f'dtype: {getattr(layer, "dtype", "float32")}')
    if show_trainable:
        lines.append(f'trainable: {layer.trainable}')
    return lines


def _shapes_text(tensors):
    texts = [format_shape(x.shape) for x in tensors]
    return texts[0] if len(texts) == 1 else '[' + ', '.join(texts) + ']'


def model_graph(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                expand_nested=False, show_layer_activations=False, show_trainable=False):
    """The :class:`Graph` of ``model``'s layers: one box per layer (the input layers too), an
    edge wherever a layer's call takes what another made. With ``expand_nested`` a nested
    model is drawn as its own layers in a dashed frame instead of one box."""
    from minidl.models import Model
    if not getattr(model, 'built', False) or not model.layers:
        raise ValueError(f'plot_model: {model.name} has no layers built yet; give its first '
                         f'layer an input_shape, or call it on data first')
    options = dict(show_shapes=show_shapes, show_dtype=show_dtype,
                   show_layer_names=show_layer_names,
                   show_layer_activations=show_layer_activations, show_trainable=show_trainable)
    graph = Graph()

    def add(model, prefix, cluster):
        """Draw ``model``'s layers; return ({id(input tensor): key}, {id(output): key})."""
        calls = {}
        for node in model._nodes:
            calls.setdefault(id(node.layer), []).append(node)
        entries, exits, keys = {}, {}, []
        for x in model.inputs:
            key = f'{prefix}{x.layer.name}'
            shape = format_shape(x.shape)
            graph.node(key, _layer_lines(x.layer, [(shape, shape)], **options))
            entries[id(x)], exits[id(x)] = key, key
            keys.append(key)
        nested = {}
        for layer in model.layers:
            if id(layer) not in calls:
                continue
            if expand_nested and isinstance(layer, Model):
                nested[id(layer)] = add(layer, f'{prefix}{layer.name}/', layer.name)
                continue
            key = f'{prefix}{layer.name}'
            shapes = [(_shapes_text(node.inputs), _shapes_text(node.outputs))
                      for node in calls[id(layer)]]
            graph.node(key, _layer_lines(layer, shapes, **options))
            keys.append(key)
        for node in sorted(model._nodes, key=lambda node: node.serial):
            inner = nested.get(id(node.layer))
            for x in node.inputs:
                source = exits[id(x)]
                if inner is None:
                    graph.edge(source, f'{prefix}{node.layer.name}')
                else:
                    for target in inner[0].values():
                        graph.edge(source, target)
            for y in node.outputs:
                exits[id(y)] = (list(inner[1].values())[y.index] if inner else
                                f'{prefix}{node.layer.name}')
        if cluster:
            graph.clusters[cluster] = keys
        return entries, {id(y): exits[id(y)] for y in model.outputs}

    add(model, '', None)
    return graph


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir='TB', expand_nested=False, show_layer_activations=False,
                 show_trainable=False):
    """``model``'s layer graph as DOT text (see :func:`model_graph` for the options)."""
    graph = model_graph(model, show_shapes, show_dtype, show_layer_names, expand_nested,
                        show_layer_activations, show_trainable)
    return to_dot(graph, rankdir, model.name)


def plot_model(model, to_file='model.png', show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir='TB', expand_nested=False, dpi=96,
               show_layer_activations=False, show_trainable=False):
    """Draw ``model``'s layers into ``to_file`` (its extension picks the format: png, svg,
    pdf), as Keras's ``plot_model``: a box per layer with its name and type, and with
    ``show_shapes`` its input and output shapes ``(None, H, W, C)``. Needs Graphviz's ``dot``
    program; returns the file's Path."""
    text = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir,
                        expand_nested, show_layer_activations, show_trainable)
    return render(text, to_file, dpi)


# --- autograd graphs ------------------------------------------------------------------------

def _tensor_lines(tensor, title=None):
    title = title or tensor.name or 'tensor'
    return [title, f'{format_shape(tensor.shape)} {tensor.dtype}']


def autograd_graph(tensor):
    """The :class:`Graph` of the computation recorded behind ``tensor``: a box per Function
    (its class name) and an oval per value: the leaves that require a gradient (named, as a
    layer's weights are, with their shapes), every intermediate result (its shape) and
    ``tensor`` itself. Edges run from each value to the Function that used it, as the
    forward pass went; backward walks them the other way."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f'plot_graph: expected a minidl Tensor, got {type(tensor).__name__}')
    graph = Graph()
    value = dict(shape='ellipse', fillcolor='#ffffff')
    leaf = dict(shape='ellipse', fillcolor='#dbe9f6')
    graph.node(id(tensor), _tensor_lines(tensor, tensor.name or 'output'),
               **(leaf if tensor.creator is None else value), penwidth='2')
    if tensor.creator is None:
        return graph
    outputs = {id(tensor.creator): id(tensor)}  # a Function's output oval
    for fn in _topological_order(tensor.creator):
        if fn.inputs is None:
            raise ValueError('plot_graph: the graph behind this tensor was freed by '
                             'backward(); draw it before, or call backward(retain_graph=True)')
        graph.node(f'fn{id(fn)}', [type(fn).__name__], fillcolor='#fde9c9')
        output = outputs.setdefault(id(fn), f'out{id(fn)}')
        if output not in graph.nodes:  # not the root or a retained tensor, drawn already
            graph.node(output, [format_shape(fn.output_shape)], **value)
        graph.edge(f'fn{id(fn)}', output)
        for edge in fn.inputs:
            if edge is None:
                continue
            if isinstance(edge, Tensor):
                if edge.creator is not None:
                    outputs.setdefault(id(edge.creator), id(edge))
                graph.node(id(edge), _tensor_lines(edge),
                           **(leaf if edge.creator is None else value))
                source = id(edge)
            else:
                source = outputs.setdefault(id(edge), f'out{id(edge)}')
            graph.edge(source, f'fn{id(fn)}')
    return graph


def graph_to_dot(tensor, rankdir='TB'):
    """The autograd graph behind ``tensor`` as DOT text (see :func:`autograd_graph`)."""
    return to_dot(autograd_graph(tensor), rankdir, 'autograd')


def plot_graph(tensor, to_file='graph.png', rankdir='TB', dpi=96):
    """Draw the autograd graph behind ``tensor`` (see :func:`autograd_graph`) into
    ``to_file``: the Functions the forward pass ran and the values between them, with their
    shapes. Needs Graphviz's ``dot`` program; returns the file's Path."""
    return render(graph_to_dot(tensor, rankdir), to_file, dpi, 'plot_graph',
                  'graph_to_dot(tensor)')
