"""Normalization layers: BatchNormalization (statistics over the batch, per channel) and
LayerNormalization (statistics over each example's features)."""
import minidl.functions as F
from minidl import constraints
from minidl.functions.reduce import normalize_axes
from minidl.layers import arguments
from minidl.layers.base import Layer, format_shape
from minidl.layers.core import _name


class Normalization(Layer):
    """Shared by both: the axes normalised, and the ``gamma`` (if ``scale``) and ``beta`` (if
    ``center``) they create, shaped as those axes of the input - Keras's weights, in its
    order."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer='zeros', gamma_initializer='ones', beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        for a in axes:
            arguments.integer(self, 'axis', a)
        self.axis = axis if isinstance(axis, int) else [int(a) for a in axes]
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None

    has_gamma = property(lambda self: self.scale)
    has_beta = property(lambda self: self.center)

    def axes(self, input_shape):
        """The normalised axes as positive ints, each of known size in ``input_shape``."""
        try:
            axes = normalize_axes(self.axis, len(input_shape))
        except ValueError:
            axes = ()
        if not axes or any(input_shape[a] is None for a in axes):
            raise ValueError(f'{self.name} ({type(self).__name__}): axis={self.axis} must name '
                             f'axes of known size of inputs {format_shape(input_shape)}')
        return axes

    def build(self, input_shape):
        shape = tuple(input_shape[a] for a in self.axes(input_shape))
        if self.has_gamma:
            self.gamma = self.add_weight('gamma', shape, self.gamma_initializer,
                                         constraint=self.gamma_constraint)
        if self.has_beta:
            self.beta = self.add_weight('beta', shape, self.beta_initializer,
                                        constraint=self.beta_constraint)
        return shape

    def get_config(self):
        return {**super().get_config(), 'axis': self.axis, 'epsilon': self.epsilon,
                'center': self.center, 'scale': self.scale,
                'beta_initializer': _name(self.beta_initializer),
                'gamma_initializer': _name(self.gamma_initializer),
                'beta_constraint': constraints.serialize(self.beta_constraint),
                'gamma_constraint': constraints.serialize(self.gamma_constraint)}


class BatchNormalization(Normalization):
    """Normalise each channel (``axis``, the last by default) with the batch's statistics at
    training and with moving averages of them at inference. gamma/beta train; moving mean and
    variance do not (Keras counts them as non-trainable params).

    ``synchronized`` (Keras 3's argument): in a distributed ``fit``, the statistics, their
    gradients and so the moving averages are the global batch's, every rank's piece together
    (three small all-reduces per layer and step); by default each rank normalises its own
    piece, as Horovod does. Outside a distributed ``fit`` it changes nothing."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 moving_mean_initializer='zeros', moving_variance_initializer='ones',
                 synchronized=False, **kwargs):
        super().__init__(axis, epsilon, center, scale, **kwargs)
        if not isinstance(self.axis, int):
            if len(self.axis) != 1:
                raise ValueError(f'{self.name} (BatchNormalization): normalises per index of '
                                 f'one axis, got axis={self.axis}')
            self.axis = self.axis[0]
        self.momentum, self.synchronized = float(momentum), bool(synchronized)
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer

    def build(self, input_shape):
        shape = super().build(input_shape)
        self.moving_mean = self.add_weight('moving_mean', shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight('moving_variance', shape,
                                               self.moving_variance_initializer,
                                               trainable=False)

    def call(self, x, training=False):
        return F.batch_norm(x, self.gamma, self.beta, self.moving_mean.data,
                            self.moving_variance.data, training and self.trainable,
                            self.momentum, self.epsilon, self.axis, self.synchronized)

    def get_config(self):
        """``synchronized`` only when set, as for ``rms_scaling``: tf-keras before 2.12 does
        not know the argument."""
        config = {**super().get_config(), 'momentum': self.momentum,
                  'moving_mean_initializer': _name(self.moving_mean_initializer),
                  'moving_variance_initializer': _name(self.moving_variance_initializer)}
        return {**config, 'synchronized': True} if self.synchronized else config


class LayerNormalization(Normalization):
    """Normalise each example over ``axis`` (an int or a list: the features), then
    ``gamma * xhat + beta``; the same at training and inference. ``rms_scaling`` is Keras 3's
    (deprecated there, as it divides by the standard deviation, not the root mean square):
    ``x / sqrt(var + epsilon) * gamma``, with no beta."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 **kwargs):
        super().__init__(axis, epsilon, center, scale, **kwargs)
        self.rms_scaling = bool(rms_scaling)

    has_gamma = property(lambda self: self.scale or self.rms_scaling)
    has_beta = property(lambda self: self.center and not self.rms_scaling)

    def call(self, x, training=False):
        return F.layer_norm(x, self.gamma, self.beta, self.axis, self.epsilon,
                            self.rms_scaling)

    def get_config(self):
        """``rms_scaling`` only when set: tf-keras does not know the argument."""
        config = super().get_config()
        return {**config, 'rms_scaling': True} if self.rms_scaling else config
