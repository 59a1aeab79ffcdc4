"""``model.summary()``: Keras's table, plus the multiplications each layer costs per example.

The extra column counts the multiplications of one forward pass for one example, the
lessons' ``F*F*D x W'*H' x D'`` for a convolution and ``in x out`` for a dense layer.
"""
import itertools
import textwrap

from minidl.layers.base import format_shape

COLUMNS = (('Layer (type)', 29), ('Output Shape', 26), ('Param #', 12),
           ('Multiplications', 16))


def _rows(cells):
    """The lines of one table row; a cell too long for its column wraps, as in Keras."""
    wrapped = [textwrap.wrap(str(cell), width - 1) or [''] for cell, (_, width) in
               zip(cells, COLUMNS)]
    for parts in itertools.zip_longest(*wrapped, fillvalue=''):
        yield ' ' + ''.join(part.ljust(width) for part, (_, width) in zip(parts, COLUMNS))


def _kind(layer):
    from minidl.models import Model, Sequential
    if isinstance(layer, Model) and not isinstance(layer, Sequential):
        return 'Functional'
    return type(layer).__name__


def _shape_text(layer):
    shape = layer.output_shape
    if shape is None:
        return '?'
    if type(layer).__name__ == 'InputLayer':
        return f'[{format_shape(shape)}]'
    return format_shape(shape)


def _count_text(count):
    """'1,234', or '?' for a count that depends on an input size not yet known."""
    return '?' if count is None else f'{count:,}'


def print_summary(model, print_fn=print):
    """Print the summary of ``model`` through ``print_fn`` (one call per line)."""
    if not model.built:
        raise ValueError(f'{model.name} has not been built yet: give its first layer an '
                         f'input_shape, or call it (or fit it) on data first')
    width = sum(w for _, w in COLUMNS) + 1
    print_fn(f'Model: "{model.name}"')
    print_fn('_' * width)
    for line in _rows([title for title, _ in COLUMNS]):
        print_fn(line)
    print_fn('=' * width)
    for i, layer in enumerate(model.layers):
        mults = layer.multiplications()
        for line in _rows([f'{layer.name} ({_kind(layer)})', _shape_text(layer),
                           layer.count_params(), _count_text(mults)]):
            print_fn(line)
        print_fn('' if i == len(model.layers) - 1 else ' ' * width)
    print_fn('=' * width)
    trainable = sum(w.size for w in model.trainable_weights)
    total = sum(w.size for w in model.weights)
    print_fn(f'Total params: {total:,}')
    print_fn(f'Trainable params: {trainable:,}')
    print_fn(f'Non-trainable params: {total - trainable:,}')
    print_fn(f'Multiplications per example: {_count_text(model.multiplications())}')
    print_fn('_' * width)
