"""Embedding: integer ids (N, steps) -> vectors (N, steps, output_dim).

``mask_zero=True`` is Keras's convention that id 0 is padding: Keras then carries a mask
(``ids != 0``) to the layers after it. minidl has no masks. For a convnet course that is almost
always the same computation: Conv1D, pooling, Flatten and GlobalMaxPooling1D drop or ignore the
mask in Keras too. The one layer whose numbers Keras changes, GlobalAveragePooling1D (the mean
over the non-padding steps), refuses an input that carries such a mask, found by
:func:`mask_source`; :meth:`Embedding.compute_mask` gives the mask itself.
"""
import minidl.functions as F
from minidl import constraints
from minidl.layers import arguments
from minidl.autograd import as_array
from minidl.layers.activations import Activation, ReLU
from minidl.layers.base import Layer
from minidl.layers.core import Dense
from minidl.layers.normalization import BatchNormalization, LayerNormalization
from minidl.layers.regularization import (Dropout, GaussianDropout, GaussianNoise,
                                          SpatialDropout1D)


class Embedding(Layer):
    """A trainable table (input_dim, output_dim) looked up by id; Keras's 'uniform' init."""

    casts_integer_inputs = False

    def __init__(self, input_dim, output_dim, embeddings_initializer='uniform',
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        if input_length is not None and 'input_shape' not in kwargs:
            kwargs['input_shape'] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim = arguments.count(self, 'input_dim', input_dim)
        self.output_dim = arguments.count(self, 'output_dim', output_dim)
        self.input_length, self.mask_zero = input_length, bool(mask_zero)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_constraint = constraints.get(embeddings_constraint)

    def build(self, input_shape):
        self.embeddings = self.add_weight('embeddings', (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          constraint=self.embeddings_constraint)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def call(self, x, training=False):
        return F.embedding(x, self.embeddings)

    def compute_mask(self, ids):
        """Keras's mask of ``ids``: True where the id is not 0 (padding), or None without
        ``mask_zero``."""
        return (as_array(ids) != 0) if self.mask_zero else None

    def get_config(self):
        config = {**super().get_config(), 'input_dim': self.input_dim,
                  'output_dim': self.output_dim, 'input_length': self.input_length,
                  'mask_zero': self.mask_zero,
                  'embeddings_constraint': constraints.serialize(self.embeddings_constraint)}
        return config


# Layers after which Keras's mask is unchanged (``supports_masking``, one input, steps kept).
_PASS_MASK = (Activation, BatchNormalization, Dense, Dropout, GaussianDropout, GaussianNoise,
              LayerNormalization, ReLU, SpatialDropout1D)


def mask_source(x):
    """The ``Embedding(mask_zero=True)`` whose mask Keras would carry to the symbolic tensor
    ``x`` (through layers that pass it on unchanged), or None."""
    while x.node is not None and len(x.inputs) == 1:
        layer = x.layer
        if isinstance(layer, Embedding):
            return layer if layer.mask_zero else None
        if not isinstance(layer, _PASS_MASK):
            return None
        x = x.inputs[0]
    return None
