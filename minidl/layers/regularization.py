"""Layers that act only in training, to regularize: Dropout (Keras 3's
``layers/regularization``)."""
import minidl.functions as F
from minidl.layers import arguments
from minidl.layers.base import Layer


class Dropout(Layer):
    """Inverted dropout of ``rate`` at training; the identity at inference."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = arguments.fraction(self, 'rate', rate)

    def call(self, x, training=False):
        return F.dropout(x, self.rate, training)

    def get_config(self):
        return {**super().get_config(), 'rate': self.rate}
