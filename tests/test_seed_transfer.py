"""The lessons' transfer-learning code, run as written (only the imports differ) on small
stand-in data: seed 001's dense head on MobileNet features (In [40]), seed 004's VGG16
bottleneck features saved with np.save and a Sequential head trained on them, and a model with
two inputs and two outputs trained on the weighted sum of its losses."""
import numpy as np
import pytest
from PIL import Image

import minidl
import minidl as keras
from minidl import applications, layers, optimizers
from minidl.callbacks import Callback
from minidl.layers import Dense, Dropout, Flatten
from minidl.models import Sequential
from minidl.preprocessing.image import ImageDataGenerator


def mobilenet_like_features(labels, seed):
    """Stand-ins for MobileNet's (5, 5, 1024) features: sparse non-negative noise, as after a
    ReLU, with the first 64 channels brighter for class 1."""
    rng = np.random.default_rng(seed)
    shape = (len(labels), 5, 5, 1024)
    features = rng.uniform(0, 0.1, shape) * (rng.random(shape) > 0.8)
    features[labels == 1, :, :, :64] += 0.1
    return features.astype(np.float32)


def test_seed_001_dense_head_on_mobilenet_features(capsys):
    minidl.random.seed(0)
    train_labels, val_labels = np.arange(32) % 2, np.arange(16) % 2
    train_features = mobilenet_like_features(train_labels, seed=1)
    val_features = mobilenet_like_features(val_labels, seed=2)

    inputs = keras.Input(shape=(5, 5, 1024))
    x = layers.Flatten()(inputs)
    x = layers.Dense(256)(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)

    model.compile(loss="binary_crossentropy",
                  optimizer="rmsprop",
                  metrics=["accuracy"])

    history = model.fit(
        train_features, train_labels,
        epochs=3,  # the lesson's 100 epochs of 2000 examples show nothing more
        validation_data=(val_features, val_labels)
        )

    assert list(history.history) == ['loss', 'accuracy', 'val_loss', 'val_accuracy']
    assert history.history['acc'] is history.history['accuracy']
    assert history.history['val_acc'][-1] == history.history['val_accuracy'][-1] > 0.9
    out = capsys.readouterr().out
    assert 'Epoch 3/3' in out and '1/1 - ' in out and ' - val_accuracy: ' in out


def write_images(root, counts, size=(24, 24)):
    """A tiny cats-and-dogs folder: ``counts`` images per class, dark noisy cats and bright
    noisy dogs, as PNG files in ``root/cats`` and ``root/dogs``."""
    rng = np.random.default_rng(counts)
    for name, level in (('cats', 60), ('dogs', 190)):
        (root / name).mkdir(parents=True)
        for i in range(counts):
            pixels = np.clip(rng.normal(level, 30, size + (3,)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f'{name}.{i}.png')


@pytest.mark.parametrize('side', [32, pytest.param(150, marks=pytest.mark.slow)])
def test_seed_004_vgg16_bottleneck_features_then_a_dense_head(tmp_path, monkeypatch, side):
    """Seed 004 at its 150x150 images (slow), and at 32x32, where VGG16's five poolings leave
    1x1 feature maps instead of 4x4."""
    monkeypatch.chdir(tmp_path)
    n, ratio, batch_size = 10, 0.2, 2
    write_images(tmp_path / 'data' / 'train', int(n * (1 - ratio)) // 2)
    write_images(tmp_path / 'data' / 'validation', int(n * ratio) // 2)
    (tmp_path / 'features').mkdir()
    minidl.random.seed(4)

    class LossHistory(Callback):
        def on_train_begin(self, logs={}):
            self.losses = []
            self.val_losses = []

        def on_epoch_end(self, batch, logs={}):
            self.losses.append(logs.get('loss'))
            self.val_losses.append(logs.get('val_loss'))

    history = LossHistory()

    model = applications.VGG16(include_top=False, weights=None)
    datagen = ImageDataGenerator(rescale=1. / 255)

    generator = datagen.flow_from_directory('./data/train/',
                                            target_size=(side, side),
                                            batch_size=batch_size,
                                            class_mode=None,
                                            shuffle=False)

    bottleneck_features_train = model.predict_generator(generator, int(n * (1 - ratio)) // batch_size)
    np.save(open('./features/bottleneck_features_train.npy', 'wb'), bottleneck_features_train)

    generator = datagen.flow_from_directory('./data/validation/',
                                            target_size=(side, side),
                                            batch_size=batch_size,
                                            class_mode=None,
                                            shuffle=False)

    bottleneck_features_validation = model.predict_generator(generator, int(n * ratio) // batch_size,)
    np.save('./features/bottleneck_features_validation.npy', bottleneck_features_validation)

    train_data = np.load('./features/bottleneck_features_train.npy')
    train_labels = np.array([0] * (int((1-ratio) * n) // 2) + [1] * (int((1 - ratio) * n) // 2))

    validation_data = np.load('./features/bottleneck_features_validation.npy')
    validation_labels = np.array([0] * (int(ratio * n) // 2) + [1] * (int(ratio * n) // 2))

    model = Sequential()
    model.add(Flatten(input_shape=train_data.shape[1:]))
    model.add(Dense(512, activation='relu'))
    model.add(Dropout(0.5))
    model.add(Dense(256, activation='relu'))
    model.add(Dropout(0.2))
    model.add(Dense(1, activation='sigmoid'))

    model.compile(optimizer='rmsprop',
                  loss='binary_crossentropy', metrics=['accuracy'])

    fitted_model = model.fit(train_data, train_labels,
              epochs=15,
              batch_size=batch_size,
              validation_data=(validation_data, validation_labels[:validation_data.shape[0]]),
              verbose=0,
              callbacks=[history])  # and the lesson's TQDMNotebookCallback, from keras_tqdm

    maps = side // 32  # 4 for 150x150 images
    assert train_data.shape == (8, maps, maps, 512)
    assert validation_data.shape == (2, maps, maps, 512)
    assert train_labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert list(fitted_model.history) == ['loss', 'accuracy', 'val_loss', 'val_accuracy']
    assert history.losses == fitted_model.history['loss'] and len(history.losses) == 15
    assert history.val_losses == fitted_model.history['val_loss']
    assert fitted_model.history['val_acc'] == fitted_model.history['val_accuracy']


def two_inputs_two_outputs(dtype='float32'):
    """An image and three numbers in; a 3-class softmax 'kind' and a linear 'size' out."""
    image = keras.Input(shape=(6, 6, 1), name='image', dtype=dtype)
    numbers = keras.Input(shape=(3,), name='numbers', dtype=dtype)
    seen = layers.Flatten()(layers.Conv2D(2, 3, activation='relu', dtype=dtype)(image))
    both = layers.concatenate([seen, numbers])
    kind = layers.Dense(3, activation='softmax', name='kind', dtype=dtype)(both)
    size = layers.Dense(1, name='size', dtype=dtype)(both)
    return keras.Model([image, numbers], [kind, size])


def shapes_and_sizes(n, seed=5):
    """Images whose brightest third (top, middle, bottom rows) is the kind, numbers whose sum
    is the size."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 3, n)
    images = rng.normal(0, 0.2, (n, 6, 6, 1))
    for k in range(3):
        images[kinds == k, 2 * k:2 * k + 2] += 1.0
    numbers = rng.normal(size=(n, 3))
    return [images, numbers], {'kind': kinds, 'size': numbers.sum(axis=1, keepdims=True)}


def test_two_inputs_two_outputs_train_on_the_weighted_sum_of_their_losses(check_grad):
    minidl.random.seed(6)
    x, y = shapes_and_sizes(96)
    model = two_inputs_two_outputs()
    model.compile(optimizer=optimizers.Adam(0.01), loss={'kind': 'sparse_categorical_crossentropy',
                                          'size': 'mse'},
                  loss_weights={'kind': 1.0, 'size': 0.25}, metrics={'kind': ['acc']})
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0, validation_split=0.25)
    assert list(history.history) == ['loss', 'kind_loss', 'size_loss', 'kind_acc', 'val_loss',
                                     'val_kind_loss', 'val_size_loss', 'val_kind_acc']
    assert history.history['val_kind_accuracy'][-1] > 0.9
    assert history.history['size_loss'][-1] < 0.3 * history.history['size_loss'][0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs['loss'] == pytest.approx(logs['kind_loss'] + 0.25 * logs['size_loss'])

    exact = two_inputs_two_outputs('float64')
    exact.compile('sgd', ['sparse_categorical_crossentropy', 'mse'], loss_weights=[1.0, 0.25])
    few = [part[:4] for part in x], [y['kind'][:4], y['size'][:4]]
    check_grad(lambda *weights: exact._batch(*few, training=True)[0], *exact.trainable_weights)
