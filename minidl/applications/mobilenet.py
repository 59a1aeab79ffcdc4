"""MobileNet (Howard et al., 2017): a 3x3 convolution, then 13 depthwise-separable blocks
(a 3x3 DepthwiseConv2D and a 1x1 Conv2D, each with batch norm and ReLU6), halving the size
five times; with ``include_top`` a global average pool and a 1x1 convolution as classifier.

Layer names and weight layouts are Keras's (``conv1``, ``conv1_bn``, ``conv1_relu``,
``conv_dw_1``, ..., ``conv_pw_13_relu``; top ``global_average_pooling2d``, ``reshape_1``,
``dropout``, ``conv_preds``, ``reshape_2``, ``predictions``), so Keras's h5 files load as they
are. ``weights='imagenet'`` looks for Keras's file (``mobilenet_1_0_224_tf.h5``,
``mobilenet_1_0_224_tf_no_top.h5``, ... per alpha and size) where Keras caches it, as VGG16
does (:func:`minidl.applications.imagenet.keras_file`); nothing is downloaded.
"""
import warnings

import numpy as np

from minidl import layers
from minidl.applications.imagenet import decode_predictions, keras_file  # noqa: F401
from minidl.models import Model

# (pointwise filters, stride of the depthwise step) of blocks 1 to 13
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
          (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
ALPHAS = {1.0: '1_0', 0.75: '7_5', 0.5: '5_0', 0.25: '2_5'}  # as Keras's file names spell them
SIZES = (128, 160, 192, 224)  # the input sizes Keras has ImageNet weights for


def preprocess_input(x):
    """RGB images with values 0..255 -> values in [-1, 1] (``x / 127.5 - 1``), what MobileNet
    was trained on. Returns a new float32 array."""
    return np.asarray(x, np.float32) / 127.5 - 1.0


def _bn_relu(x, name):
    x = layers.BatchNormalization(name=f'{name}_bn')(x)
    return layers.ReLU(6.0, name=f'{name}_relu')(x)


def _separable_block(x, filters, stride, depth_multiplier, block):
    """Depthwise 3x3 (stride 2 after padding one row and column at the end), then 1x1."""
    if stride == 2:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f'conv_pad_{block}')(x)
    x = layers.DepthwiseConv2D((3, 3), strides=stride, padding='same' if stride == 1 else
                               'valid', depth_multiplier=depth_multiplier, use_bias=False,
                               name=f'conv_dw_{block}')(x)
    x = _bn_relu(x, f'conv_dw_{block}')
    x = layers.Conv2D(filters, (1, 1), padding='same', use_bias=False,
                      name=f'conv_pw_{block}')(x)
    return _bn_relu(x, f'conv_pw_{block}')


def _check(weights, alpha, depth_multiplier, include_top, classes):
    if weights != 'imagenet':
        return
    if include_top and classes != 1000:
        raise ValueError(f"MobileNet: the ImageNet classifier has 1000 classes, got "
                         f"classes={classes}; use include_top=False for your own classifier")
    if depth_multiplier != 1 or alpha not in ALPHAS:
        raise ValueError(f'MobileNet: ImageNet weights exist for depth_multiplier=1 and alpha '
                         f'in {sorted(ALPHAS)}, got depth_multiplier={depth_multiplier}, '
                         f'alpha={alpha}')


def MobileNet(input_shape=None, alpha=1.0, depth_multiplier=1, dropout=1e-3, include_top=True,
              weights='imagenet', pooling=None, classes=1000, classifier_activation='softmax'):
    """The MobileNet graph as a functional Model named ``mobilenet_{alpha:.2f}_{rows}``.

    ``alpha`` scales every layer's filters (``int(filters * alpha)``); ``depth_multiplier``
    the depthwise steps' outputs. ``input_shape`` defaults to (224, 224, 3) with the top and
    to (None, None, 3) without it; sizes are at least 32. ``weights``: 'imagenet' (Keras's
    file, see the module docstring; square inputs of 128, 160, 192 or 224 have their own,
    other sizes load the 224 one, as in Keras), None (random initialisation) or the path of
    a weight file. ``pooling`` is None, 'avg' or 'max' when ``include_top`` is False.
    """
    _check(weights, alpha, depth_multiplier, include_top, classes)
    shape = tuple(input_shape or ((224, 224, 3) if include_top else (None, None, 3)))
    if len(shape) != 3 or any(d is not None and d < 32 for d in shape[:2]):
        raise ValueError(f'MobileNet: input_shape must be (rows, cols, channels) with rows and '
                         f'cols at least 32, got {input_shape}')
    rows = shape[0]
    if weights == 'imagenet' and (rows != shape[1] or rows not in SIZES):
        warnings.warn(f'MobileNet: no ImageNet weights for input_shape {shape}; the weights '
                      f'for (224, 224) are loaded', stacklevel=2)
        rows = 224
    inputs = layers.Input(shape=shape)
    x = layers.Conv2D(int(32 * alpha), (3, 3), strides=2, padding='same', use_bias=False,
                      name='conv1')(inputs)
    x = _bn_relu(x, 'conv1')
    for block, (filters, stride) in enumerate(BLOCKS, start=1):
        x = _separable_block(x, int(filters * alpha), stride, depth_multiplier, block)
    if include_top:
        x = layers.GlobalAveragePooling2D(name='global_average_pooling2d')(x)
        x = layers.Reshape((1, 1, x.shape[-1]), name='reshape_1')(x)
        x = layers.Dropout(dropout, name='dropout')(x)
        x = layers.Conv2D(classes, (1, 1), padding='same', name='conv_preds')(x)
        x = layers.Reshape((classes,), name='reshape_2')(x)
        x = layers.Activation(classifier_activation, name='predictions')(x)
    elif pooling == 'avg':
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == 'max':
        x = layers.GlobalMaxPooling2D()(x)
    model = Model(inputs, x, name=f'mobilenet_{alpha:0.2f}_{rows}')
    if weights == 'imagenet':
        suffix = '' if include_top else '_no_top'
        weights = keras_file(f'mobilenet_{ALPHAS[alpha]}_{rows}_tf{suffix}.h5',
                             "MobileNet(weights='imagenet')")
    if weights is not None:
        model.load_weights(weights)
    return model
