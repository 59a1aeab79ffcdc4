"""Activation layers (Keras 3's ``layers/activations``): Activation by name, and ReLU with
its options."""
import minidl.functions as F
from minidl.functions.activation import check_activation
from minidl.layers.base import Layer


class Activation(Layer):
    """Apply an activation by name: 'relu', 'sigmoid', 'tanh', 'softmax' or 'linear'."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = check_activation(activation)

    def call(self, x, training=False):
        return F.bias_act(x, None, self.activation)

    def call_logits(self, x, training=False):
        return x

    def get_config(self):
        return {**super().get_config(), 'activation': self.activation}


class ReLU(Layer):
    """Keras's ReLU: ``x`` from ``threshold`` up to ``max_value`` (capped there),
    ``negative_slope * (x - threshold)`` below ``threshold``. ``ReLU(6.)`` is MobileNet's
    ReLU6."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (('max_value', max_value), ('negative_slope', negative_slope)):
            if value is not None and not value >= 0:
                raise ValueError(f'{self.name} (ReLU): {name} must be >= 0, got {value!r}')
        self.max_value, self.negative_slope, self.threshold = \
            max_value, float(negative_slope), float(threshold)

    def call(self, x, training=False):
        if self.negative_slope == 0 and self.threshold == 0:
            y = F.relu(x)
        else:
            above = (x.data >= self.threshold).astype(x.dtype)
            y = x * above + (x - self.threshold) * ((1 - above) * self.negative_slope)
        return y if self.max_value is None else F.minimum(y, float(self.max_value))

    def get_config(self):
        return {**super().get_config(), 'max_value': self.max_value,
                'negative_slope': self.negative_slope, 'threshold': self.threshold}
