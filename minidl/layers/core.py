"""Dense, the Input placeholder and Lambda: the core layers (Keras 3's ``layers/core``)."""
import numpy as np

import minidl.functions as F
from minidl import constraints, regularizers
from minidl.functions.activation import check_activation
from minidl.layers import arguments
from minidl.layers.base import (Layer, Node, Operation, SymbolicTensor, format_shape,
                                unique_name)


class Activated(Layer):
    """A layer computing ``activation(linear(x) + bias)`` with the last two steps fused.

    Subclasses give ``linear(x)``; ``call_logits`` stops before the activation so that a final
    softmax or sigmoid can be fused into the loss. ``kernel_regularizer`` and
    ``bias_regularizer`` penalise the weights, ``activity_regularizer`` the output (divided by
    the batch size, as Keras does); the penalties are in :attr:`losses`.
    """

    def __init__(self, activation=None, use_bias=True, kernel_initializer='glorot_uniform',
                 bias_initializer='zeros', kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.activation = check_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.bias = None

    def add_kernel_and_bias(self, kernel_shape):
        self.kernel = self.add_weight('kernel', kernel_shape, self.kernel_initializer,
                                      constraint=self.kernel_constraint,
                                      regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight('bias', kernel_shape[-1:], self.bias_initializer,
                                        constraint=self.bias_constraint,
                                        regularizer=self.bias_regularizer)

    def call(self, x, training=False):
        return self._penalised(F.bias_act(self.linear(x), self.bias, self.activation))

    def call_logits(self, x, training=False):
        logits = F.bias_act(self.linear(x), self.bias, 'linear')
        if self.activity_regularizer is not None:
            self._penalised(F.bias_act(logits, None, self.activation))
        return logits

    def _penalised(self, y):
        """``y``, the output, after keeping its activity penalty (if any) for ``losses``."""
        if self.activity_regularizer is not None:
            self.activity_losses = [self.activity_regularizer(y) / max(len(y), 1)]
        return y

    def get_config(self):
        return {**super().get_config(), 'activation': self.activation,
                'use_bias': self.use_bias, 'kernel_initializer': _name(self.kernel_initializer),
                'bias_initializer': _name(self.bias_initializer),
                'kernel_regularizer': regularizers.serialize(self.kernel_regularizer),
                'bias_regularizer': regularizers.serialize(self.bias_regularizer),
                'activity_regularizer': regularizers.serialize(self.activity_regularizer),
                'kernel_constraint': constraints.serialize(self.kernel_constraint),
                'bias_constraint': constraints.serialize(self.bias_constraint)}


def _name(initializer):
    return initializer if isinstance(initializer, str) else type(initializer).__name__


class Dense(Activated):
    """``activation(x @ kernel + bias)`` with kernel (in, units) on inputs (N, ..., in)."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(activation, **kwargs)
        self.units = arguments.count(self, 'units', units)

    def check_input_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f'{self.name} (Dense) expects inputs (batch, ..., features), got '
                             f'shape {format_shape(input_shape)}')
        super().check_input_shape(input_shape)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f'{self.name} (Dense) needs a known last dimension, got '
                             f'{format_shape(input_shape)}')
        self.add_kernel_and_bias((input_shape[-1], self.units))

    def linear(self, x):
        return x @ self.kernel

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def multiplications(self):
        sizes = self.input_shape[1:]
        return None if None in sizes else int(np.prod(sizes)) * self.units

    def get_config(self):
        return {**super().get_config(), 'units': self.units}


class InputLayer(Layer):
    """The entry of a functional graph: holds the input shape (batch axis excluded)."""

    casts_integer_inputs = False  # the layers after it decide

    def __init__(self, input_shape=None, batch_input_shape=None, name=None, **kwargs):
        super().__init__(input_shape=input_shape, batch_input_shape=batch_input_shape,
                         name=name or unique_name('input', zero_based=False), **kwargs)
        if self.input_shape_arg is None:
            raise ValueError(f'{self.name} (InputLayer) needs input_shape or batch_input_shape')
        self.built = True
        self.input_shape = self.output_shape = self.input_shape_arg
        self.output = SymbolicTensor(self.input_shape_arg, Node(self), dtype=self.dtype)

    def call(self, x, training=False):
        return x


def Input(shape=None, batch_size=None, name=None, dtype='float32', batch_shape=None):
    """A symbolic input of ``shape`` (without the batch axis), as ``keras.Input``."""
    batch_input_shape = tuple(batch_shape) if batch_shape else (batch_size,) + tuple(shape)
    return InputLayer(batch_input_shape=batch_input_shape, name=name, dtype=dtype).output


class Lambda(Operation):
    """Any function of tensors as a layer: ``Lambda(lambda t: t * 2)(x)``. It is called with
    what the layer is called with (a tensor, or a list of them); ``arguments`` are passed as
    keywords. Without ``output_shape`` (a shape without the batch axis, or a function of the
    input shape) the shape is found by calling the function on small stand-in arrays.

    The function must use differentiable operations (``minidl.functions``, tensor operators,
    ``minidl.backend``) for gradients to flow through it. A Lambda cannot be saved to a config
    file: its code is not data."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        if not callable(function):
            raise TypeError(f'Lambda expects a function, got {function!r}')
        if mask is not None:
            raise ValueError('Lambda: mask is not supported (minidl has no masking)')
        self.arguments = dict(arguments or {})
        super().__init__(lambda x: function(x, **self.arguments), output_shape, **kwargs)
        self.wrapped = function
