"""Layers that only move values: Flatten, Reshape, ZeroPadding2D (Keras 3's
``layers/reshaping``)."""
import numpy as np

import minidl.functions as F
from minidl.layers import arguments
from minidl.layers.base import Layer, format_shape


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def call(self, x, training=False):
        return F.flatten(x)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else int(np.prod(rest)))


class Reshape(Layer):
    """Reshape each example to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = arguments.target_shape(self, target_shape)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape[1:]))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if (-1 in self.target_shape and size % known) or \
                (-1 not in self.target_shape and size != known):
            raise ValueError(f'{self.name} (Reshape): cannot reshape {format_shape(input_shape)} '
                             f'into (None, {str(self.target_shape)[1:]}')
        return (input_shape[0],) + tuple(size // known if d == -1 else d
                                         for d in self.target_shape)

    def call(self, x, training=False):
        return F.reshape(x, (x.shape[0],) + self.target_shape)

    def get_config(self):
        return {**super().get_config(), 'target_shape': list(self.target_shape)}


class ZeroPadding2D(Layer):
    """Pad (N, H, W, C) with zeros: ``padding`` = int, (rows, cols) or ((top, bottom),
    (left, right))."""

    expected_ndim = 4

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        nested = isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) for p in padding)
        pairs = padding if nested else [(p, p) for p in arguments.int_tuple(
            self, 'padding', padding, 2, minimum=0)]
        self.padding = tuple(arguments.int_tuple(self, 'padding', p, 2, minimum=0)
                             for p in pairs)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        (top, bottom), (left, right) = self.padding
        return (n, h + top + bottom if h else None, w + left + right if w else None, c)

    def call(self, x, training=False):
        return F.pad(x, ((0, 0),) + self.padding + ((0, 0),))

    def get_config(self):
        return {**super().get_config(), 'padding': [list(p) for p in self.padding]}
