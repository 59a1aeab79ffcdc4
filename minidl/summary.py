"""``model.summary()``: Keras's table, plus the multiplications each layer costs per example.

The extra column counts the multiplications of one forward pass for one example, the
lessons' ``F*F*D x W'*H' x D'`` for a convolution and ``in x out`` for a dense layer.

A functional model whose graph branches (merges, shared layers, several inputs or outputs)
also gets Keras 2's "Connected to" column: the tensors each layer's calls take, as
``'layer[call][tensor]'``, one per line (a shared layer lists those of every call). A model
that is one chain of layers is summarised as a Sequential, as Keras does.
"""
import collections
import itertools
import textwrap

from minidl.layers.base import format_shape

COLUMNS = (('Layer (type)', 29), ('Output Shape', 26), ('Param #', 12),
           ('Multiplications', 16))
GRAPH_COLUMNS = (('Layer (type)', 29), ('Output Shape', 29), ('Param #', 12),
                 ('Connected to', 31), ('Multiplications', 16))


def _rows(cells, columns):
    """The lines of one table row. A cell too long for its column wraps, as in Keras; a cell
    given as a list of lines keeps them."""
    wrapped = [cell if isinstance(cell, list) else textwrap.wrap(str(cell), width - 1) or ['']
               for cell, (_, width) in zip(cells, columns)]
    for parts in itertools.zip_longest(*wrapped, fillvalue=''):
        yield ' ' + ''.join(part.ljust(width) for part, (_, width) in zip(parts, columns))


def _kind(layer):
    from minidl.models import Model, Sequential
    if isinstance(layer, Model) and not isinstance(layer, Sequential):
        return 'Functional'
    return type(layer).__name__


def _shapes_text(shape):
    if isinstance(shape, list):
        return '[' + ', '.join(map(format_shape, shape)) + ']'
    return format_shape(shape)


def _shape_text(layer, shapes=None):
    """The layer's output shape; ``shapes`` are those of its calls in a graph, 'multiple'
    where they differ (a shared layer called on inputs of different sizes)."""
    if shapes and len(set(shapes)) > 1:
        return 'multiple'
    shape = layer.output_shape
    if shape is None:
        return '?'
    if type(layer).__name__ == 'InputLayer':
        return f'[{format_shape(shape)}]'
    return _shapes_text(shape)


def _count_text(count):
    """'1,234', or '?' for a count that depends on an input size not yet known."""
    return '?' if count is None else f'{count:,}'


def _connections(tensors, calls, width):
    """Keras 2's "Connected to" cell: the list of ``'layer[call][tensor]'``, broken after
    each entry and where a line would pass ``width`` characters."""
    text = str([f'{x.layer.name}[{calls.get(id(x.node), 0)}][{x.index}]' for x in tensors])
    lines = []
    while text:
        end = text.find("',", 0, width)
        cut = end + 2 if end >= 0 else width
        lines.append(text[:cut])
        text = text[cut:]
    return lines


def _is_chain(model):
    """Whether the model is one chain of layers, each called once on what the one before it
    made (Keras then prints a Sequential's table, without "Connected to")."""
    from minidl.models import Sequential
    if isinstance(model, Sequential):
        return True
    nodes = model._nodes
    taken = collections.Counter(id(x) for node in nodes for x in node.inputs)
    called = collections.Counter(id(node.layer) for node in nodes)
    return len(model.inputs) == 1 and all(len(node.inputs) == 1 for node in nodes) and \
        max(taken.values(), default=0) <= 1 and max(called.values(), default=0) <= 1


def _layer_rows(model):
    """``(columns, [cells of each layer])`` of the table for ``model``."""
    cells = [[f'{layer.name} ({_kind(layer)})', _shape_text(layer), layer.count_params(),
              _count_text(layer.multiplications())] for layer in model.layers]
    if _is_chain(model):
        return COLUMNS, cells
    from minidl.models import call_indices
    calls, taken, shapes = call_indices(model._nodes), {}, {}
    for node in sorted(model._nodes, key=lambda node: node.serial):
        taken.setdefault(id(node.layer), []).extend(node.inputs)
        shapes.setdefault(id(node.layer), []).append(tuple(y.shape for y in node.outputs))
    width = GRAPH_COLUMNS[3][1] - 1
    for layer, row in zip(model.layers, cells):
        row[1] = _shape_text(layer, shapes.get(id(layer)))
        row.insert(3, _connections(taken.get(id(layer), []), calls, width))
    return GRAPH_COLUMNS, cells


def print_summary(model, print_fn=print):
    """Print the summary of ``model`` through ``print_fn`` (one call per line)."""
    if not model.built:
        raise ValueError(f'{model.name} has not been built yet: give its first layer an '
                         f'input_shape, or call it (or fit it) on data first')
    columns, cells = _layer_rows(model)
    width = sum(w for _, w in columns) + 1
    print_fn(f'Model: "{model.name}"')
    print_fn('_' * width)
    for line in _rows([title for title, _ in columns], columns):
        print_fn(line)
    print_fn('=' * width)
    for i, row in enumerate(cells):
        for line in _rows(row, columns):
            print_fn(line)
        print_fn('' if i == len(cells) - 1 else ' ' * width)
    print_fn('=' * width)
    trainable = sum(w.size for w in model.trainable_weights)
    total = sum(w.size for w in model.weights)
    print_fn(f'Total params: {total:,}')
    print_fn(f'Trainable params: {trainable:,}')
    print_fn(f'Non-trainable params: {total - trainable:,}')
    print_fn(f'Multiplications per example: {_count_text(model.multiplications())}')
    print_fn('_' * width)
