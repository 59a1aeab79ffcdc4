"""The Layer contract (Keras's): configure in ``__init__``, create weights in
``build(input_shape)``, compute in ``call(x, training)``; the first call builds.

Shapes given to and returned by ``build`` and ``compute_output_shape`` include the batch axis as
``None``: ``(None, 28, 28, 1)``. Calling a layer on a :class:`SymbolicTensor` (from ``Input``)
computes no values: it records the layer in a graph for the functional ``Model``.
"""
import collections
import contextlib
import contextvars
import math
import operator
import re

import numpy as np

from minidl import constraints, initializers
from minidl.autograd import Tensor, as_array
from minidl.backends import to_device

_name_counts = collections.Counter()


def unique_name(base):
    """Keras's automatic names: conv2d, conv2d_1, conv2d_2, ..."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f'{base}_{count}'


def snake_case(name):
    """'MaxPooling2D' -> 'max_pooling2d', 'Conv2D' -> 'conv2d', as Keras names layers."""
    name = re.sub(r'(.)([A-Z][a-z]+)', r'\1_\2', name)
    return re.sub(r'([a-z])([A-Z])', r'\1_\2', name).lower()


def format_shape(shape):
    return '(' + ', '.join('None' if d is None else str(d) for d in shape) + \
        (',)' if len(shape) == 1 else ')')


class SymbolicTensor:
    """A placeholder for the output of ``layer`` applied to ``inputs`` in a functional graph.

    It carries only a shape (batch axis ``None``); ``Model`` replays the graph on real data.
    """

    def __init__(self, shape, layer=None, inputs=()):
        self.shape, self.layer, self.inputs = tuple(shape), layer, tuple(inputs)

    def __repr__(self):
        source = f', from {self.layer.name}' if self.layer else ''
        return f'<SymbolicTensor shape={format_shape(self.shape)}{source}>'


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


class Layer:
    """Base class of every layer; subclasses override ``build``, ``call`` and
    ``compute_output_shape`` (and ``get_config`` for their own arguments)."""

    expected_ndim = None  # rank of the input, batch axis included, when the layer needs one
    casts_integer_inputs = True  # False where integers are the data: ids (Embedding), models
    input = output = None  # the symbolic tensors of the first graph this layer was called in

    def __init__(self, name=None, trainable=True, input_shape=None, batch_input_shape=None,
                 dtype='float32', input_dim=None, input_length=None):
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = trainable
        self.dtype = np.dtype(dtype)
        self.built = False
        self._weights = []
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
                   constraint=None):
        """Create a weight Tensor named ``<layer>/<name>`` with a Keras initializer; the
        optimizer applies ``constraint`` (see :mod:`minidl.constraints`) after each update.
        Inside :meth:`weight_budget`, a weight beyond the budget is refused before it exists."""
        _charge_budget(self, tuple(shape))
        data = initializers.get(initializer)(tuple(shape), dtype=self.dtype)
        weight = Tensor(data, requires_grad=trainable and self._trainable,
                        name=f'{self.name}/{name}')
        weight.trainable = trainable
        weight.constraint = constraints.get(constraint)
        self._weights.append(weight)
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
        if self.built and self.input_shape is not None:
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
        """Check the input shape and, on the first call, build the weights on ``device``."""
        input_shape = (None,) + tuple(input_shape)[1:]
        self.check_input_shape(input_shape)
        if not self.built:
            self.build(input_shape)
            self.to(device)
            self.built = True
            self.input_shape = input_shape
            self.output_shape = self.compute_output_shape(input_shape)
        return input_shape

    def __call__(self, x, training=False):
        if isinstance(x, SymbolicTensor):
            input_shape = self._ensure_built(x.shape)
            out = SymbolicTensor(self.compute_output_shape(input_shape), self, (x,))
            self._record_node(x, out)
            return out
        return self.call(self._prepare(x), training)

    def _prepare(self, x):
        """``x`` as a Tensor this layer can compute on, after building the layer for it.

        Integer or boolean inputs (uint8 images) are cast to the layer's float dtype, as Keras
        does, unless the layer reads integers as such (``casts_integer_inputs = False``).
        """
        x = x if isinstance(x, Tensor) else Tensor(as_array(x))
        if self.casts_integer_inputs and x.dtype.kind in 'biu':
            x = Tensor(x.data.astype(self.dtype))
        self._ensure_built(x.shape, x.device)
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
        """Multiplications per example in a forward pass (summary's extra column)."""
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
