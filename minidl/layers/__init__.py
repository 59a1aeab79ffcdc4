"""Keras-style layers: ``from minidl import layers``; ``layers.Conv2D(32, (3, 3), ...)``."""
from minidl.layers.base import Layer, SymbolicTensor
from minidl.layers.convolutional import Conv1D, Conv2D, ZeroPadding2D
from minidl.layers.core import (Activation, Dense, Dropout, Flatten, Input, InputLayer,
                                Reshape)
from minidl.layers.embedding import Embedding
from minidl.layers.normalization import BatchNormalization
from minidl.layers.pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                                   GlobalAveragePooling2D, GlobalMaxPooling1D,
                                   GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)

MaxPool2D, MaxPool1D = MaxPooling2D, MaxPooling1D
AvgPool2D, AvgPool1D = AveragePooling2D, AveragePooling1D
