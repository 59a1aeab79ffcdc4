"""summary() prints exactly the parameter totals Keras prints for the lessons' models."""
import itertools
import re

import mnist_convnet
import pytest

from minidl import layers, models, summary
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


# --- functional models: Keras 2's "Connected to" ----------------------------------------
KERAS_INCEPTION = """\
 x_input (InputLayer)        [(None, 28, 28, 256)]        0         []

 tower2_1x1 (Conv2D)         (None, 28, 28, 64)           16448     ['x_input[0][0]']

 tower3_1x1 (Conv2D)         (None, 28, 28, 64)           16448     ['x_input[0][0]']

 tower4_pool (MaxPooling2D)  (None, 28, 28, 256)          0         ['x_input[0][0]']

 tower1 (Conv2D)             (None, 28, 28, 64)           16448     ['x_input[0][0]']

 tower2_3x3 (Conv2D)         (None, 28, 28, 64)           36928     ['tower2_1x1[0][0]']

 tower3_5x5 (Conv2D)         (None, 28, 28, 64)           102464    ['tower3_1x1[0][0]']

 tower4_1x1 (Conv2D)         (None, 28, 28, 64)           16448     ['tower4_pool[0][0]']

 towers (Concatenate)        (None, 28, 28, 256)          0         ['tower1[0][0]',
                                                                     'tower2_3x3[0][0]',
                                                                     'tower3_5x5[0][0]',
                                                                     'tower4_1x1[0][0]']
"""  # the rows of tf-keras 2.21's summary of inception_block(), columns at 0, 29, 58, 68

KERAS_SHARED = """\
 b (InputLayer)              [(None, None, 6)]            0         []

 a_very_long_input_name_ind  [(None, 6)]                  0         []
 eed_for_wrapping (InputLay
 er)

 shared (Dense)              multiple                     28        ['b[0][0]',
                                                                     'a_very_long_input_name_indee
                                                                    d_for_wrapping[0][0]']

 inner (Functional)          [(None, 2),                  25        ['shared[1][0]']
                              (None, 3)]

 cat (Concatenate)           (None, 5)                    0         ['inner[0][0]',
                                                                     'inner[0][1]']
"""  # tf-keras 2.21's, of shared_model()


def inception_block():
    """Seed 003's Inception module: four towers on a 28x28x256 input, joined by concatenate."""
    x_input = layers.Input(shape=(28, 28, 64 * 4), name='x_input')
    tower1 = layers.Conv2D(64, (1, 1), padding='same', activation='relu', name='tower1')(x_input)
    tower2 = layers.Conv2D(64, (1, 1), padding='same', activation='relu',
                           name='tower2_1x1')(x_input)
    tower2 = layers.Conv2D(64, (3, 3), padding='same', activation='relu',
                           name='tower2_3x3')(tower2)
    tower3 = layers.Conv2D(64, (1, 1), padding='same', activation='relu',
                           name='tower3_1x1')(x_input)
    tower3 = layers.Conv2D(64, (5, 5), padding='same', activation='relu',
                           name='tower3_5x5')(tower3)
    tower4 = layers.MaxPooling2D((3, 3), strides=(1, 1), padding='same',
                                 name='tower4_pool')(x_input)
    tower4 = layers.Conv2D(64, (1, 1), padding='same', activation='relu',
                           name='tower4_1x1')(tower4)
    x_output = layers.concatenate([tower1, tower2, tower3, tower4], axis=3, name='towers')
    return models.Model(x_input, x_output, name='inception')


def shared_model():
    """A Dense shared by two calls on inputs of two shapes, feeding a model of two outputs."""
    a = layers.Input((6,), name='a_very_long_input_name_indeed_for_wrapping')
    b = layers.Input((None, 6), name='b')
    shared = layers.Dense(4, name='shared')
    ix = layers.Input((4,), name='ix')
    inner = models.Model(ix, [layers.Dense(2, name='i1')(ix), layers.Dense(3, name='i2')(ix)],
                         name='inner')
    steps, features = shared(b), shared(a)
    p, q = inner(features)
    return models.Model([a, b], [steps, layers.Concatenate(name='cat')([p, q])], name='shared')


def table_cells(lines, starts):
    """Each row of a summary table's body (``lines``, rows apart by blank lines) as its
    cells, the columns starting at ``starts``: the name and shape as one text each (minidl
    wraps at spaces where Keras cuts, so the spaces are dropped from names), the
    connections as their lines."""
    rows, row = [], []
    for line in lines + ['']:
        if line.strip():
            row.append([line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])])
        elif row:
            name, shape, params, connected = [[p for p in column if p]
                                              for column in zip(*row)][:4]
            rows.append((''.join(name).replace(' ', ''), ' '.join(shape), params, connected))
            row = []
    return rows


def minidl_cells(model):
    """The cells of ``model``'s summary table, the Multiplications column apart."""
    _, text = totals(model)
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith('=')]
    starts = [0] + list(itertools.accumulate(w for _, w in summary.GRAPH_COLUMNS))[:-1]
    assert re.fullmatch(r' Layer \(type\) +Output Shape +Param # +Connected to +'
                        r'Multiplications +', lines[2])
    return table_cells(lines[rules[0] + 1:rules[1]], starts), text


def test_an_inception_block_is_summarised_cell_for_cell_as_tf_keras_does():
    got, text = minidl_cells(inception_block())
    assert got == table_cells(KERAS_INCEPTION.splitlines(), [0, 29, 58, 68])
    assert re.search(r'^Total params: 205,184$', text, re.M)
    assert re.search(r"tower3_5x5 \(Conv2D\) .* \['tower3_1x1\[0\]\[0\]'\]\s+80,281,600",
                     text)  # 5*5*64 x 28*28 x 64


def test_shared_layers_list_every_call_and_long_names_are_cut_as_in_keras():
    got, _ = minidl_cells(shared_model())
    assert got == table_cells(KERAS_SHARED.splitlines(), [0, 29, 58, 68])


def test_a_functional_chain_is_summarised_as_a_sequential_as_keras_does():
    x = layers.Input((6,), name='x')
    chain = models.Model(x, layers.Dense(2, name='out')(layers.Dense(4, name='hidden')(x)))
    _, text = totals(chain)
    assert 'Connected to' not in text
    assert text.splitlines()[2] == ' ' + ''.join(title.ljust(width) for title, width in
                                                 summary.COLUMNS)
