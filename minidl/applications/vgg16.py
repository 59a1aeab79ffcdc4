"""VGG16 (Simonyan & Zisserman, 2014): five blocks of 3x3 'same' convolutions, each block
closed by a 2x2 max pool; with ``include_top`` the 4096-4096-classes classifier.

Layer names follow Keras (``block1_conv1`` ... ``block5_pool``, ``fc1``, ``fc2``,
``predictions``), and the weights are laid out as Keras's (kernels (kh, kw, cin, cout),
channels-last flattening before ``fc1``), so Keras's pretrained ImageNet files load as they
are. Nothing is downloaded: ``weights='imagenet'`` looks for Keras's file where Keras caches it
(see :func:`minidl.applications.imagenet.keras_file`), and a path to the file works too.
``preprocess_input`` and ``decode_predictions`` are importable from here, as from Keras's
``applications.vgg16``.
"""
from minidl import layers
from minidl.applications.imagenet import (decode_predictions, keras_file,  # noqa: F401
                                          preprocess_input)
from minidl.io.torch_checkpoint import is_checkpoint
from minidl.io.torch_weights import load_torch_weights
from minidl.models import Model

BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
WEIGHT_FILES = {True: 'vgg16_weights_tf_dim_ordering_tf_kernels.h5',
                False: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'}


def VGG16(include_top=True, weights=None, input_shape=None, classes=1000, pooling=None):
    """The VGG16 graph as a functional Model named 'vgg16'.

    ``weights``: None (random initialisation), 'imagenet' (Keras's pretrained file, see the
    module docstring) or the path of a weight file: Keras 2's or 3's (``.h5``,
    ``.weights.h5``, ``.keras``) or a torchvision state_dict saved by ``torch.save``. ``input_shape`` defaults to
    (224, 224, 3) with the top (which must then be so for ImageNet weights, with 1000 classes)
    and to ``(None, None, 3)`` without it: the convolutions then take images of any size.
    ``pooling`` is None, 'avg' or 'max' when ``include_top`` is False.
    """
    shape_ok = input_shape in (None, (224, 224, 3))
    if weights == 'imagenet' and include_top and (classes != 1000 or not shape_ok):
        raise ValueError('VGG16: the ImageNet classifier needs input_shape=(224, 224, 3) and '
                         f'classes=1000, got {input_shape} and {classes}; use '
                         'include_top=False to put your own classifier on the convolutions')
    inputs = layers.Input(shape=input_shape or ((224, 224, 3) if include_top else
                                                (None, None, 3)))
    x = conv_blocks(inputs)
    if include_top:
        x = layers.Flatten(name='flatten')(x)
        x = layers.Dense(4096, activation='relu', name='fc1')(x)
        x = layers.Dense(4096, activation='relu', name='fc2')(x)
        x = layers.Dense(classes, activation='softmax', name='predictions')(x)
    elif pooling == 'avg':
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == 'max':
        x = layers.GlobalMaxPooling2D()(x)
    model = Model(inputs, x, name='vgg16')
    if weights == 'imagenet':
        weights = keras_file(WEIGHT_FILES[bool(include_top)], "VGG16(weights='imagenet')")
    if weights is not None:
        load_weight_file(model, weights, strict=include_top)  # no top: the classifier unused
    return model


def conv_blocks(x, blocks=BLOCKS):
    """VGG's convolution blocks on the symbolic tensor ``x``: for each ``(filters, convs)``
    of ``blocks``, ``convs`` 3x3 'same' ReLU convolutions then a 2x2 max pool that halves the
    height and width, named as Keras names them (``block1_conv1`` ... ``block1_pool``).
    ``BLOCKS`` is VGG16's; fewer filters or blocks give a small network of the same pattern."""
    for block, (filters, convs) in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation='relu', padding='same',
                              name=f'block{block}_conv{i}')(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f'block{block}_pool')(x)
    return x


def load_weight_file(model, path, strict=True):
    """Load the weight file at ``path`` into ``model``, as ``VGG16(weights=path)`` does: a
    torchvision state_dict (``torch.save``; ``strict=False`` lets entries the model lacks
    go unused) or a Keras weight file, whose layers match by name."""
    if is_checkpoint(path):
        load_torch_weights(model, path, strict=strict)
    else:
        model.load_weights(path)
