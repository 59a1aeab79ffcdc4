"""The Layer contract (Keras's): configure in ``__init__``, create weights in
``build(input_shape)``, compute in ``call(x, training)``; the first call builds.

Shapes given to and returned by ``build`` and ``compute_output_shape`` include the batch axis as
``None``: ``(None, 28, 28, 1)``. Calling a layer on a :class:`SymbolicTensor` (from ``Input``)
computes no values: it records the layer in a graph for the functional ``Model``.
"""
import collections
import contextlib
import contextvars
import itertools
import math
import operator
import re

import numpy as np

from minidl import constraints, initializers, regularizers
from minidl.autograd import Tensor, as_array
from minidl.backends import to_device
from minidl.functions.shape import transpose

_name_counts = collections.Counter()
_node_serials = itertools.count()  # the order layer calls were made in (Keras's node order)


def unique_name(base, zero_based=True):
    """Keras's automatic names: conv2d, conv2d_1, conv2d_2, ...; or input_1, input_2, ...
    (``zero_based=False``, as tf-keras numbers its inputs)."""
    count = _name_counts[base]
    _name_counts[base] += 1
    if not zero_based:
        return f'{base}_{count + 1}'
    return base if count == 0 else f'{base}_{count}'


def snake_case(name):
    """'MaxPooling2D' -> 'max_pooling2d', 'Conv2D' -> 'conv2d', as Keras names layers."""
    name = re.sub(r'(.)([A-Z][a-z]+)', r'\1_\2', name)
    return re.sub(r'([a-z])([A-Z])', r'\1_\2', name).lower()


def format_shape(shape):
    return '(' + ', '.join('None' if d is None else str(d) for d in shape) + \
        (',)' if len(shape) == 1 else ')')


class Node:
    """One call of a layer in a functional graph: the layer, the symbolic tensors it was called
    on (``packed``: given as a list, as merge layers take them) and the tensors it made;
    ``serial`` orders the calls as they were made."""

    def __init__(self, layer, inputs=(), packed=False):
        self.layer, self.inputs, self.packed = layer, tuple(inputs), packed
        self.outputs = []
        self.serial = next(_node_serials)

    def arguments(self, values):
        """What the layer is called with, given the values of ``inputs``."""
        return list(values) if self.packed else values[0]


class SymbolicTensor:
    """A placeholder for output ``index`` of a layer call (``node``) in a functional graph.

    It carries only a shape (batch axis ``None``) and a dtype; ``Model`` and ``K.function``
    replay the graph on real data. Operators, indexing and the ``minidl.backend`` functions
    applied to it record further nodes (see :func:`apply`).
    """

    def __init__(self, shape, node=None, index=0, dtype='float32'):
        self.shape, self.node, self.index = tuple(shape), node, index
        self.dtype = np.dtype(dtype)
        if node is not None:
            node.outputs.append(self)

    layer = property(lambda self: self.node.layer if self.node else None)
    inputs = property(lambda self: self.node.inputs if self.node else ())
    ndim = property(lambda self: len(self.shape))

    def __repr__(self):
        source = f', from {self.layer.name}' if self.layer else ''
        return f'<SymbolicTensor shape={format_shape(self.shape)}{source}>'

    __hash__ = object.__hash__

    def __add__(self, other): return apply(operator.add, self, other)
    def __radd__(self, other): return apply(operator.add, other, self)
    def __sub__(self, other): return apply(operator.sub, self, other)
    def __rsub__(self, other): return apply(operator.sub, other, self)
    def __mul__(self, other): return apply(operator.mul, self, other)
    def __rmul__(self, other): return apply(operator.mul, other, self)
    def __truediv__(self, other): return apply(operator.truediv, self, other)
    def __rtruediv__(self, other): return apply(operator.truediv, other, self)
    def __pow__(self, other): return apply(operator.pow, self, other)
    def __rpow__(self, other): return apply(operator.pow, other, self)
    def __matmul__(self, other): return apply(operator.matmul, self, other)
    def __rmatmul__(self, other): return apply(operator.matmul, other, self)
    def __neg__(self): return apply(operator.neg, self)
    def __getitem__(self, index): return apply(operator.getitem, self, index)


def is_symbolic(x):
    """Whether ``x`` is a SymbolicTensor or a list/tuple holding one."""
    if isinstance(x, (list, tuple)):
        return any(isinstance(item, SymbolicTensor) for item in x)
    return isinstance(x, SymbolicTensor)


def apply(function, *args, name=None, **kwargs):
    """``function(*args, **kwargs)`` on tensors, or, when an argument is symbolic, a graph node
    that will compute it (an :class:`Operation` named after the function).

    Arrays and numbers among the arguments are taken as they are; only SymbolicTensors (also
    inside a list argument, as ``K.concatenate([a, b])`` gives) are replaced by values.
    """
    if not any(is_symbolic(a) for a in args):
        return function(*[_as_tensor(a) for a in args], **kwargs)
    grouped = [isinstance(a, (list, tuple)) and is_symbolic(a) for a in args]
    slots = [(i, j) for i, a in enumerate(args) for j, item in enumerate(
        a if grouped[i] else [a]) if isinstance(item, SymbolicTensor)]
    symbols = [args[i][j] if grouped[i] else args[i] for i, j in slots]

    def on_values(values):
        filled = [list(a) if group else a for a, group in zip(args, grouped)]
        for (i, j), value in zip(slots, values):
            if grouped[i]:
                filled[i][j] = value
            else:
                filled[i] = value
        return function(*filled, **kwargs)

    label = name or getattr(function, '__name__', 'operation').strip('_')
    return Operation(on_values, name=unique_name(label))(list(symbols))


def _as_tensor(x):
    return Tensor(as_array(x)) if isinstance(x, (np.ndarray, np.generic)) else x


def _stand_in(shapes, dtypes, size):
    """Arrays of ones of ``shapes``, each unknown (None) size replaced by ``size``."""
    return [Tensor(np.ones([size if d is None else d for d in shape], dtype))
            for shape, dtype in zip(shapes, dtypes)]


def inferred_output_shape(function, shapes, dtypes, description):
    """The output shape (a list of shapes for a list of outputs) of ``function`` called on a
    list of inputs of ``shapes``, found by calling it on stand-ins: once with every unknown
    size 1, once with 2; a size that follows them is unknown (None).

    This is how a Lambda or a K function on symbolic tensors knows its shape without a shape
    rule of its own (as ``jax.eval_shape`` traces, but by running on tiny arrays)."""
    from minidl.autograd import no_grad
    runs = []
    with no_grad(), np.errstate(all='ignore'):
        for size in (1, 2) if any(None in shape for shape in shapes) else (1,):
            try:
                runs.append(function(_stand_in(shapes, dtypes, size)))
            except Exception as error:
                raise ValueError(f'{description}: cannot compute its output shape on inputs '
                                 f'of shape {", ".join(map(format_shape, shapes))} ({error}); '
                                 f'pass output_shape') from error
    several = isinstance(runs[0], (list, tuple))
    merged = [tuple(a if a == b else None for a, b in zip(first.shape, last.shape))
              for first, last in zip(*[r if several else [r] for r in (runs[0], runs[-1])])]
    return merged if several else merged[0]


_budget = contextvars.ContextVar('weight_budget', default=None)  # [bytes left, source]


def _charge_budget(layer, shape):
    """Take a weight of ``shape`` out of the active :meth:`Layer.weight_budget`, if any."""
    budget = _budget.get()
    if budget is None:
        return
    nbytes = math.prod(operator.index(d) for d in shape) * layer.dtype.itemsize
    if nbytes > budget[0]:
        raise ValueError(f'{layer.name}: a weight of shape {format_shape(shape)} '
                         f'({nbytes} bytes) is more than {budget[1]} holds ({budget[0]} bytes '
                         f'left)')
    budget[0] -= max(nbytes, 0)


def batch_free(shape):
    """``shape`` with its batch axis unknown: ``(None, ...)``; a list of shapes, each so."""
    if isinstance(shape, list):
        return [batch_free(item) for item in shape]
    return (None,) + tuple(shape)[1:]


class Layer:
    """Base class of every layer; subclasses override ``build``, ``call`` and
    ``compute_output_shape`` (and ``get_config`` for their own arguments)."""

    expected_ndim = None  # rank of the input, batch axis included, when the layer needs one
    casts_integer_inputs = True  # False where integers are the data: ids (Embedding), models
    batch_axis = True  # the first axis of the input is the batch (not so for K operations)
    takes_list = False  # True for layers called on a list of tensors (merges, functions)
    input = output = None  # the symbolic tensors of the first graph this layer was called in

    def __init__(self, name=None, trainable=True, input_shape=None, batch_input_shape=None,
                 dtype='float32', input_dim=None, input_length=None):
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = trainable
        self.dtype = np.dtype(dtype)
        self.built = False
        self._weights = []
        self._regularized = []  # (weight, regularizer) pairs, for ``losses``
        self.input_shape_arg = self._declared_input_shape(input_shape, batch_input_shape,
                                                          input_dim, input_length)
        self.input_shape = self.output_shape = None

    @staticmethod
    def _declared_input_shape(input_shape, batch_input_shape, input_dim, input_length):
        if batch_input_shape is not None:
            return (None,) + tuple(batch_input_shape)[1:]
        if input_shape is not None:
            return (None,) + tuple(input_shape)
        if input_dim is not None:
            return (None, input_length, input_dim) if input_length else (None, input_dim)
        return None

    # --- weights --------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer='glorot_uniform', trainable=True,
                   constraint=None, regularizer=None):
        """Create a weight Tensor named ``<layer>/<name>`` with a Keras initializer; the
        optimizer applies ``constraint`` (see :mod:`minidl.constraints`) after each update, and
        ``regularizer``'s penalty (:mod:`minidl.regularizers`) is in :attr:`losses`.
        Inside :meth:`weight_budget`, a weight beyond the budget is refused before it exists."""
        _charge_budget(self, tuple(shape))
        data = initializers.get(initializer)(tuple(shape), dtype=self.dtype)
        weight = Tensor(data, requires_grad=trainable and self._trainable,
                        name=f'{self.name}/{name}')
        weight.trainable = trainable
        weight.constraint = constraints.get(constraint)
        self._weights.append(weight)
        if regularizer is not None:
            self._regularized.append((weight, regularizers.get(regularizer)))
        return weight

    @staticmethod
    @contextlib.contextmanager
    def weight_budget(nbytes, source):
        """Within the block, the weights created may take ``nbytes`` in all; one beyond that
        is a ValueError naming the layer, the shape and ``source`` (say, the file whose
        config is being built: a model from a file holds no more than the file stores)."""
        token = _budget.set([nbytes, source])
        try:
            yield
        finally:
            _budget.reset(token)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, flag):
        self._trainable = bool(flag)
        self._apply_trainable()

    def _apply_trainable(self):
        """Make the weights follow ``trainable`` (a model passes the flag to its layers)."""
        for w in self._weights:
            w.requires_grad = w.trainable and self._trainable

    @property
    def weights(self):
        return self.trainable_weights + self.non_trainable_weights

    @property
    def trainable_weights(self):
        return [w for w in self._weights if w.trainable] if self._trainable else []

    @property
    def non_trainable_weights(self):
        if not self._trainable:
            return list(self._weights)
        return [w for w in self._weights if not w.trainable]

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in Keras's order and shapes: training later
        does not change them."""
        return [np.array(w.numpy()) for w in self.weights]

    def set_weights(self, arrays):
        """Replace the weights' values with copies of ``arrays``; shapes must match
        ``get_weights()``."""
        weights = self.weights
        if len(arrays) != len(weights):
            raise ValueError(f'{self.name}: set_weights got {len(arrays)} arrays for '
                             f'{len(weights)} weights')
        for w, a in zip(weights, arrays):
            a = np.asarray(a)
            if a.shape != w.shape:
                raise ValueError(f'{self.name}: weight {w.name} has shape {w.shape}, got an '
                                 f'array of shape {a.shape}')
            w.data = to_device(a.astype(w.dtype), w.device)

    # --- penalties ------------------------------------------------------------------------
    activity_losses = ()  # the penalties on the outputs of this layer's latest call

    @property
    def losses(self):
        """The penalties (scalar Tensors) training adds to the loss, as Keras lists them:
        layer by layer, this one first, each one's activity penalties of its latest call, then
        one per regularized weight (a frozen layer's too, as in tf-keras)."""
        own = list(self.activity_losses) + [fn(w) for w, fn in self._regularized]
        return own + [loss for layer in getattr(self, 'layers', ()) for loss in layer.losses]

    def count_params(self):
        return sum(w.size for w in self.weights)

    def to(self, device):
        """Move every weight to 'cpu' or 'gpu' in place; returns the layer."""
        for w in self._weights:
            w.data = to_device(w.data, device)
        return self

    # --- shapes ---------------------------------------------------------------------------
    def check_input_shape(self, input_shape):
        """Raise a ValueError naming the layer when ``input_shape`` cannot be taken."""
        if self.expected_ndim is not None and len(input_shape) != self.expected_ndim:
            raise ValueError(f'{self.name} ({type(self).__name__}) expects inputs with '
                             f'{self.expected_ndim} dimensions {self.expected_shape_text()}, got '
                             f'shape {format_shape(input_shape)}')
        if self.built and self.input_shape is not None and not isinstance(input_shape, list):
            for got, want in zip(input_shape[1:], self.input_shape[1:]):
                if want is not None and got is not None and got != want:
                    raise ValueError(f'{self.name} ({type(self).__name__}) was built for input '
                                     f'shape {format_shape(self.input_shape)}, got '
                                     f'{format_shape(input_shape)}')

    def expected_shape_text(self):
        return {2: '(batch, features)', 3: '(batch, steps, channels)',
                4: '(batch, height, width, channels)'}.get(self.expected_ndim, '')

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis included)."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, x, training=False):
        raise NotImplementedError(f'{type(self).__name__}.call')

    def _ensure_built(self, input_shape, device='cpu'):
        """Check the input shape (a list of shapes for a layer called on a list) and, on the
        first call, build the weights on ``device``."""
        input_shape = batch_free(input_shape) if self.batch_axis else input_shape
        if isinstance(input_shape, list) and not self.takes_list:
            raise ValueError(f'{self.name} ({type(self).__name__}) takes one input, got a list '
                             f'of {len(input_shape)}: {", ".join(map(format_shape, input_shape))}')
        self.check_input_shape(input_shape)
        if not self.built:
            self.build(input_shape)
            self.to(device)
            self.built = True
            self.input_shape = input_shape
            self.output_shape = self.compute_output_shape(input_shape)
        return input_shape

    def __call__(self, x, training=None):
        """Compute on tensors or arrays (a list of them for merge layers), or, called on
        symbolic tensors, add a node to the functional graph and return its output(s).

        ``training`` True (``fit``) or False (``predict``, ``evaluate``); None, when the caller
        does not say, is inference for every layer but the random augmentation layers, which
        augment, as in Keras 3."""
        if is_symbolic(x):
            return self._call_symbolic(x)
        return self.call(self._prepare(x), training)

    def _call_symbolic(self, x):
        packed = isinstance(x, (list, tuple))
        inputs = list(x) if packed else [x]
        if not all(isinstance(t, SymbolicTensor) for t in inputs):
            raise TypeError(f'{self.name} ({type(self).__name__}): the inputs of a functional '
                            f'call must all be symbolic tensors (from Input or a layer), got '
                            f'{[type(t).__name__ for t in inputs]}')
        shapes = [t.shape for t in inputs]
        was_built = self.built
        input_shape = self._ensure_built(shapes if packed else shapes[0])
        output_shape = self.compute_output_shape(input_shape) if was_built else \
            self.output_shape
        node = Node(self, inputs, packed)
        several = isinstance(output_shape, list)
        for index, shape in enumerate(output_shape if several else [output_shape]):
            SymbolicTensor(shape, node, index, self.dtype)
        out = list(node.outputs) if several else node.outputs[0]
        self._record_node(x, out)
        return out

    def _prepare(self, x):
        """``x`` (or each tensor of a list) as a Tensor this layer can compute on, after
        building the layer for it.

        Integer or boolean inputs (uint8 images) are cast to the layer's float dtype, as Keras
        does, unless the layer reads integers as such (``casts_integer_inputs = False``).
        """
        if isinstance(x, (list, tuple)):
            xs = [self._as_input(item) for item in x]
            self._ensure_built([t.shape for t in xs], xs[0].device if xs else 'cpu')
            return xs
        x = self._as_input(x)
        self._ensure_built(x.shape, x.device)
        return x

    def _as_input(self, x):
        x = x if isinstance(x, Tensor) else Tensor(as_array(x))
        if self.casts_integer_inputs and x.dtype.kind in 'biu':
            x = Tensor(x.data.astype(self.dtype))
        return x

    def _record_node(self, x, out):
        if self.output is None:
            self.input, self.output = x, out

    # --- activations fused into the loss ------------------------------------------------
    activation = 'linear'

    def call_logits(self, x, training=False):
        """The output before this layer's final activation (for fused softmax/sigmoid losses)."""
        raise NotImplementedError(f'{type(self).__name__} has no separable activation')

    def multiplications(self):
        """Multiplications per example in a forward pass (summary's extra column); None
        while an input size is unknown."""
        return 0

    # --- configuration ----------------------------------------------------------------
    def get_config(self):
        config = {'name': self.name, 'trainable': self._trainable, 'dtype': self.dtype.name}
        if self.input_shape_arg is not None:
            config['batch_input_shape'] = list(self.input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f'<{type(self).__name__} name={self.name!r}>'


class Operation(Layer):
    """A function of tensors as a node of a functional graph: what an operator or a
    ``minidl.backend`` function applied to symbolic tensors records (and the base of Lambda).

    ``function`` is called with what the node is called with (one tensor, or a list); its
    output shape is ``output_shape`` when given (without the batch axis), else inferred by
    :func:`inferred_output_shape`.
    """

    casts_integer_inputs = False
    batch_axis = False
    takes_list = True

    def __init__(self, function, output_shape=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.function, self.declared_output_shape = function, output_shape

    def compute_output_shape(self, input_shape):
        if self.declared_output_shape is not None:
            declared = self.declared_output_shape
            return declared(input_shape) if callable(declared) else (None,) + tuple(declared)
        packed = isinstance(input_shape, list)
        shapes = input_shape if packed else [input_shape]
        return inferred_output_shape(lambda xs: self.function(xs if packed else xs[0]),
                                     shapes, [self.dtype] * len(shapes),
                                     f'{self.name} ({type(self).__name__})')

    def check_input_shape(self, input_shape):
        """A function takes whatever shapes it can compute on."""

    def get_config(self):
        raise ValueError(f'{self.name} ({type(self).__name__}) cannot be written to a config: '
                         f'its function is code, not data. Save the weights (save_weights) '
                         f'and rebuild the model in code to load them')

    def call(self, x, training=False):
        return self.function(x)


class ChannelsLast:
    """Mixin for layers that compute on channels-last inputs and take Keras's ``data_format``:
    with ``'channels_first'`` the input (N, C, ...) is moved to (N, ..., C) for
    ``call_last``/``shape_last`` and the result moved back (a result without spatial axes,
    such as a global pooling's (N, C), stays as it is)."""

    data_format = 'channels_last'

    def _moved(self, rank):
        """The permutations to channels-last and back, for a tensor of ``rank``."""
        to_last = (0,) + tuple(range(2, rank)) + (1,)
        return to_last, (0, rank - 1) + tuple(range(1, rank - 1))

    def call(self, x, training=False):
        if self.data_format == 'channels_last':
            return self.call_last(x, training)
        to_last, back = self._moved(x.ndim)
        y = self.call_last(transpose(x, to_last), training)
        return transpose(y, back) if y.ndim == x.ndim else y

    def compute_output_shape(self, input_shape):
        if self.data_format == 'channels_last':
            return self.shape_last(input_shape)
        to_last, back = self._moved(len(input_shape))
        shape = self.shape_last(tuple(input_shape[i] for i in to_last))
        return tuple(shape[i] for i in back) if len(shape) == len(input_shape) else shape
