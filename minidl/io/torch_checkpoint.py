"""PyTorch checkpoints (``torch.save(model.state_dict(), path)``) read without PyTorch, and
loaded into the matching minidl model.

A checkpoint is a zip holding ``data.pkl``, a pickle whose tensors point at raw little-endian
storages ``data/<key>`` beside it. The pickle is read with a closed list of the globals a
state_dict uses, so loading a file never runs code from it; anything else is refused.

PyTorch lays weights out channels-first, minidl channels-last (as Keras), so
:func:`load_torch_weights` converts each layer's weights:

* Conv2d ``(out, in, kh, kw)`` -> Conv2D ``(kh, kw, in, out)``; Conv1d ``(out, in, k)`` ->
  Conv1D ``(k, in, out)``;
* Linear ``(out, in)`` -> Dense ``(in, out)``, and for the first Dense after a Flatten of
  feature maps, the inputs are reordered from PyTorch's flattening order (C, H, W) to
  minidl's (H, W, C) (or (C, L) to (L, C) for sequences);
* BatchNorm ``weight, bias, running_mean, running_var`` -> gamma, beta, moving mean and
  variance (``num_batches_tracked`` has no counterpart).
"""
import collections
import pickle
import zipfile

import numpy as np

_DTYPES = {f'{name}Storage': np.dtype(dtype) for name, dtype in (
    ('Float', 'float32'), ('Double', 'float64'), ('Half', 'float16'), ('Long', 'int64'),
    ('Int', 'int32'), ('Short', 'int16'), ('Char', 'int8'), ('Byte', 'uint8'),
    ('Bool', 'bool'))}


def _rebuild_tensor(storage, offset, size, stride, *_):
    """An array of ``size`` with element ``stride`` over ``storage`` from ``offset`` (what
    ``torch._utils._rebuild_tensor_v2`` does for a tensor)."""
    if not size:
        return storage[offset].copy()
    strides = [s * storage.itemsize for s in stride]
    return np.lib.stride_tricks.as_strided(storage[offset:], tuple(size), strides).copy()


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickles a state_dict and nothing else: tensors become NumPy arrays."""

    def __init__(self, file, archive, prefix, path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module, name):
        if (module, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return _rebuild_tensor
        if module == 'torch' and name in _DTYPES:
            return _DTYPES[name]
        raise ValueError(f'{self.path}: holds a {module}.{name}, which a state_dict of tensors '
                         f'does not; save model.state_dict(), not the model object')

    def persistent_load(self, pid):
        kind, dtype, key, _location, count = pid
        if kind != 'storage':
            raise ValueError(f'{self.path}: unknown storage record {pid!r}')
        raw = self.archive.read(f'{self.prefix}/data/{key}')
        return np.frombuffer(raw, dtype.newbyteorder('<'), count).astype(dtype)


def read_torch_checkpoint(path):
    """The contents of a ``torch.save`` file (PyTorch 1.6 or later) with every tensor as a
    NumPy array: for a state_dict, ``{name: array}`` in the model's module order."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f'{path}: not a PyTorch checkpoint (torch.save from PyTorch 1.6 or '
                         f'later writes a zip file): {exc}') from None
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith('/data.pkl')]
        if not pickles:
            raise ValueError(f'{path}: a zip file without data.pkl, not a PyTorch checkpoint')
        prefix = pickles[0][:-len('/data.pkl')]
        with archive.open(pickles[0]) as file:
            return _CheckpointUnpickler(file, archive, prefix, path).load()


def load_torch_weights(model, checkpoint):
    """Give ``model``'s layers the weights of a PyTorch state_dict (a path or the dict), in
    order: the n-th minidl layer with weights takes the n-th PyTorch module with parameters.
    Mismatched counts or shapes are one ValueError listing every misfit."""
    state = read_torch_checkpoint(checkpoint) if not isinstance(checkpoint, dict) \
        else checkpoint
    modules = _modules(state)
    targets = _weight_layers(model)
    if len(modules) != len(targets):
        raise ValueError(f'the checkpoint has {len(modules)} modules with parameters '
                         f'({", ".join(modules)}) but {model.name} has {len(targets)} layers '
                         f'with weights ({", ".join(layer.name for layer, _ in targets)})')
    converted, problems = [], []
    for (layer, flattened), (name, params) in zip(targets, modules.items()):
        arrays = _convert(layer, params, flattened)
        expected, got = [w.shape for w in layer.weights], [a.shape for a in arrays]
        if expected != got:
            problems.append(f'{layer.name} expects {expected}, {name} gives {got}')
        converted.append(arrays)
    if problems:
        raise ValueError('the checkpoint does not fit:\n  ' + '\n  '.join(problems))
    for (layer, _), arrays in zip(targets, converted):
        layer.set_weights(arrays)


def _modules(state):
    """``{module name: {parameter name: array}}`` for the modules that hold parameters."""
    modules = collections.OrderedDict()
    for key, value in state.items():
        module, _, param = key.rpartition('.')
        if param != 'num_batches_tracked':
            modules.setdefault(module, {})[param] = np.asarray(value)
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
    """The PyTorch parameters of one module, as the arrays ``layer.set_weights`` takes."""
    kind = type(layer).__name__
    if kind == 'BatchNormalization':
        return [params['weight'], params['bias'], params['running_mean'], params['running_var']]
    kernel = params['weight']
    if kind in ('Conv2D', 'Conv1D'):
        kernel = np.moveaxis(kernel, (0, 1), (-1, -2))  # (out, in, *k) -> (*k, in, out)
    elif kind == 'Dense':
        kernel = kernel.T
        if flattened is not None:  # rows in PyTorch's (C, H, W) order -> minidl's (H, W, C)
            *spatial, channels = flattened
            kernel = np.moveaxis(kernel.reshape(channels, *spatial, -1), 0, -2).reshape(
                -1, kernel.shape[-1])
    return [kernel] + ([params['bias']] if 'bias' in params else [])
