"""minidl: a from-scratch deep-learning engine on NumPy and CuPy, with a Keras-style API."""
from minidl import random
from minidl.autograd import Function, Tensor, is_grad_enabled, no_grad, tensor
from minidl.backends import gpu_available
from minidl.gradcheck import GradcheckError, gradcheck

__version__ = '0.1.0'
