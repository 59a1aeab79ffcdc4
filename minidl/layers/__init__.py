"""Keras-style layers: ``from minidl import layers``; ``layers.Conv2D(32, (3, 3), ...)``.

One module per family, as Keras 3 groups them: activations, convolutional, core, embedding,
merging, normalization, pooling, preprocessing, regularization, reshaping.

Keras's other names for the same classes (``Convolution2D``, ``MaxPool2D``, ...) are aliases
here, not classes of their own."""
from minidl.layers.activations import Activation, ReLU
from minidl.layers.base import Layer, SymbolicTensor
from minidl.layers.convolutional import Conv1D, Conv2D
from minidl.layers.core import Dense, Input, InputLayer, Lambda
from minidl.layers.embedding import Embedding
from minidl.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                   Subtract, add, average, concatenate, dot, maximum, minimum,
                                   multiply, subtract)
from minidl.layers.normalization import BatchNormalization
from minidl.layers.pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                                   GlobalAveragePooling2D, GlobalMaxPooling1D,
                                   GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from minidl.layers.preprocessing import (CenterCrop, RandomContrast, RandomFlip,
                                         RandomRotation, RandomTranslation, RandomZoom,
                                         Rescaling, Resizing)
from minidl.layers.regularization import Dropout
from minidl.layers.reshaping import Flatten, Reshape, ZeroPadding2D

Convolution1D, Convolution2D = Conv1D, Conv2D
MaxPool1D, MaxPool2D = MaxPooling1D, MaxPooling2D
AvgPool1D, AvgPool2D = AveragePooling1D, AveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
