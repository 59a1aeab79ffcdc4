"""Differentiable operations, one module per family; ``import minidl.functions as F``.

Each module keeps an op's checks, forward and backward together in one Function class, with
the lowercase function users call right below it.
"""
from minidl.functions.activation import (bias_act, elu, erf, exponential, gelu, hard_sigmoid,
                                         hard_silu, leaky_relu, linear, log_sigmoid,
                                         log_softmax, mish, relu, relu6, selu, sigmoid, silu,
                                         softmax, softplus, softsign, tanh)
from minidl.functions.conv import (conv1d, conv1d_transpose, conv2d, conv2d_transpose,
                                   depthwise_conv2d, separable_conv1d, separable_conv2d)
from minidl.functions.dropout import dropout, gaussian_dropout, gaussian_noise
from minidl.functions.embedding import embedding
from minidl.functions.loss import (mean_squared_error, sigmoid_binary_cross_entropy,
                                   softmax_cross_entropy)
from minidl.functions.math import (abs, add, clip, div, exp, log, matmul, maximum, minimum,
                                   mul, neg, pow, sqrt, sub)
from minidl.functions.normalization import batch_norm, layer_norm, standardize
from minidl.functions.pooling import (avg_pool1d, avg_pool2d, global_avg_pool,
                                      global_avg_pool1d, global_avg_pool2d, global_max_pool,
                                      global_max_pool1d, global_max_pool2d, max_pool1d,
                                      max_pool2d)
from minidl.functions.reduce import max, mean, min, sum
from minidl.functions.shape import (concatenate, expand_dims, flatten, getitem, pad, repeat,
                                    reshape, resize_linear, squeeze, stack, transpose)
