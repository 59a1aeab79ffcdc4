"""Training models with several inputs and outputs: data as lists or dicts by name, losses,
loss weights and metrics per output, the log names tf-keras gives them, and errors that name
the input or output at fault."""
import numpy as np
import pytest

import minidl
from minidl import layers, losses, models, optimizers


def two_in_two_out():
    """Inputs 'a' (4 features) and 'b' (3); outputs 'out1' (a linear score) and 'out2' (a
    3-class softmax), both reading the concatenated inputs."""
    a, b = layers.Input((4,), name='a'), layers.Input((3,), name='b')
    both = layers.Concatenate()([a, b])
    return models.Model([a, b], [layers.Dense(1, name='out1')(both),
                                 layers.Dense(3, activation='softmax', name='out2')(both)])


def data(n=24, seed=0):
    """``(xa, xb, y1, y2)``: y1 a linear function of xa, y2 the largest feature of xb."""
    rng = np.random.default_rng(seed)
    xa, xb = rng.normal(size=(n, 4)), rng.normal(size=(n, 3))
    return xa, xb, xa @ [[1.0], [-2.0], [0.5], [0.0]], xb.argmax(axis=1)


# What tf-keras 2.21 logs for the same compile arguments.
@pytest.mark.parametrize('compiled, names', [
    ({'loss': {'out1': 'mse', 'out2': 'sparse_categorical_crossentropy'},
      'loss_weights': [1.0, 0.5], 'metrics': ['acc']},
     ['loss', 'out1_loss', 'out2_loss', 'out1_acc', 'out2_acc']),
    ({'loss': {'out2': 'categorical_crossentropy', 'out1': 'mse'},
      'loss_weights': {'out2': 2.0}, 'metrics': {'out2': ['acc', 'mse'], 'out1': 'mae'}},
     ['loss', 'out1_loss', 'out2_loss', 'out1_mae', 'out2_acc', 'out2_mse']),
    ({'loss': {'out2': 'sparse_categorical_crossentropy'}, 'metrics': {'out2': 'acc'}},
     ['loss', 'out2_loss', 'out2_acc']),
])
def test_logs_history_and_evaluate_name_each_output_as_tf_keras(compiled, names):
    minidl.random.seed(0)
    xa, xb, y1, y2 = data()
    if 'categorical_crossentropy' in compiled['loss'].values():  # one-hot targets (for mse)
        y2 = np.eye(3)[y2]
    model = two_in_two_out()
    model.compile('rmsprop', **compiled)
    history = model.fit([xa, xb], [y1, y2], epochs=2, batch_size=8, verbose=0,
                        validation_data=([xa, xb], [y1, y2]))
    assert list(history.history) == names + ['val_' + name for name in names]
    assert model.metrics_names == names
    results = model.evaluate({'a': xa, 'b': xb}, {'out1': y1, 'out2': y2}, verbose=0)
    assert len(results) == len(names)
    assert list(model.evaluate([xa, xb], [y1, y2], verbose=0, return_dict=True)) == names
    assert len(model.train_on_batch([xa, xb], [y1, y2])) == len(names)


def test_lists_dicts_and_generators_of_either_give_the_same_results():
    xa, xb, y1, y2 = data()
    model = two_in_two_out()
    model.compile('sgd', ['mse', 'sparse_categorical_crossentropy'], ['acc'])
    expected = model.evaluate([xa, xb], [y1, y2], batch_size=8, verbose=0)
    by_name = ({'b': xb, 'a': xa}, {'out2': y2, 'out1': y1})
    np.testing.assert_allclose(model.evaluate(*by_name, batch_size=8, verbose=0), expected)
    for batch in (((xa, xb), (y1, y2)), by_name):
        np.testing.assert_allclose(model.evaluate(iter([batch] * 3), steps=3, verbose=0),
                                   expected)
    out1, out2 = model.predict(by_name[0], batch_size=5)
    assert out1.shape == (24, 1) and out2.shape == (24, 3)
    np.testing.assert_allclose(out2.sum(axis=1), 1.0, rtol=1e-5)


def test_the_total_is_the_weighted_sum_of_the_output_losses_and_both_outputs_learn():
    minidl.random.seed(1)
    xa, xb, y1, y2 = data(96)
    model = two_in_two_out()
    model.compile(optimizers.Adam(0.02), ['mse', 'sparse_categorical_crossentropy'],
                  loss_weights={'out1': 0.3, 'out2': 2.0})
    history = model.fit([xa, xb], [y1, y2], epochs=15, batch_size=16, verbose=0)
    for key in ('loss', 'out1_loss', 'out2_loss'):
        assert history.history[key][-1] < 0.5 * history.history[key][0]
    total, mse, cross_entropy = model.evaluate([xa, xb], [y1, y2], verbose=0)
    assert total == pytest.approx(0.3 * mse + 2.0 * cross_entropy, rel=1e-6)
    p1, p2 = model.predict([xa, xb])  # the fused loss equals the one on probabilities
    assert cross_entropy == pytest.approx(losses.get('sparse_categorical_crossentropy')(
        y2, minidl.tensor(p2)).item(), rel=1e-4)
    assert mse == pytest.approx(float(np.mean((p1 - y1) ** 2)), rel=1e-4)


def test_an_output_that_another_layer_reads_is_not_fused():
    x = layers.Input((5,))
    probs = layers.Dense(3, activation='softmax', name='probs')(x)
    score = layers.Dense(1, activation='sigmoid', name='score')(probs)
    model = models.Model(x, [probs, score])
    assert model.output_activations == ['linear', 'sigmoid']
    model.compile('sgd', ['categorical_crossentropy', 'binary_crossentropy'])
    rng = np.random.default_rng(2)
    xs, y_probs, y_score = rng.normal(size=(6, 5)), np.eye(3)[[0, 1, 2, 0, 1, 2]], \
        rng.integers(0, 2, (6, 1))
    _, probs_loss, score_loss = model.test_on_batch(xs, [y_probs, y_score])
    p, s = model.predict(xs)
    assert probs_loss == pytest.approx(float(-np.mean(np.log(p[y_probs == 1]))), rel=1e-5)
    assert score_loss == pytest.approx(float(-np.mean(
        y_score * np.log(s) + (1 - y_score) * np.log(1 - s))), rel=1e-5)


def test_validation_split_takes_the_last_examples_of_every_array():
    xa, xb, y1, y2 = data(20)
    model = two_in_two_out()
    model.compile(optimizers.SGD(learning_rate=0.0), ['mse', 'sparse_categorical_crossentropy'])
    history = model.fit([xa, xb], [y1, y2], validation_split=0.25, epochs=1, verbose=0)
    held_out = model.evaluate([xa[15:], xb[15:]], [y1[15:], y2[15:]], verbose=0,
                              return_dict=True)
    assert {key: history.history['val_' + key][0] for key in held_out} == \
        pytest.approx(held_out)


def test_a_single_output_logs_and_returns_as_before():
    minidl.random.seed(3)
    model = models.Sequential([layers.Dense(2, activation='softmax', input_shape=(3,),
                                            name='probs')])
    x, y = np.random.default_rng(3).normal(size=(8, 3)), np.arange(8) % 2
    model.compile('sgd', {'probs': 'sparse_categorical_crossentropy'})
    assert model.output_names == ['probs'] and model.metrics_names == ['loss']
    assert isinstance(model.train_on_batch([x], y), float)
    model.compile('sgd', 'sparse_categorical_crossentropy', ['accuracy'])
    assert model.metrics_names == ['loss', 'accuracy']
    assert len(model.test_on_batch(x, y)) == 2
    assert list(model.fit(x, y, verbose=0).history) == ['loss', 'accuracy']


XA, XB, Y1, Y2 = data()


@pytest.mark.parametrize('x, y, message', [
    (XA, [Y1, Y2], r"fit: x must hold one array for each of the 2 inputs \(a, b\), in a list "
                   r"in that order or a dict by name; got one array of shape \(24, 4\)"),
    ([XA, XB, XB], [Y1, Y2], 'fit: x must hold one array .* got a list of 3'),
    ({'a': XA, 'c': XB}, [Y1, Y2], r"fit: x names 'c', not among the inputs of the model "
                                   r"\(a, b\)"),
    ({'a': XA}, [Y1, Y2], "fit: x has no array for input 'b'; it has 'a'"),
    ([XA, XB[:19]], [Y1, Y2], "fit: x for input 'a' has 24 examples but x for input 'b' has "
                              "19"),
    ([XA, XB], [Y1, Y2[:19]], "fit: x for input 'a' has 24 examples but y for output 'out2' "
                              "has 19"),
    ([XA, XB], {'out1': Y1}, "fit: y has no array for output 'out2'; it has 'out1'"),
    ([XA, XB[:0]], [Y1, Y2], r"fit: x for input 'b' holds no examples \(shape \(0, 3\)\)"),
])
def test_data_that_does_not_match_the_inputs_and_outputs_is_named(x, y, message):
    model = two_in_two_out()
    model.compile('sgd', ['mse', 'sparse_categorical_crossentropy'])
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0)


@pytest.mark.parametrize('compiled, error, message', [
    ({'loss': ['mse']}, ValueError, r'compile: loss is a list of 1 for the 2 output\(s\) out1, '
                                    r'out2; give one per output or a dict by output name'),
    ({'loss': {'out3': 'mse'}}, ValueError, r"compile: loss names 'out3', not among the "
                                            r"outputs of the model \(out1, out2\)"),
    ({'loss': 'mse', 'loss_weights': [1, 'a']}, TypeError,
     "compile: loss_weights for output 'out2' must be a number, got 'a'"),
    ({'loss': 'mse', 'metrics': [['acc'], ['acc'], []]}, ValueError,
     'compile: metrics is a list of 3 for the 2 output'),
    ({'loss': [None, None]}, ValueError, 'gives no output of model.* a loss'),
])
def test_compile_arguments_that_do_not_match_the_outputs_are_named(compiled, error, message):
    with pytest.raises(error, match=message):
        two_in_two_out().compile('sgd', **compiled)


def test_errors_inside_a_batch_name_the_batch_and_the_output():
    xa, xb, y1, y2 = data()
    model = two_in_two_out()
    model.compile('sgd', ['mse', 'sparse_categorical_crossentropy'])
    with pytest.raises(ValueError, match=r"^batch 1 of epoch 1 \(examples 0-7 of x\): output "
                                         r"'out2': sparse_categorical_crossentropy: label 7 at "
                                         r"index 5 of the batch is out of range for 3 classes"):
        model.fit([xa, xb], [y1, np.where(np.arange(24) == 5, 7, y2)], batch_size=8,
                  shuffle=False, verbose=0)
    with pytest.raises(ValueError, match=r'^batch 2 of epoch 1: the batch holds no examples '
                                         r"\(x for input 'a' of shape \(0, 4\)\)"):
        model.fit(iter([([xa, xb], [y1, y2]), ([xa[:0], xb[:0]], [y1[:0], y2[:0]])]),
                  steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match="^x for input 'a' has 24 examples but x for input "
                                         "'b' has 3"):
        model.train_on_batch([xa, xb[:3]], [y1, y2])


def test_outputs_of_one_layer_are_named_apart_as_tf_keras_names_them():
    a, b = layers.Input((4,)), layers.Input((4,))
    shared = layers.Dense(1, name='d')
    model = models.Model([a, b], [shared(a), shared(b), layers.Dense(2, name='d_1')(a)])
    assert model.output_names == ['d', 'd_1', 'd_1_1']  # tf-keras 2.21's names
    model.compile('sgd', 'mse')
    ones = np.ones((4, 4))
    history = model.fit([ones, ones], [ones[:, :1], ones[:, :1], ones[:, :2]], verbose=0)
    assert list(history.history) == ['loss', 'd_loss', 'd_1_loss', 'd_1_1_loss']
