"""Activation layers (Keras 3's ``layers/activations``): Activation by name or function, ReLU
with its options, LeakyReLU, PReLU (a learned slope), ELU and Softmax."""
import minidl.functions as F
from minidl import constraints, regularizers
from minidl.functions.activation import check_activation
from minidl.layers.base import Layer, format_shape


class Activation(Layer):
    """Apply an activation: a name ('relu', 'gelu', 'softmax', ... any of
    :data:`minidl.functions.activation.ACTIVATIONS`) or a function of a tensor."""

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


class LeakyReLU(Layer):
    """``x`` above 0, ``negative_slope * x`` below. Keras 3 calls the slope ``negative_slope``,
    tf-keras ``alpha``; both are taken (the default, 0.3, is both's)."""

    keras2_names = {'negative_slope': 'alpha'}  # tf-keras's spelling of the config

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        slope = negative_slope if alpha is None else alpha
        if not slope >= 0:
            raise ValueError(f'{self.name} (LeakyReLU): negative_slope must be >= 0, got '
                             f'{slope!r}')
        self.negative_slope = float(slope)

    def call(self, x, training=False):
        return F.leaky_relu(x, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), 'negative_slope': self.negative_slope}


class PReLU(Layer):
    """``relu(x) - alpha * relu(-x)`` with a learned slope ``alpha`` of the input's shape
    (batch axis excluded), of size 1 along ``shared_axes`` (counted from 1, the first axis
    after the batch): ``shared_axes=[1, 2]`` on images (N, H, W, C) learns one slope per
    channel."""

    def __init__(self, alpha_initializer='zeros', alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = alpha_initializer
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        axes = [shared_axes] if isinstance(shared_axes, int) else shared_axes
        self.shared_axes = None if axes is None else [int(axis) for axis in axes]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis <= len(shape):
                raise ValueError(f'{self.name} (PReLU): shared_axes {self.shared_axes} must '
                                 f'be axes 1 to {len(shape)} of inputs '
                                 f'{format_shape(input_shape)}')
            shape[axis - 1] = 1
        if None in shape:
            raise ValueError(f'{self.name} (PReLU) needs every axis not in shared_axes known, '
                             f'got inputs {format_shape(input_shape)}')
        self.alpha = self.add_weight('alpha', tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)

    def call(self, x, training=False):
        return F.relu(x) - self.alpha * F.relu(-x)

    def get_config(self):
        return {**super().get_config(), 'alpha_initializer': self.alpha_initializer,
                'alpha_regularizer': regularizers.serialize(self.alpha_regularizer),
                'alpha_constraint': constraints.serialize(self.alpha_constraint),
                'shared_axes': self.shared_axes}


class ELU(Layer):
    """``x`` above 0, ``alpha * (e^x - 1)`` below."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, x, training=False):
        return F.elu(x, self.alpha)

    def get_config(self):
        return {**super().get_config(), 'alpha': self.alpha}


class Softmax(Layer):
    """Softmax along ``axis`` (an axis or a list of axes, normalised together). Along the
    last axis it fuses into a following cross-entropy, as ``Activation('softmax')`` does."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.activation = 'softmax' if self.axis == -1 else 'linear'

    def call(self, x, training=False):
        return F.softmax(x, self.axis)

    def call_logits(self, x, training=False):
        return x

    def get_config(self):
        return {**super().get_config(),
                'axis': list(self.axis) if isinstance(self.axis, tuple) else self.axis}
