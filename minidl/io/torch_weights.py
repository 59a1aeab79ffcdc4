"""A PyTorch state_dict given to the matching minidl model, converted to channels-last.

PyTorch lays weights out channels-first, minidl channels-last (as Keras), so
:func:`load_torch_weights` converts each layer's weights:

* Conv2d ``(out, in, kh, kw)`` -> Conv2D ``(kh, kw, in, out)``; Conv1d ``(out, in, k)`` ->
  Conv1D ``(k, in, out)``;
* Linear ``(out, in)`` -> Dense ``(in, out)``, and for the first Dense after a Flatten of
  feature maps, the inputs are reordered from PyTorch's flattening order (C, H, W) to
  minidl's (H, W, C) (or (C, L) to (L, C) for sequences);
* BatchNorm ``weight, bias, running_mean, running_var`` -> gamma, beta, moving mean and
  variance (``num_batches_tracked`` has no counterpart).

The state_dict may come from a file (read by :func:`~minidl.io.read_torch_checkpoint`), or
be a training checkpoint holding one (``{'model': ..., 'optimizer': ..., 'epoch': ...}``).
"""
import collections

import numpy as np

from minidl.io.errors import WeightFileError
from minidl.io.torch_checkpoint import read_torch_checkpoint, show_value


def load_torch_weights(model, checkpoint, key=None, strict=True):
    """Give ``model``'s layers the weights of a PyTorch state_dict, in order: the n-th minidl
    layer with weights takes the n-th PyTorch module with parameters. ``checkpoint`` is a path
    or what :func:`read_torch_checkpoint` returned: a state_dict, or a training checkpoint
    such as ``{'model': state_dict, 'optimizer': ..., 'epoch': 3}`` whose one state_dict is
    used (``key`` names it when there are several). With ``strict=False`` the checkpoint may
    have more modules than the model has layers with weights, as a whole VGG16 state_dict has
    for ``VGG16(include_top=False)``: the layers take the first modules, the rest are left
    unused. Returns the names of the modules left unused, as ``load_state_dict(strict=False)``
    returns its unexpected keys. Mismatched counts or shapes are one ValueError listing every
    misfit."""
    source = 'the checkpoint dict' if isinstance(checkpoint, dict) else checkpoint
    contents = checkpoint if isinstance(checkpoint, dict) else read_torch_checkpoint(checkpoint)
    modules = _modules(_state_dict(contents, key, source))
    targets = _weight_layers(model)
    if len(modules) < len(targets) or strict and len(modules) != len(targets):
        hint = '; pass strict=False to load the first ones and leave the rest' \
            if len(modules) > len(targets) else ''
        raise ValueError(f'the checkpoint has {len(modules)} modules with parameters '
                         f'({", ".join(modules)}) but {model.name} has {len(targets)} layers '
                         f'with weights ({", ".join(layer.name for layer, _ in targets)}){hint}')
    converted, problems = [], []
    for (layer, flattened), (name, params) in zip(targets, modules.items()):
        arrays = _convert(layer, params, flattened)
        expected = [w.shape for w in layer.weights]
        got = [a.shape for a in arrays] if arrays is not None else \
            {param: array.shape for param, array in params.items()}
        if expected != got:
            problems.append(f'{layer.name} expects {expected}, {name} gives {got}')
        converted.append(arrays)
    if problems:
        raise ValueError('the checkpoint does not fit:\n  ' + '\n  '.join(problems))
    for (layer, _), arrays in zip(targets, converted):
        layer.set_weights(arrays)
    return list(modules)[len(targets):]


def _state_dict(contents, key, source):
    """The state_dict in ``contents``: ``contents[key]``, else ``contents`` itself, else its
    one value that is a state_dict (as in a training checkpoint)."""
    if key is not None:
        if not isinstance(contents, dict) or key not in contents:
            raise WeightFileError(source, f'has no key {show_value(key)} (its keys: '
                                          f'{_keys(contents)})')
        if not _is_state_dict(contents[key]):
            raise WeightFileError(source, f'{show_value(key)} is not a state_dict (a dict of '
                                          f'parameter names to tensors)')
        return contents[key]
    if _is_state_dict(contents):
        return contents
    found = [k for k, value in contents.items() if _is_state_dict(value)] \
        if isinstance(contents, dict) else []
    if len(found) == 1:
        return contents[found[0]]
    if found:
        raise WeightFileError(source, f'holds {len(found)} state_dicts, under the keys '
                                      f'{show_value(found)[1:-1]}; pass key= one of them')
    raise WeightFileError(source, f'holds no state_dict (a dict of parameter names to '
                                  f'tensors), itself or under one of its keys ({_keys(contents)})')


def _is_state_dict(value):
    """True for a non-empty dict of str names to arrays."""
    return isinstance(value, dict) and bool(value) and all(
        type(name) is str and isinstance(array, np.ndarray) for name, array in value.items())


def _keys(contents):
    """The top-level keys of what a checkpoint holds, for messages."""
    return show_value(list(contents))[1:-1] if isinstance(contents, dict) else \
        f'none: it holds a {type(contents).__name__}'


def _modules(state):
    """``{module name: {parameter name: array}}`` for the modules that hold parameters."""
    modules = collections.OrderedDict()
    for key, value in state.items():
        module, _, param = key.rpartition('.')
        if param != 'num_batches_tracked':
            modules.setdefault(module, {})[param] = value
    return modules


def _weight_layers(model):
    """``(layer, flattened)`` for every leaf layer with weights, nested models included;
    ``flattened`` is the (..., C) shape a Flatten turned into this layer's input, if any."""
    found, flattened = [], None
    for layer in model.layers:
        if hasattr(layer, 'layers'):
            found += _weight_layers(layer)
        elif type(layer).__name__ == 'Flatten' and len(layer.input_shape) >= 3:
            flattened = layer.input_shape[1:]
        elif layer.weights:
            found.append((layer, flattened))
            flattened = None
    return found


def _convert(layer, params, flattened):
    """The PyTorch parameters of one module as the arrays ``layer.set_weights`` takes, or
    None when they cannot be: a parameter missing, or a kernel of another rank or size."""
    kind = type(layer).__name__
    if kind == 'BatchNormalization':
        names = ('weight', 'bias', 'running_mean', 'running_var')
        return [params[name] for name in names] if set(names) <= set(params) else None
    kernel = params.get('weight')
    if kernel is None or kernel.ndim != len(layer.weights[0].shape):
        return None
    if kind in ('Conv2D', 'Conv1D'):
        kernel = np.moveaxis(kernel, (0, 1), (-1, -2))  # (out, in, *k) -> (*k, in, out)
    elif kind == 'Dense':
        kernel = kernel.T
        if flattened is not None:  # rows in PyTorch's (C, H, W) order -> minidl's (H, W, C)
            *spatial, channels = flattened
            if len(kernel) != np.prod(flattened):
                return None
            kernel = np.moveaxis(kernel.reshape(channels, *spatial, -1), 0, -2).reshape(
                -1, kernel.shape[-1])
    return [kernel] + ([params['bias']] if 'bias' in params else [])
