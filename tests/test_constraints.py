"""Constraints: each projection's result, lookup by name, and their use in layers and training."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from minidl import constraints, layers, models, optimizers
from minidl.backends import to_device


@st.composite
def weight_and_axis(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape),
                         unique=True))
    w = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape) * 3
    return w.astype(np.float32), axes[0] if len(axes) == 1 else sorted(axes)


# ``xp`` only names an array module, so nothing needs resetting between drawn examples.
stateless_xp = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def slice_norms(w, axis):
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt((w.astype(np.float64) ** 2).sum(axis=axis, keepdims=True))


@stateless_xp
@given(case=weight_and_axis(), limit=st.floats(0.5, 6))
def test_max_norm_caps_long_slices_and_keeps_short_ones(xp, case, limit):
    w, axis = case
    out = to_device(constraints.MaxNorm(limit, axis)(xp.asarray(w)), 'cpu')
    assert out.shape == w.shape and out.dtype == np.float32
    before, after = slice_norms(w, axis), slice_norms(out, axis)
    assert (after <= limit * (1 + 1e-5)).all()
    np.testing.assert_allclose(after, np.minimum(before, limit), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out * before, w * after, rtol=1e-4, atol=1e-5)  # same direction


@stateless_xp
@given(case=weight_and_axis())
def test_unit_norm_gives_each_slice_length_one(xp, case):
    w, axis = case
    out = to_device(constraints.UnitNorm(axis)(xp.asarray(w)), 'cpu')
    np.testing.assert_allclose(slice_norms(out, axis), 1, rtol=1e-5)


@stateless_xp
@given(case=weight_and_axis(), rate=st.sampled_from([1.0, 0.5]))
def test_min_max_norm_moves_norms_into_the_range_at_the_rate(xp, case, rate):
    w, axis = case
    out = to_device(constraints.MinMaxNorm(1.0, 2.0, rate, axis)(xp.asarray(w)), 'cpu')
    before = slice_norms(w, axis)
    np.testing.assert_allclose(slice_norms(out, axis),
                               rate * np.clip(before, 1, 2) + (1 - rate) * before, rtol=1e-5)


def test_non_neg_zeroes_negative_entries_only(xp):
    w = xp.asarray(np.array([[-2.0, 0.0], [3.5, -0.1]], np.float32))
    out = to_device(constraints.NonNeg()(w), 'cpu')
    np.testing.assert_array_equal(out, [[0, 0], [3.5, 0]])
    assert out.dtype == np.float32 and not np.signbit(out).any()


@pytest.mark.parametrize('identifier, cls', [
    ('max_norm', constraints.MaxNorm), ('maxnorm', constraints.MaxNorm),
    ('MaxNorm', constraints.MaxNorm), ('non_neg', constraints.NonNeg),
    ('unit_norm', constraints.UnitNorm), ('min_max_norm', constraints.MinMaxNorm),
    ({'class_name': 'MaxNorm', 'config': {'max_value': 3}}, constraints.MaxNorm)])
def test_get_builds_constraints_from_names_and_configs(identifier, cls):
    assert type(constraints.get(identifier)) is cls
    assert constraints.maxnorm is constraints.max_norm is constraints.MaxNorm


def test_get_passes_objects_through_and_rejects_the_unknown():
    limit = constraints.MaxNorm(3, axis=[0, 1, 2])
    assert constraints.get(limit) is limit and constraints.get(None) is None
    with pytest.raises(ValueError, match="unknown constraint 'max_len'.*MaxNorm"):
        constraints.get('max_len')
    with pytest.raises(TypeError, match='constraint must be'):
        constraints.get(3)


def test_serialize_round_trips_and_refuses_plain_functions():
    limit = constraints.MaxNorm(3, axis=[0, 1, 2])
    config = constraints.serialize(limit)
    assert config == {'class_name': 'MaxNorm', 'config': {'max_value': 3.0, 'axis': [0, 1, 2]}}
    assert constraints.get(config).get_config() == limit.get_config()
    with pytest.raises(TypeError, match='only Constraint objects have a config'):
        constraints.serialize(lambda w: w)


def constrained_net():
    """A small convnet whose layers each carry a constraint, compiled with a large rate so
    that unconstrained weights would leave their sets at once."""
    model = models.Sequential([
        layers.Input((6, 6, 2)),
        layers.Conv2D(4, 3, activation='relu',
                      kernel_constraint=constraints.MaxNorm(0.5, axis=[0, 1, 2])),
        layers.BatchNormalization(gamma_constraint='non_neg'),
        layers.Flatten(),
        layers.Dense(3, activation='softmax', kernel_constraint='unit_norm',
                     bias_constraint=constraints.NonNeg())])
    model.compile(optimizer=optimizers.SGD(learning_rate=3.0), loss='categorical_crossentropy')
    return model


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((32, 6, 6, 2)).astype(np.float32),
            np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)])


def assert_constraints_hold(model):
    conv, norm, _, dense = model.layers
    assert (slice_norms(conv.kernel.data, [0, 1, 2]) <= 0.5 * (1 + 1e-5)).all()
    assert (norm.gamma.data >= 0).all()
    np.testing.assert_allclose(slice_norms(dense.kernel.data, 0), 1, rtol=1e-5)
    assert (dense.bias.data >= 0).all()


def test_training_keeps_every_weight_inside_its_constraint():
    model = constrained_net()
    model.fit(*data(), epochs=2, batch_size=8, verbose=0)
    assert_constraints_hold(model)


def test_constraints_survive_save_and_load(tmp_path):
    model = constrained_net()
    model.save(tmp_path / 'constrained.h5')
    restored = models.load_model(tmp_path / 'constrained.h5')
    for layer, again in zip(model.layers, restored.layers):
        assert again.get_config() == layer.get_config()
    restored.fit(*data(), epochs=1, batch_size=8, verbose=0)
    assert_constraints_hold(restored)


def test_embedding_rows_can_be_held_to_unit_length():
    model = models.Sequential([
        layers.Embedding(10, 4, embeddings_constraint=constraints.UnitNorm(axis=1),
                         input_length=5),
        layers.GlobalMaxPooling1D(), layers.Dense(1, activation='sigmoid')])
    model.compile(optimizer=optimizers.SGD(learning_rate=5.0), loss='binary_crossentropy')
    ids = np.random.default_rng(1).integers(0, 10, (16, 5))
    model.fit(ids, (ids[:, 0] > 4).astype(np.float32), epochs=1, batch_size=4, verbose=0)
    np.testing.assert_allclose(slice_norms(model.layers[0].embeddings.data, 1), 1, rtol=1e-5)
