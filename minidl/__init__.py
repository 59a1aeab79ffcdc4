"""minidl: a from-scratch deep-learning engine on NumPy and CuPy, with a Keras-style API.

``import minidl as keras`` gives the names Keras code reaches through its top-level module:
``keras.Input``, ``keras.Model``, ``keras.Sequential`` and the submodules ``keras.layers``,
``keras.models``, ``keras.optimizers``, ``keras.callbacks``, ``keras.backend``, ``keras.utils``
and the rest, each loaded here so that no further import is needed."""
from minidl import random
from minidl.autograd import Function, Tensor, is_grad_enabled, no_grad, tensor
from minidl.backends import gpu_available
from minidl.gradcheck import GradcheckError, gradcheck
from minidl import (applications, backend, callbacks, constraints, datasets, initializers,  # noqa: E402,I001
                    layers, losses, metrics, models, optimizers, preprocessing, utils)
from minidl.layers import Input
from minidl.models import Model, Sequential

__version__ = '0.1.0'
