"""Keras-style layers: ``from minidl import layers``; ``layers.Conv2D(32, (3, 3), ...)``.

One module per family, as Keras 3 groups them: activations, convolutional, core, embedding,
merging, normalization, pooling, preprocessing, regularization, reshaping.

Keras's other names for the same classes (``Convolution2D``, ``MaxPool2D``, ...) are aliases
here, not classes of their own."""
from minidl.layers.activations import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax
from minidl.layers.base import Layer, SymbolicTensor
from minidl.layers.convolutional import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose,
                                         DepthwiseConv2D, SeparableConv1D, SeparableConv2D)
from minidl.layers.core import Dense, Input, InputLayer, Lambda
from minidl.layers.embedding import Embedding
from minidl.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                   Subtract, add, average, concatenate, dot, maximum, minimum,
                                   multiply, subtract)
from minidl.layers.normalization import BatchNormalization, LayerNormalization
from minidl.layers.pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                                   GlobalAveragePooling2D, GlobalMaxPooling1D,
                                   GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from minidl.layers.preprocessing import (CenterCrop, RandomContrast, RandomFlip,
                                         RandomRotation, RandomTranslation, RandomZoom,
                                         Rescaling, Resizing)
from minidl.layers.regularization import (Dropout, GaussianDropout, GaussianNoise,
                                          SpatialDropout1D, SpatialDropout2D)
from minidl.layers.reshaping import (Cropping1D, Cropping2D, Flatten, Permute, RepeatVector,
                                     Reshape, UpSampling1D, UpSampling2D, ZeroPadding1D,
                                     ZeroPadding2D)

Convolution1D, Convolution2D = Conv1D, Conv2D
Convolution1DTranspose, Convolution2DTranspose = Conv1DTranspose, Conv2DTranspose
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
MaxPool1D, MaxPool2D = MaxPooling1D, MaxPooling2D
AvgPool1D, AvgPool2D = AveragePooling1D, AveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
