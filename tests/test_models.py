"""Sequential and functional models: building, training, history, saving, errors."""
import numpy as np
import pytest

import minidl
from minidl import callbacks, layers, models, optimizers


def blobs(n=240, classes=3, seed=0):
    """A small separable problem: 8x8 one-channel images whose bright quadrant is the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    for c in range(classes):
        r, q = divmod(c, 2)
        x[y == c, r * 4:(r + 1) * 4, q * 4:(q + 1) * 4] += 1.5
    return x, y


def small_convnet(classes=3):
    return models.Sequential([
        layers.Conv2D(4, 3, activation='relu', padding='same', input_shape=(8, 8, 1)),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(classes, activation='softmax'),
    ])


@pytest.mark.parametrize('loss, metric, onehot', [
    ('sparse_categorical_crossentropy', 'acc', False),
    ('categorical_crossentropy', 'accuracy', True),
])
def test_fit_learns_and_history_uses_the_metric_name(loss, metric, onehot):
    minidl.random.seed(0)
    x, y = blobs()
    y = np.eye(3, dtype=np.float32)[y] if onehot else y
    model = small_convnet()
    model.compile(optimizer=optimizers.RMSprop(lr=0.01), loss=loss, metrics=[metric])
    history = model.fit(x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=0)
    assert set(history.history) == {'loss', metric, 'val_loss', f'val_{metric}'}
    assert history.history['loss'][-1] < history.history['loss'][0]
    assert history.history[f'val_{metric}'][-1] > 0.9
    loss_value, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9 and loss_value < 0.5
    assert model.predict(x[:5]).shape == (5, 3)


def test_same_seed_same_training():
    def run():
        minidl.random.seed(42)
        x, y = blobs(64)
        model = small_convnet()
        model.compile('sgd', 'sparse_categorical_crossentropy')
        return model.fit(x, y, epochs=2, verbose=0).history['loss']
    assert run() == run()


def test_binary_classifier_with_sigmoid_and_a_generator():
    minidl.random.seed(1)
    x, y = blobs(200, classes=2)

    def batches():
        while True:
            for i in range(0, 200, 20):
                yield x[i:i + 20], y[i:i + 20].astype(np.float32)

    model = models.Sequential([layers.Flatten(input_shape=(8, 8, 1)),
                               layers.Dense(8, activation='relu'),
                               layers.Dense(1, activation='sigmoid')])
    model.compile(optimizers.Adam(0.01), 'binary_crossentropy', ['acc'])
    history = model.fit(batches(), steps_per_epoch=10, epochs=3, verbose=0,
                        validation_data=batches(), validation_steps=2)
    assert history.history['val_acc'][-1] > 0.9


def test_functional_model_with_every_layer_output():
    minidl.random.seed(2)
    model = small_convnet()
    outputs = [layer.output for layer in model.layers[:3]]
    activations = models.Model(inputs=model.input, outputs=outputs)
    x, _ = blobs(4)
    conv, pooled, flat = activations.predict(x) if False else activations(x)
    assert conv.shape == (4, 8, 8, 4) and pooled.shape == (4, 4, 4, 4) and flat.shape == (4, 64)
    np.testing.assert_allclose(flat.data, pooled.data.reshape(4, -1))


def test_functional_graph_from_input():
    inputs = layers.Input(shape=(6,), name='features')  # an automatic name may wrap
    hidden = layers.Dense(4, activation='relu', name='hidden')(inputs)
    outputs = layers.Dense(2, activation='softmax', name='out')(hidden)
    model = models.Model(inputs, outputs)
    assert [layer.name for layer in model.layers][1:] == ['hidden', 'out']
    assert model(np.ones((3, 6), np.float32)).shape == (3, 2)
    lines = []
    model.summary(print_fn=lines.append)
    assert any('(InputLayer)' in line and '[(None, 6)]' in line for line in lines)


def test_layers_come_in_keras_order_deepest_first():
    """The orders tf-keras 2.21 and Keras 3.15 give these graphs, which their weight files
    follow: by depth from the outputs, ties as a walk back from the outputs meets them."""
    x = layers.Input((8, 8, 3), name='x')
    towers = [layers.Conv2D(2, 1, name='t1')(x),
              layers.Conv2D(2, 3, padding='same', name='t2b')(layers.Conv2D(2, 1, name='t2a')(x)),
              layers.Conv2D(2, 1, name='t3b')(layers.MaxPooling2D(3, 1, 'same', name='t3a')(x))]
    inception = models.Model(x, layers.Concatenate(name='cat')(towers))
    assert [layer.name for layer in inception.layers] == \
        ['x', 't2a', 't3a', 't1', 't2b', 't3b', 'cat']
    x, y = layers.Input((4,), name='x'), layers.Input((4,), name='y')
    s, t = layers.Dense(3, name='s'), layers.Dense(4, name='t')
    shared = models.Model([x, y], layers.Add(name='add')([s(x), s(t(y))]))
    assert [layer.name for layer in shared.layers] == ['y', 'x', 't', 's', 'add']


def test_save_and_load_reproduce_predictions_bit_for_bit(tmp_path):
    minidl.random.seed(3)
    x, y = blobs(48)
    model = small_convnet()
    model.compile('rmsprop', 'sparse_categorical_crossentropy', ['acc'])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / 'model.h5')
    restored = models.load_model(tmp_path / 'model.h5')
    assert np.array_equal(restored.predict(x), model.predict(x))
    assert restored.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    other = small_convnet()
    other.save_weights(tmp_path / 'w.h5')
    model.save_weights(tmp_path / 'w.h5')
    other.load_weights(tmp_path / 'w.h5')
    assert np.array_equal(other.predict(x), model.predict(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.h5', 'w.h5']


def test_nested_model_saves_and_loads(tmp_path):
    inner = models.Sequential([layers.Dense(3, input_shape=(4,), name='inner_dense')],
                              name='inner')
    outer = models.Sequential([inner, layers.Dense(2, name='outer_dense')])
    outer.save(tmp_path / 'nested.h5')
    restored = models.load_model(tmp_path / 'nested.h5')
    x = np.ones((2, 4), np.float32)
    assert np.array_equal(restored.predict(x), outer.predict(x))


def test_loading_weights_that_do_not_fit_lists_the_layers(tmp_path):
    small_convnet().save_weights(tmp_path / 'w.h5')
    bigger = models.Sequential([layers.Conv2D(8, 3, padding='same', input_shape=(8, 8, 1)),
                                layers.Flatten(), layers.Dense(3)])
    with pytest.raises(ValueError, match=r'w\.h5: weights do not fit:\n.*conv2d'):
        bigger.load_weights(tmp_path / 'w.h5')


def test_nan_loss_stops_training_naming_epoch_and_batch(capsys):
    x, y = blobs(64)
    x[40] = np.nan
    model = small_convnet()
    model.compile('sgd', 'sparse_categorical_crossentropy')
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert 'batch 3 of epoch 1' in capsys.readouterr().err
    assert history.history == {}


def test_early_stopping_and_callbacks_see_the_logs():
    x, y = blobs(64)
    model = small_convnet()
    model.compile(optimizers.SGD(learning_rate=0.0), 'sparse_categorical_crossentropy')
    seen = []
    history = model.fit(x, y, epochs=10, verbose=0, validation_data=(x, y), callbacks=[
        callbacks.EarlyStopping(monitor='val_loss', patience=1),
        callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))])
    assert len(history.history['loss']) == 2 and seen == [0, 1]


def test_fit_before_compile_is_a_clear_error():
    with pytest.raises(RuntimeError, match='compile'):
        small_convnet().fit(*blobs(8), verbose=0)


def test_progress_lines_when_not_a_terminal(capsys):
    x, y = blobs(32)
    model = small_convnet()
    model.compile('sgd', 'sparse_categorical_crossentropy', ['acc'])
    model.fit(x, y, epochs=2, batch_size=16, verbose=1)
    out = capsys.readouterr().out
    assert 'Epoch 1/2' in out and 'Epoch 2/2' in out and '2/2 - ' in out and 'acc: ' in out


def test_only_trainable_weights_change():
    minidl.random.seed(4)
    x, y = blobs(32)
    model = small_convnet()
    model.layers[0].trainable = False
    frozen = model.layers[0].get_weights()
    model.compile('adam', 'sparse_categorical_crossentropy')
    model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, model.layers[0].get_weights()))
    assert not np.array_equal(model.layers[-1].get_weights()[0], small_convnet().layers[-1]
                              .get_weights()[0])


def test_an_unbuilt_model_says_how_to_build_it():
    model = models.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match='no input yet: give its first layer an input_shape'):
        model.input
    model.predict(np.ones((1, 3), np.float32))
    assert model.input.shape == (None, 3)


@pytest.mark.parametrize('first', [lambda: layers.Input((8, 8, 1)),
                                   lambda: layers.InputLayer(input_shape=(8, 8, 1))])
def test_an_input_put_first_declares_the_shape_and_is_not_a_layer(capsys, first):
    model = models.Sequential([first(), layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(3)])
    assert model.built and [type(layer).__name__ for layer in model.layers] == \
        ['Conv2D', 'Flatten', 'Dense']
    assert model.input_shape == (None, 8, 8, 1) and model.output_shape == (None, 3)
    model.summary()
    assert 'InputLayer' not in capsys.readouterr().out
    model.pop()
    assert model.built and model.output_shape == (None, 144)
    with pytest.raises(ValueError, match='an Input or InputLayer can only come first'):
        model.add(layers.Input((3,)))


def test_a_model_with_several_outputs_predicts_a_list_and_keeps_their_gradients():
    inputs = layers.Input((4,))
    hidden = layers.Dense(3, activation='relu', name='hidden')(inputs)
    scores = layers.Dense(2, name='scores')(hidden)
    model = models.Model(inputs, [hidden, scores])
    x = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    h, s = model.predict(x, batch_size=2)
    assert h.shape == (5, 3) and s.shape == (5, 2)
    h_t, s_t = model(minidl.tensor(x, requires_grad=True))
    s_t[:, 1].sum().backward()
    np.testing.assert_allclose(h_t.grad, np.broadcast_to(
        model.get_layer('scores').kernel.data[:, 1], (5, 3)), rtol=1e-6)


def compiled_convnet():
    model = small_convnet()
    model.compile('sgd', 'sparse_categorical_crossentropy', ['acc'])
    return model


def test_a_bad_label_names_the_batch_and_its_examples():
    x, y = blobs(64)
    y[37] = 3
    model = compiled_convnet()
    with pytest.raises(ValueError, match=r'^batch 3 of epoch 1 \(examples 32-47 of x\): '
                                         r'sparse_categorical_crossentropy: label 3 at index 5 of '
                                         r'the batch is out of range for 3 classes'):
        model.fit(x, y, batch_size=16, shuffle=False, verbose=0)
    with pytest.raises(ValueError, match=r'^batch \d of epoch 1 \(16 examples shuffled from x\)'):
        model.fit(x, y, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match=r'^validation batch 1 \(examples 0-15 of the validation '
                                         r'data\): .* label 3 at index 5 of the batch'):
        model.fit(x, y, batch_size=16, verbose=0, validation_split=0.5)
    with pytest.raises(ValueError, match=r'^validation batch 1 \(examples 0-31 of the validation '
                                         r'data\): '):
        model.fit(x[:32], y[:32], verbose=0, validation_data=(x[32:], y[32:]))
    with pytest.raises(ValueError, match=r'^evaluate batch 2 \(examples 32-63 of x\): '):
        model.evaluate(x, y, verbose=0)


@pytest.mark.parametrize('kwargs, message', [
    ({'validation_split': 1.0}, r'validation_split must be a number in \[0, 1\), got 1.0'),
    ({'validation_split': 1.5}, 'validation_split must be a number in'),
    ({'validation_split': -0.2}, 'validation_split must be a number in'),
    ({'validation_split': '0.2'}, 'validation_split must be a number in'),
    ({'validation_split': 0.99}, 'validation_split=0.99 of 32 examples leaves 0 for training'),
    ({'batch_size': 0}, 'batch_size must be an integer >= 1, got 0'),
    ({'batch_size': -4}, 'batch_size must be an integer >= 1'),
    ({'batch_size': 2.5}, 'batch_size must be an integer >= 1, got 2.5'),
    ({'epochs': -1}, 'epochs must be an integer >= 0, got -1'),
    ({'steps_per_epoch': 0}, 'steps must be an integer >= 1, got 0')])
def test_fit_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=f'fit: {message}'):
        compiled_convnet().fit(*blobs(32), verbose=0, **kwargs)


def test_data_that_cannot_train_is_named():
    x, y = blobs(32)
    model = compiled_convnet()
    with pytest.raises(ValueError, match=r'fit: x holds no examples \(shape \(0, 8, 8, 1\)\)'):
        model.fit(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match='fit: y is None; give the targets'):
        model.fit(x, None, verbose=0)
    with pytest.raises(ValueError, match='fit: x has 32 examples but y has 31'):
        model.fit(x, y[:31], verbose=0, validation_split=0.25)
    with pytest.raises(ValueError, match='predict: x holds no examples'):
        model.predict(x[:0])
    with pytest.raises(ValueError, match='evaluate: x holds no examples'):
        model.evaluate(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match=r'batch 1 of epoch 1 \(examples 0-31 of x\): sparse_'
                                         r'categorical_crossentropy: labels must be integers'):
        model.fit(x, np.where(y == 0, 'cat', 'dog'), shuffle=False, verbose=0)
    with pytest.raises(ValueError, match='validation_split needs arrays x and y'):
        model.fit(iter([(x, y)]), steps_per_epoch=1, verbose=0, validation_split=0.5)


def test_a_generator_that_ends_early_says_how_many_batches_it_gave():
    x, y = blobs(32)

    def three_batches():
        for start in range(0, 24, 8):
            yield x[start:start + 8], y[start:start + 8]
    with pytest.raises(ValueError, match='fit: the generator ran out after giving 3 of the 5 '
                                         r'batches asked for this pass \(3 in all\)'):
        compiled_convnet().fit(three_batches(), steps_per_epoch=5, verbose=0)


def test_empty_batches_and_batches_without_targets_are_named():
    x, y = blobs(8)
    model = compiled_convnet()
    with pytest.raises(ValueError, match=r'batch 2 of epoch 1: the batch holds no examples'):
        model.fit(iter([(x, y), (x[:0], y[:0])]), steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match='batch 1 of epoch 1: the batch has no targets'):
        model.fit(iter([x]), steps_per_epoch=1, verbose=0)


def test_integer_images_are_cast_to_the_layer_dtype():
    x, y = blobs(16)
    pixels = np.clip(x * 100 + 100, 0, 255).astype(np.uint8)
    model = compiled_convnet()
    np.testing.assert_array_equal(model.predict(pixels), model.predict(pixels.astype(np.float32)))
    model.fit(pixels, y, verbose=0)


def test_dense_acts_on_the_last_axis_of_any_rank(check_grad):
    dense = layers.Dense(2, input_shape=(4, 5, 3))
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 3))
    y = dense(x.astype(np.float32))
    assert y.shape == (2, 4, 5, 2) and dense.compute_output_shape((None, 4, 5, 3)) == \
        (None, 4, 5, 2)
    np.testing.assert_allclose(y.data, x @ dense.kernel.data + dense.bias.data, atol=1e-6)
    dense64 = layers.Dense(2, dtype='float64')
    check_grad(dense64, x)
