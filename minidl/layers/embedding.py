"""Embedding: integer ids (N, steps) -> vectors (N, steps, output_dim)."""
import minidl.functions as F
from minidl import constraints
from minidl.layers import arguments
from minidl.layers.base import Layer


class Embedding(Layer):
    """A trainable table (input_dim, output_dim) looked up by id; Keras's 'uniform' init."""

    casts_integer_inputs = False

    def __init__(self, input_dim, output_dim, embeddings_initializer='uniform',
                 embeddings_constraint=None, input_length=None, **kwargs):
        if input_length is not None and 'input_shape' not in kwargs:
            kwargs['input_shape'] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim = arguments.count(self, 'input_dim', input_dim)
        self.output_dim = arguments.count(self, 'output_dim', output_dim)
        self.input_length = input_length
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

    def get_config(self):
        config = {**super().get_config(), 'input_dim': self.input_dim,
                  'output_dim': self.output_dim, 'input_length': self.input_length,
                  'embeddings_constraint': constraints.serialize(self.embeddings_constraint)}
        return config
