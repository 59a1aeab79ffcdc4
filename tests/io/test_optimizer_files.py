"""Optimizer state and settings in Keras files, without Keras: every optimizer, option and
schedule of ``tests/fixtures/make_optimizers.py`` survives ``model.save`` to ``.h5`` (tf-keras's
spelling) and ``.keras`` (Keras 3's) and trains on exactly as before; the variables are written
in Keras's names and order (the live checks against Keras are in
``test_keras_weights_roundtrip.py``)."""
import io
import json
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from minidl import layers, models, optimizers

sys.path.insert(0, str(Path(__file__).parents[1] / 'fixtures'))
import make_optimizers as cases  # noqa: E402

X = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]


def trained(class_name, kwargs, steps=2):
    model = models.Sequential([layers.Dense(4, activation='relu', input_shape=(6,), name='h'),
                               layers.Dense(3, activation='softmax', name='out')])
    model.set_weights([np.linspace(-1, 1, w.size, dtype=np.float32).reshape(w.shape)
                       for w in model.get_weights()])
    model.compile(cases.build(optimizers, class_name, kwargs), 'categorical_crossentropy')
    for _ in range(steps):
        model.train_on_batch(X, Y)
    return model


def state(model):
    iterations, slots = model.optimizer.get_state(model.trainable_weights)
    return iterations, [{name: array.tolist() for name, array in slot.items()} for slot in slots]


@pytest.mark.parametrize('suffix', ['.h5', '.keras'])
@pytest.mark.parametrize('case', list(cases.CASES))
def test_optimizer_state_and_settings_survive_saving(tmp_path, case, suffix):
    ours = trained(*cases.CASES[case])
    ours.save(tmp_path / f'm{suffix}')
    loaded = models.load_model(tmp_path / f'm{suffix}')
    assert type(loaded.optimizer) is type(ours.optimizer)
    assert loaded.optimizer.get_config() == ours.optimizer.get_config()
    assert state(loaded) == state(ours)
    ours.train_on_batch(X, Y)
    loaded.train_on_batch(X, Y)
    for got, expected in zip(loaded.get_weights(), ours.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_rmsprop_slots_are_written_group_by_group_in_tf_keras_names(tmp_path):
    ours = trained('RMSprop', {'momentum': 0.5, 'centered': True})
    ours.save(tmp_path / 'm.h5')
    with h5py.File(tmp_path / 'm.h5') as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f['optimizer_weights'].attrs['weight_names']]
    weights = ['h/kernel', 'h/bias', 'out/kernel', 'out/bias']
    assert names == ['iteration:0'] + [f'RMSprop/{slot}/{w}:0' for slot in (
        'velocity', 'momentum', 'average_gradient') for w in weights]


@pytest.mark.parametrize('class_name, kwargs, count', [
    ('Adam', {'amsgrad': True}, 2 + 3 * 4),
    ('Nadam', {}, 2 + 2 * 4 + 1),  # and its product of momenta, last
    ('SGD', {'learning_rate': ('ExponentialDecay', {'initial_learning_rate': 0.1,
                                                    'decay_steps': 3, 'decay_rate': 0.5})}, 1),
])
def test_keras3_variables_are_counted_as_keras_keeps_them(tmp_path, class_name, kwargs, count):
    ours = trained(class_name, kwargs)
    ours.save(tmp_path / 'm.keras')
    with zipfile.ZipFile(tmp_path / 'm.keras') as archive:
        weights = h5py.File(io.BytesIO(archive.read('model.weights.h5')), 'r')
        compiled = json.loads(archive.read('config.json'))['compile_config']
        assert len(weights['optimizer/vars']) == count
        rate = compiled['optimizer']['config']['learning_rate']
        if isinstance(kwargs.get('learning_rate'), tuple):
            assert (rate['module'], rate['class_name']) == ('keras.optimizers.schedules',
                                                             'ExponentialDecay')
        if class_name == 'Nadam':
            assert weights[f'optimizer/vars/{count - 1}'][()] == pytest.approx(
                ours.optimizer.u_product, rel=1e-7)
