"""Keras's backend functions: ``from minidl import backend as K``.

Every function computes at once on Tensors, arrays and numbers, and on symbolic tensors
(``model.input``, a layer's ``output``) records a graph node instead, whose shape is inferred
(:func:`minidl.layers.base.apply`). So Keras 2's filter visualisation runs as written::

    loss = K.mean(model.get_layer(name).output[:, :, :, filter_index])
    grads = K.gradients(loss, model.input)[0]
    iterate = K.function([model.input], [loss, grads])
    loss_value, grads_value = iterate([image])          # NumPy arrays

:func:`function` replays the recorded graph on real tensors (:func:`minidl.models.replay`) and
:func:`gradients` differentiates it with the one autograd engine (:func:`minidl.autograd.grad`).
"""
import contextlib
import functools

import numpy as np

import minidl.functions as F
from minidl import autograd
from minidl.autograd import Tensor
from minidl.backends import to_device
from minidl.layers import base
from minidl.layers.base import Layer, Node, Operation, SymbolicTensor, apply, is_symbolic
from minidl.models import graph_nodes, replay
from minidl.utils import as_list


# --- settings -----------------------------------------------------------------------------
def epsilon():
    """The fuzz factor Keras adds to denominators: 1e-7."""
    return 1e-7


def floatx():
    """The default float type: 'float32'."""
    return 'float32'


def image_data_format():
    """minidl's images are ``(N, H, W, C)``: 'channels_last'."""
    return 'channels_last'


def clear_session():
    """Start the automatic layer names afresh (conv2d, conv2d_1, ...), as Keras does."""
    base._name_counts.clear()


_LEARNING_PHASE = SymbolicTensor((), Node(Layer(name='keras_learning_phase')), dtype='uint8')


def learning_phase():
    """The symbolic training flag: an extra input of :func:`function`, fed 0 for inference
    (Dropout off) or 1 for training."""
    return _LEARNING_PHASE


# --- variables ----------------------------------------------------------------------------
def _numpy(value, dtype=None):
    return np.array(value.numpy() if isinstance(value, Tensor) else value, dtype=dtype)


def variable(value, dtype=None, name=None):
    """A Tensor holding a copy of ``value`` (``floatx()`` unless ``dtype`` says otherwise);
    a floating one requires a gradient, as Keras variables are trainable."""
    data = _numpy(value, dtype or floatx())
    return Tensor(data, requires_grad=data.dtype.kind == 'f', name=name)


def constant(value, dtype=None, shape=None, name=None):
    """A Tensor of ``value`` that takes no gradient; a scalar ``value`` fills ``shape``."""
    data = _numpy(value, dtype or floatx())
    return Tensor(np.broadcast_to(data, shape).copy() if shape else data, name=name)


def get_value(x):
    """A NumPy copy of the value of a Tensor (or array, or number): a NumPy scalar for a 0-d
    one, as ``K.get_value(model.optimizer.lr)`` gives."""
    if isinstance(x, SymbolicTensor):
        raise TypeError(f'K.get_value: {x} is symbolic: it has a value only when K.function '
                        f'feeds its inputs')
    return _numpy(x)[()]


eval = get_value  # noqa: A001 - Keras's name; values here are never deferred


def set_value(x, value):
    """Write ``value`` into the Tensor ``x`` in place: a weight, a variable, or the optimizer's
    rate (``K.set_value(model.optimizer.lr, 1e-4)`` sets the rate of the next step)."""
    if not isinstance(x, Tensor):
        raise TypeError(f'K.set_value needs a Tensor (K.variable, a weight, '
                        f'optimizer.learning_rate), got {type(x).__name__}')
    value = _numpy(value, x.dtype)
    if value.shape != x.shape:
        raise ValueError(f'K.set_value: {x.name or "the tensor"!r} has shape {x.shape}, the value '
                         f'has shape {value.shape}')
    x.data[...] = to_device(value, x.device)


def int_shape(x):
    """The shape as a tuple of ints, None where a size is unknown: ``(None, 28, 28, 1)``."""
    return tuple(x.shape)


def ndim(x):
    """The number of axes, the batch axis included."""
    return len(int_shape(x))


def shape(x):
    """The shape as an int32 tensor: known sizes only when ``x`` gets a value."""
    return apply(lambda t: Tensor(np.array(t.shape, np.int32)), x, name='shape')


# --- operations -----------------------------------------------------------------------------
def _lift(function):
    """``function`` of :mod:`minidl.functions` as a K function: it computes on values and
    records a node on symbolic tensors."""
    @functools.wraps(function)
    def on_tensors(*args, **kwargs):
        return apply(function, *args, **kwargs)
    return on_tensors


mean, sum, max, min = map(_lift, (F.mean, F.sum, F.max, F.min))  # noqa: A001
sqrt, abs, exp, log, pow = map(_lift, (F.sqrt, F.abs, F.exp, F.log, F.pow))  # noqa: A001
maximum, minimum = map(_lift, (F.maximum, F.minimum))
reshape, transpose, stack, squeeze = map(_lift, (F.reshape, F.transpose, F.stack, F.squeeze))
batch_flatten = _lift(F.flatten)


def square(x):
    return apply(F.pow, x, 2, name='square')


def clip(x, min_value, max_value):
    """Clamp to ``[min_value, max_value]``; None is no bound, and a ``max_value`` below
    ``min_value`` is ``min_value`` (Keras's rule)."""
    low = -np.inf if min_value is None else min_value
    high = np.inf if max_value is None else max_value if max_value >= low else low
    return apply(F.clip, x, low, high, name='clip')


def flatten(x):
    """All of ``x`` as one axis (the batch too; :func:`batch_flatten` keeps it)."""
    return apply(F.reshape, x, (-1,), name='flatten')


def expand_dims(x, axis=-1):
    return apply(F.expand_dims, x, axis)


def concatenate(tensors, axis=-1):
    return apply(F.concatenate, list(tensors), axis=axis)


def _dot(x, y):
    if y.ndim <= 2:
        return F.matmul(x, y)
    before_last = (y.ndim - 2,) + tuple(range(y.ndim - 2)) + (y.ndim - 1,)
    rows = F.matmul(F.reshape(x, (-1, x.shape[-1])),
                    F.reshape(F.transpose(y, before_last), (y.shape[-2], -1)))
    return F.reshape(rows, x.shape[:-1] + y.shape[:-2] + y.shape[-1:])


def dot(x, y):
    """Keras's dot: the last axis of ``x`` against the second-to-last of ``y``:
    (2, 3, 4) . (4, 5) -> (2, 3, 5); (2, 3) . (4, 3, 5) -> (2, 4, 5)."""
    return apply(_dot, x, y, name='dot')


# --- gradients and functions ------------------------------------------------------------------
class Gradients(Operation):
    """The node :func:`gradients` records: called on ``[loss, *variables]``, it gives
    d(sum of loss)/d(variable) for each variable, shaped like it."""

    def __init__(self):
        super().__init__(self.differentiate, output_shape=lambda shapes: list(shapes[1:]))

    @staticmethod
    def differentiate(values):
        grads = autograd.grad(values[0], values[1:])
        return grads if len(grads) > 1 else grads[0]


def gradients(loss, variables):
    """The gradients of ``sum(loss)`` with respect to each of ``variables`` (a list, as Keras
    returns), each of the variable's shape.

    On symbolic tensors (a variable may be ``model.input`` or a layer's output, as Grad-CAM
    takes) the gradients are symbolic too, computed when :func:`function` runs; on Tensors
    they are computed at once."""
    variables = as_list(variables)
    if not is_symbolic([loss] + variables):
        return autograd.grad(loss, variables)
    given = [loss] + variables
    if not all(isinstance(t, SymbolicTensor) for t in given):
        raise TypeError(f'K.gradients takes a symbolic loss with symbolic variables '
                        f'(model.input, a layer\'s output), or Tensors for both; got '
                        f'{", ".join(type(t).__name__ for t in given)}')
    return Gradients()(given)


class GraphFunction:
    """What :func:`function` returns: ``f(list of arrays)`` -> a list of NumPy arrays.

    It computes only the layer calls between ``inputs`` and ``outputs``, recording no graph
    unless a :func:`gradients` node is among them. Then the graph starts at the tensors that
    gradients are taken for, the weights take none (no weight ``.grad`` changes), and
    backward goes no further back than it must: Grad-CAM's gradient with respect to the last
    convolution differentiates only the layers after it."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = as_list(inputs), as_list(outputs)
        self._single = not isinstance(outputs, (list, tuple))
        for role, tensors in (('input', self.inputs), ('output', self.outputs)):
            for t in tensors:
                if not isinstance(t, SymbolicTensor):
                    raise TypeError(f'K.function: each {role} must be a symbolic tensor '
                                    f'(model.input, a layer\'s output, a K function of them), '
                                    f'got {type(t).__name__}')
        for y in self.outputs:
            try:
                graph_nodes(self.inputs, [y])
            except ValueError as error:
                raise ValueError(f'K.function: output {y} cannot be computed from the '
                                 f'inputs given: {error}') from None
        self._nodes = graph_nodes(self.inputs, self.outputs)
        differentiated = [node for node in self._nodes if isinstance(node.layer, Gradients)]
        self._targets = {id(x) for node in differentiated for x in node.inputs[1:]}
        self._weights = list({id(w): w for node in self._nodes
                              for w in node.layer.weights}.values())

    def __call__(self, values):
        values = as_list(values)
        if len(values) != len(self.inputs):
            raise ValueError(f'K.function takes {len(self.inputs)} input(s) '
                             f'({", ".join(map(str, self.inputs))}), got {len(values)}')
        device = self._weights[0].device if self._weights else 'cpu'
        fed = {id(x): self._feed(x, value, device) for x, value in zip(self.inputs, values)}
        phase = fed.get(id(_LEARNING_PHASE))
        training = phase is not None and bool(phase)
        with self._recording():
            for node in self._nodes:
                replay([node], fed, training)
                for y in node.outputs:
                    if id(y) in self._targets:
                        _differentiable(fed[id(y)])
        results = [fed[id(y)].numpy() for y in self.outputs]
        return results[0] if self._single else results

    def _feed(self, symbol, value, device):
        tensor = Tensor(to_device(_numpy(value, symbol.dtype), device))
        return _differentiable(tensor) if id(symbol) in self._targets else tensor

    @contextlib.contextmanager
    def _recording(self):
        """No graph without gradients to take; with them, none through the weights."""
        if not self._targets:
            with autograd.no_grad():
                yield
            return
        with autograd.frozen(self._weights):
            yield


def _differentiable(tensor):
    """Make ``tensor`` take a gradient: one computed in a graph keeps it (retain_grad), one
    computed without becomes a leaf, where backward stops."""
    if tensor.requires_grad:
        return tensor.retain_grad()
    tensor.requires_grad = True
    return tensor


def function(inputs, outputs):
    """A callable computing ``outputs`` from NumPy values of ``inputs`` (symbolic tensors;
    add :func:`learning_phase` to choose inference (0) or training (1)). A list of outputs
    gives a list of NumPy arrays, one output one array."""
    return GraphFunction(inputs, outputs)
