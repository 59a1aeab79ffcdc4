"""Losses by name (probability and fused-logit paths agree) and metrics as Keras picks them."""
import re

import numpy as np
import pytest

import minidl
import minidl.functions as F
from minidl import losses, metrics


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize('name, target', [
    ('categorical_crossentropy', np.eye(4)[[0, 3, 1]]),
    ('sparse_categorical_crossentropy', np.array([0, 3, 1])),
])
def test_cross_entropy_from_probabilities_equals_the_fused_form(name, target):
    logits = np.random.default_rng(0).standard_normal((3, 4))
    loss = losses.get(name)
    from_probs = loss(target, minidl.Tensor(_softmax(logits))).item()
    fused = loss.on_logits(target, minidl.Tensor(logits)).item()
    assert from_probs == pytest.approx(fused, rel=1e-6)
    assert loss.fused_activation == 'softmax'


def test_binary_cross_entropy_paths_agree_and_accept_flat_targets():
    logits = np.array([[2.0], [-1.0], [0.5]])
    target = np.array([1.0, 0.0, 0.0])
    loss = losses.get('binary_crossentropy')
    probs = 1 / (1 + np.exp(-logits))
    assert loss(target, minidl.Tensor(probs)).item() == pytest.approx(
        loss.on_logits(target, minidl.Tensor(logits)).item(), rel=1e-6)


def test_mse_and_custom_and_unknown_losses():
    assert losses.get('mse')(np.zeros(3), minidl.Tensor(np.array([1.0, 2.0, 2.0]))).item() == 3
    custom = losses.get(lambda t, p: F.sum(p))
    assert custom(None, minidl.Tensor(np.ones(2))).item() == 2
    with pytest.raises(ValueError, match='unknown loss'):
        losses.get('hinge_of_fate')


@pytest.mark.parametrize('y_true, y_pred, fn', [
    (np.zeros(4), np.zeros((4, 1)), metrics.binary_accuracy),  # mse on one column: binary
    (np.zeros((4, 3)), np.zeros((4, 3)), metrics.categorical_accuracy),
    (np.zeros(4, int), np.zeros((4, 3)), metrics.sparse_categorical_accuracy),
    (np.zeros((4, 1), int), np.zeros((4, 3)), metrics.sparse_categorical_accuracy)])
def test_acc_follows_the_shapes_as_tf_keras_and_keeps_the_name(y_true, y_pred, fn):
    assert metrics.get('acc') == ('acc', metrics.accuracy_for_shapes)
    assert metrics.get('accuracy')[0] == 'accuracy'
    np.testing.assert_array_equal(metrics.accuracy_for_shapes(y_true, y_pred),
                                  fn(y_true, y_pred))


def test_acc_of_a_regression_on_one_column_is_binary_accuracy_not_always_one():
    model = minidl.models.Sequential([minidl.layers.Dense(1, input_shape=(2,))])
    model.compile('sgd', 'mse', metrics=['acc'])
    model.set_weights([np.array([[1.0], [0.0]], np.float32), np.zeros(1, np.float32)])
    x = np.array([[0.9, 0], [0.1, 0], [0.8, 0], [0.2, 0]], np.float32)
    assert model.evaluate(x, np.array([1.0, 1.0, 0.0, 0.0]), verbose=0)[1] == 0.5


def test_binary_accuracy_thresholds_the_predictions_only():
    soft = np.array([[0.3], [0.7], [1.0], [0.0]])
    assert metrics.binary_accuracy(soft, np.array([[0.2], [0.8], [0.9], [0.1]])).tolist() == \
        [0, 0, 1, 1]


def test_accuracies():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    assert metrics.sparse_categorical_accuracy(labels, probs).tolist() == [1, 0, 0]
    assert metrics.categorical_accuracy(np.eye(3)[labels], probs).tolist() == [1, 0, 0]
    assert metrics.sparse_top_k_categorical_accuracy(labels, probs, k=2).tolist() == [1, 1, 0]
    assert metrics.top_k_categorical_accuracy(np.eye(3)[labels], probs, k=3).tolist() == [1] * 3
    assert metrics.binary_accuracy(np.array([1, 0, 1]), np.array([[0.9], [0.6], [0.2]]))\
        .tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match='unknown metric'):
        metrics.get('precision@k')


PREDICTIONS = minidl.Tensor(_softmax(np.random.default_rng(3).standard_normal((20, 3))))


@pytest.mark.parametrize('name, target, fused', [
    ('categorical_crossentropy', np.array([0, 2, 1] * 6 + [0, 1]), True),  # class indices
    ('categorical_crossentropy', np.full((20, 1), 0.5), True),
    ('categorical_crossentropy', np.eye(3)[[0] * 20][:, :2], False),
    ('mse', np.zeros((20, 1)), False),
    ('binary_crossentropy', np.zeros((20, 1)), True),
    ('binary_crossentropy', np.zeros(20), False)])
def test_targets_that_would_broadcast_are_refused_naming_the_loss_and_both_shapes(
        name, target, fused):
    loss = losses.get(name)
    compute = loss.on_logits if fused else loss
    with pytest.raises(ValueError, match=rf'{loss.name}: targets of shape '
                                         rf'{re.escape(str(target.shape))} do not match '
                                         rf'predictions of shape \(20, 3\)'):
        compute(target, PREDICTIONS)


def test_categorical_crossentropy_with_indices_points_to_the_sparse_loss():
    with pytest.raises(ValueError, match='class indices need sparse_categorical_crossentropy'):
        losses.get('categorical_crossentropy')(np.zeros(20), PREDICTIONS)


def test_targets_that_differ_only_by_size_one_axes_are_taken():
    column = minidl.Tensor(np.full((20, 1), 0.25))
    assert losses.get('mse')(np.zeros(20), column).item() == pytest.approx(0.0625)
    assert F.mean_squared_error(column, minidl.Tensor(np.zeros(20))).item() == \
        pytest.approx(0.0625)
    with pytest.raises(ValueError, match=r'mean_squared_error: targets of shape \(20, 3\)'):
        F.mean_squared_error(column, minidl.Tensor(np.zeros((20, 3))))


@pytest.mark.parametrize('fn', [metrics.binary_accuracy, metrics.categorical_accuracy,
                                metrics.top_k_categorical_accuracy,
                                metrics.mean_squared_error, metrics.mean_absolute_error])
def test_metrics_refuse_targets_that_would_broadcast(fn):
    with pytest.raises(ValueError, match=rf'{fn.__name__}: targets of shape \(20,\) do not '
                                         rf'match predictions of shape \(20, 3\)'):
        fn(np.zeros(20), PREDICTIONS.data)


def test_string_targets_are_named_not_converted():
    with pytest.raises(ValueError, match='categorical_crossentropy: targets must be numbers, '
                                         'got an array of dtype <U1'):
        losses.get('categorical_crossentropy')(np.full((20, 3), 'a'), PREDICTIONS)


RNG = np.random.default_rng(5)
LOGITS = RNG.normal(0, 2, (6, 4))
LABELS = np.array([0, 3, 2, 1, 1, 0])


@pytest.mark.parametrize('loss, target, activation, name', [
    (losses.CategoricalCrossentropy(label_smoothing=0.1), np.eye(4)[LABELS], _softmax,
     'softmax'),
    (losses.SparseCategoricalCrossentropy(), LABELS, _softmax, 'softmax'),
    (losses.BinaryCrossentropy(label_smoothing=0.2), (LABELS[:, None] > np.arange(4)) * 1.0,
     lambda z: 1 / (1 + np.exp(-z)), 'sigmoid')])
def test_loss_objects_fuse_and_the_fused_form_equals_the_clipped_one_inside_the_clip(
        check_grad, loss, target, activation, name):
    """Away from the clip (every probability in [1e-7, 1 - 1e-7]) the fused form equals the
    probability form up to the eps Keras adds (binary: about eps / p)."""
    assert loss.fused_activation == name
    fused = loss.on_logits(target, minidl.Tensor(LOGITS)).item()
    assert loss(target, minidl.Tensor(activation(LOGITS))).item() == pytest.approx(fused,
                                                                                   rel=1e-5)
    check_grad(lambda z: loss.on_logits(target, z), LOGITS)
    check_grad(lambda p: loss(target, p), activation(LOGITS))


def test_from_logits_objects_do_not_fuse_and_take_logits():
    for loss in (losses.CategoricalCrossentropy(from_logits=True),
                 losses.SparseCategoricalCrossentropy(from_logits=True),
                 losses.BinaryCrossentropy(from_logits=True)):
        assert loss.fused_activation is None
    sparse = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert sparse(LABELS, minidl.Tensor(LOGITS)).item() == pytest.approx(
        losses.get('sparse_categorical_crossentropy').on_logits(LABELS, minidl.Tensor(LOGITS))
        .item())


def test_cross_entropies_on_sequences_of_scores():
    """(N, steps, K) outputs: the fused and the probability forms, and sparse labels (N,
    steps)."""
    logits = RNG.normal(0, 1, (2, 3, 4))
    labels = RNG.integers(0, 4, (2, 3))
    probs = minidl.Tensor(_softmax(logits))
    for loss, target in ((losses.SparseCategoricalCrossentropy(), labels),
                         (losses.CategoricalCrossentropy(), np.eye(4)[labels])):
        per_step = loss.call(target, probs)
        assert per_step.shape == (2, 3)
        assert loss.on_logits(target, minidl.Tensor(logits)).item() == pytest.approx(
            per_step.mean().item(), rel=1e-6)
    assert metrics.sparse_categorical_accuracy(labels, probs.data).shape == (6,)


@pytest.mark.parametrize('loss, config', [
    (losses.Huber(0.5, reduction='sum'), {'name': 'huber_loss', 'reduction': 'sum',
                                          'delta': 0.5}),
    (losses.CategoricalCrossentropy(label_smoothing=0.1),
     {'name': 'categorical_crossentropy', 'reduction': 'sum_over_batch_size',
      'from_logits': False, 'label_smoothing': 0.1, 'axis': -1}),
    (losses.KLDivergence(), {'name': 'kl_divergence', 'reduction': 'sum_over_batch_size'})])
def test_loss_configs_round_trip(loss, config):
    assert loss.get_config() == config
    assert type(loss).from_config(config).get_config() == config


@pytest.mark.parametrize('name, cls', [('MAE', losses.MeanAbsoluteError),
                                       ('mae', losses.MeanAbsoluteError),
                                       ('huber_loss', losses.Huber), ('huber', losses.Huber),
                                       ('kld', losses.KLDivergence),
                                       ('kullback_leibler_divergence', losses.KLDivergence),
                                       (losses.binary_crossentropy, losses.BinaryCrossentropy)])
def test_losses_by_name_and_by_function(name, cls):
    assert type(losses.get(name)) is cls


def test_reductions_and_per_example_functions():
    y, p = np.array([[0.0, 1.0], [2.0, 0.0]]), minidl.Tensor(np.array([[0.5, 1.0], [0.0, 3.0]]))
    assert losses.mean_absolute_error(y, p).data.tolist() == [0.25, 2.5]
    assert losses.MeanAbsoluteError(reduction='sum')(y, p).item() == 2.75
    assert losses.MeanSquaredError(reduction='none')(y, p).data.tolist() == [0.125, 6.5]
    assert losses.huber(y, p).data.tolist() == [0.0625, 2.0]
    with pytest.raises(ValueError, match="Huber: reduction must be one of .* got 'mean'"):
        losses.Huber(reduction='mean')


@pytest.mark.parametrize('loss', [losses.MeanAbsoluteError(), losses.Huber(0.7),
                                  losses.KLDivergence(), losses.MeanSquaredError()])
def test_regression_losses_have_float64_gradients(check_grad, loss):
    rng = np.random.default_rng(2)
    target = rng.uniform(0.1, 1, (3, 4))
    check_grad(lambda p: loss(target, p), rng.uniform(0.1, 1, (3, 4)) + 0.05)
