"""VGG16 (Simonyan & Zisserman, 2014): five blocks of 3x3 'same' convolutions, each block
closed by a 2x2 max pool; with ``include_top`` the 4096-4096-classes classifier.

Layer names follow Keras (``block1_conv1`` ... ``block5_pool``, ``fc1``, ``fc2``,
``predictions``) so that pretrained Keras weights can be matched to them by name.
"""
from minidl import layers
from minidl.models import Model

BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def VGG16(include_top=True, weights=None, input_shape=None, classes=1000, pooling=None):
    """The VGG16 graph as a functional Model named 'vgg16'.

    ``weights`` must be None (random initialisation) until a pretrained file is given;
    ``input_shape`` defaults to (224, 224, 3); ``pooling`` is None, 'avg' or 'max' when
    ``include_top`` is False.
    """
    if weights is not None:
        raise ValueError("VGG16: only weights=None is available here; load pretrained weights "
                         "from a file with model.load_weights(path)")
    inputs = layers.Input(shape=input_shape or (224, 224, 3))
    x = inputs
    for block, (filters, convs) in enumerate(BLOCKS, start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation='relu', padding='same',
                              name=f'block{block}_conv{i}')(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f'block{block}_pool')(x)
    if include_top:
        x = layers.Flatten(name='flatten')(x)
        x = layers.Dense(4096, activation='relu', name='fc1')(x)
        x = layers.Dense(4096, activation='relu', name='fc2')(x)
        x = layers.Dense(classes, activation='softmax', name='predictions')(x)
    elif pooling == 'avg':
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == 'max':
        x = layers.GlobalMaxPooling2D()(x)
    return Model(inputs, x, name='vgg16')
