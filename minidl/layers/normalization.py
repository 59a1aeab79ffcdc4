"""BatchNormalization over the channel axis, with moving averages for inference."""
import minidl.functions as F
from minidl import constraints
from minidl.layers.base import Layer


class BatchNormalization(Layer):
    """Normalise each channel; gamma/beta train, moving mean/variance do not (Keras counts
    them as non-trainable params)."""

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = momentum, epsilon
        self.center, self.scale = center, scale
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def build(self, input_shape):
        shape = (input_shape[-1],)
        self.gamma = self.add_weight('gamma', shape, 'ones', trainable=self.scale,
                                     constraint=self.gamma_constraint)
        self.beta = self.add_weight('beta', shape, 'zeros', trainable=self.center,
                                    constraint=self.beta_constraint)
        self.moving_mean = self.add_weight('moving_mean', shape, 'zeros', trainable=False)
        self.moving_variance = self.add_weight('moving_variance', shape, 'ones',
                                               trainable=False)

    def call(self, x, training=False):
        return F.batch_norm(x, self.gamma, self.beta, self.moving_mean.data,
                            self.moving_variance.data, training and self.trainable,
                            self.momentum, self.epsilon)

    def get_config(self):
        return {**super().get_config(), 'momentum': self.momentum, 'epsilon': self.epsilon,
                'center': self.center, 'scale': self.scale,
                'beta_constraint': constraints.serialize(self.beta_constraint),
                'gamma_constraint': constraints.serialize(self.gamma_constraint)}
