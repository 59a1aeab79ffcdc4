"""The lessons' dataset code, run as written (only the imports differ) on small synthetic copies
of Keras's files placed where Keras keeps them: seed 001's CIFAR-10 convnet (In [1]-[3], [213])
and its IMDB Conv1D model (In [14], [15], [19])."""
import re
import shutil

import numpy as np
import pytest

import minidl
import synthetic
from minidl import layers, models
from minidl.datasets import cifar10, files, imdb
from minidl.models import Sequential
from minidl.optimizers import RMSprop
from minidl.preprocessing import sequence
from minidl.utils import to_categorical


def assert_summary(model, out, rows, total):
    """``model``'s layers are of the lesson's types, and its summary in ``out`` has the output
    shapes and parameter counts of the lesson's table (``rows`` of all three), and its total."""
    assert [type(layer).__name__ for layer in model.layers] == [kind for kind, _, _ in rows]
    for kind, shape, params in rows:
        assert re.search(rf'{re.escape(shape)}\s+{params}\s', out), (kind, shape)
    assert f'Total params: {total}' in out


@pytest.fixture
def keras_datasets(tmp_path):
    """``$KERAS_HOME/datasets``, as the autouse fixture points KERAS_HOME."""
    folder = tmp_path / 'keras_home' / 'datasets'
    folder.mkdir(parents=True)
    return folder


def test_seed_001_cifar10_convnet(keras_datasets, tmp_path, monkeypatch, capsys):
    batches, _ = synthetic.write_cifar(tmp_path / 'made', sizes=(8, 8, 8, 8, 8, 10))
    shutil.copytree(batches, keras_datasets / 'cifar-10-batches-py')
    for name in synthetic.CIFAR_BATCHES:
        monkeypatch.setitem(cifar10.HASHES, name, files.file_hash(batches / name, 'md5'))
    minidl.random.seed(0)

    (train_images, train_labels), (test_images, test_labels) = cifar10.load_data()

    train_images = train_images.astype('float32') / 255

    test_images = test_images.astype('float32') / 255

    train_labels = to_categorical(train_labels)
    test_labels = to_categorical(test_labels)

    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
    model.add(layers.Conv2D(32, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.Flatten())
    model.add(layers.Dense(1024, activation='relu'))
    model.add(layers.Dense(10, activation='softmax'))

    model.summary()

    model.compile(optimizer='rmsprop',
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])
    history = model.fit(train_images, train_labels, epochs=2,  # the lesson's 100 show no more
                        batch_size=128, validation_split=0.2, shuffle=True)

    scores = model.evaluate(test_images, test_labels)

    assert train_images.shape == (40, 32, 32, 3) and train_labels.shape == (40, 10)
    assert test_labels.shape == (10, 10) and len(scores) == 2
    assert list(history.history) == ['loss', 'accuracy', 'val_loss', 'val_accuracy']
    assert_summary(model, capsys.readouterr().out, [
        ('Conv2D', '(None, 30, 30, 32)', 896), ('Conv2D', '(None, 28, 28, 32)', 9248),
        ('MaxPooling2D', '(None, 14, 14, 32)', 0), ('Conv2D', '(None, 12, 12, 64)', 18496),
        ('Conv2D', '(None, 10, 10, 64)', 36928), ('MaxPooling2D', '(None, 5, 5, 64)', 0),
        ('Conv2D', '(None, 3, 3, 64)', 36928), ('Flatten', '(None, 576)', 0),
        ('Dense', '(None, 1024)', 590848), ('Dense', '(None, 10)', 10250)], '703,594')


@pytest.mark.slow
def test_seed_001_imdb_conv1d(keras_datasets, monkeypatch, capsys):
    """About 3 s: the lesson's 500-step Embedding(10000, 128) model trains for its 10 epochs."""
    rng = np.random.default_rng(1)
    (x, y), (xt, yt) = (synthetic.imdb_reviews(rng, 40, vocabulary=12000, longest=600)
                        for _ in range(2))
    np.savez(keras_datasets / 'imdb.npz', x_train=x, y_train=y, x_test=xt, y_test=yt)
    monkeypatch.setitem(imdb.HASHES, 'imdb.npz',
                        files.file_hash(keras_datasets / 'imdb.npz', 'sha256'))
    minidl.random.seed(0)

    max_features = 10000  # number of words to consider as features
    max_len = 500  # cut texts after this number of words (among top max_features most common words)

    print('Loading data...')
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=max_features)
    print(len(x_train), 'train sequences')
    print(len(x_test), 'test sequences')

    print('Pad sequences (samples x time)')
    x_train = sequence.pad_sequences(x_train, maxlen=max_len)
    x_test = sequence.pad_sequences(x_test, maxlen=max_len)
    print('x_train shape:', x_train.shape)
    print('x_test shape:', x_test.shape)

    model = Sequential()
    model.add(layers.Embedding(max_features, 128, input_length=max_len))
    model.add(layers.Conv1D(32, 7, activation='relu'))
    model.add(layers.MaxPooling1D(5))
    model.add(layers.Conv1D(32, 7, activation='relu'))
    model.add(layers.GlobalMaxPooling1D())
    model.add(layers.Dense(1))

    model.summary()

    model.compile(optimizer=RMSprop(learning_rate=1e-4),
                  loss='binary_crossentropy',
                  metrics=['acc'])
    history = model.fit(x_train, y_train,
                        epochs=10,
                        batch_size=128,
                        validation_split=0.2)

    out = capsys.readouterr().out
    assert '40 train sequences' in out and 'x_test shape: (40, 500)' in out
    assert max(max(review) for review in x_train) < max_features
    assert_summary(model, out, [
        ('Embedding', '(None, 500, 128)', 1280000), ('Conv1D', '(None, 494, 32)', 28704),
        ('MaxPooling1D', '(None, 98, 32)', 0), ('Conv1D', '(None, 92, 32)', 7200),
        ('GlobalMaxPooling1D', '(None, 32)', 0), ('Dense', '(None, 1)', 33)], '1,315,937')
    assert len(history.history['val_acc']) == 10 and 'Epoch 10/10' in out
