"""summary() prints exactly the parameter totals Keras prints for the lessons' models."""
import re

import mnist_convnet
import pytest

from minidl import layers, models
from minidl.applications import VGG16


def totals(model):
    lines = []
    model.summary(print_fn=lines.append)
    text = '\n'.join(lines)
    found = {key: int(re.search(rf'^{key} params: ([\d,]+)$', text, re.M).group(1)
                      .replace(',', '')) for key in ('Total', 'Trainable', 'Non-trainable')}
    return found, text


def mnist_net(head=True):
    """The example's model, or its convolutional part alone."""
    model = mnist_convnet.build_model()
    return model if head else models.Sequential(model.layers[:5])


def cats_and_dogs_net():
    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(150, 150, 3)))
    model.add(layers.MaxPooling2D((2, 2)))
    for filters in (64, 128, 128):
        model.add(layers.Conv2D(filters, (3, 3), activation='relu'))
        model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Flatten())
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(512, activation='relu'))
    model.add(layers.Dense(1, activation='sigmoid'))
    return model


def cifar_net(global_pool=False):
    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
    model.add(layers.Conv2D(32, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.GlobalMaxPooling2D() if global_pool else layers.Flatten())
    model.add(layers.Dense(1024, activation='relu'))
    model.add(layers.Dense(10, activation='softmax'))
    return model


def imdb_net():
    model = models.Sequential()
    model.add(layers.Embedding(10000, 128, input_length=500))
    model.add(layers.Conv1D(32, 7, activation='relu'))
    model.add(layers.MaxPooling1D(5))
    model.add(layers.Conv1D(32, 7, activation='relu'))
    model.add(layers.GlobalMaxPooling1D())
    model.add(layers.Dense(1))
    return model


@pytest.mark.parametrize('build, total', [
    (mnist_net, 93_322), (lambda: mnist_net(head=False), 55_744),
    (cats_and_dogs_net, 3_453_121), (cifar_net, 703_594),
    (lambda: cifar_net(global_pool=True), 179_306), (imdb_net, 1_315_937),
    (lambda: VGG16(include_top=False, input_shape=(150, 150, 3)), 14_714_688),
], ids=['mnist', 'mnist-conv', 'cats-dogs', 'cifar10', 'cifar10-gmp', 'imdb', 'vgg16-base'])
def test_summary_totals_match_keras(build, total):
    found, text = totals(build())
    assert found == {'Total': total, 'Trainable': total, 'Non-trainable': 0}, text


def test_summary_rows_show_names_shapes_params_and_multiplications():
    _, text = totals(mnist_net())
    assert re.search(r'conv2d(_\d+)? \(Conv2D\)\s+\(None, 26, 26, 32\)\s+320\s+194,688', text)
    assert re.search(r'flatten(_\d+)? \(Flatten\)\s+\(None, 576\)\s+0', text)
    assert re.search(r'dense(_\d+)? \(Dense\)\s+\(None, 64\)\s+36928\s+36,864', text)
    assert 'Multiplications per example:' in text


def test_imdb_shapes():
    model = imdb_net()
    shapes = [layer.output_shape for layer in model.layers]
    assert shapes == [(None, 500, 128), (None, 494, 32), (None, 98, 32), (None, 92, 32),
                      (None, 32), (None, 1)]


def vgg_with_head():
    conv_base = VGG16(include_top=False, input_shape=(150, 150, 3))
    model = models.Sequential()
    model.add(conv_base)
    model.add(layers.Flatten())
    model.add(layers.Dense(256, activation='relu'))
    model.add(layers.Dense(1, activation='sigmoid'))
    return conv_base, model


def test_vgg16_base_and_freezing_count_like_keras():
    conv_base, model = vgg_with_head()
    assert conv_base.get_layer('block5_pool').output_shape == (None, 4, 4, 512)
    assert len(model.trainable_weights) == 30
    conv_base.trainable = False
    assert len(model.trainable_weights) == 4
    found, text = totals(model)
    assert found == {'Total': 16_812_353, 'Trainable': 2_097_665,
                     'Non-trainable': 14_714_688}
    assert re.search(r'vgg16 \(Functional\)\s+\(None, 4, 4, 512\)\s+14714688', text)


def test_fine_tuning_block5_only():
    conv_base, model = vgg_with_head()
    conv_base.trainable = True
    trainable = False
    for layer in conv_base.layers:
        trainable = trainable or layer.name == 'block5_conv1'
        layer.trainable = trainable
    assert len(model.trainable_weights) == 10
    assert sum(w.size for w in model.trainable_weights) == 3 * 2_359_808 + 2_097_665
