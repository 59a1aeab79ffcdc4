"""PyTorch checkpoints read without PyTorch, and loaded into the matching minidl models.

The checkpoints and PyTorch's outputs on fixed inputs were written by
``data/make_torch_fixtures.py``; these tests need no PyTorch."""
from pathlib import Path

import numpy as np
import pytest

from minidl import layers, models
from minidl.io import load_torch_weights, read_torch_checkpoint

DATA = Path(__file__).parent / 'data'


def tiny_convnet():
    """minidl's twin of make_torch_fixtures.tiny_convnet (channels-last)."""
    return models.Sequential([
        layers.Input((8, 8, 3)), layers.Conv2D(4, 3, padding='same'),
        layers.BatchNormalization(epsilon=1e-5), layers.Activation('relu'),
        layers.MaxPooling2D(), layers.Conv2D(6, 3, use_bias=False, activation='relu'),
        layers.Flatten(), layers.Dense(5)])


def test_read_gives_the_state_dict_as_arrays_in_module_order():
    state = read_torch_checkpoint(DATA / 'tiny_convnet.pt')
    assert list(state) == ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean',
                           '1.running_var', '1.num_batches_tracked', '4.weight', '7.weight',
                           '7.bias']
    assert state['0.weight'].shape == (4, 3, 3, 3) and state['0.weight'].dtype == np.float32
    assert state['7.weight'].shape == (5, 24)
    assert state['1.num_batches_tracked'].dtype == np.int64
    assert state['1.num_batches_tracked'].shape == ()


@pytest.mark.parametrize('name, build', [
    ('tiny_convnet', tiny_convnet),
    ('tiny_conv1d', lambda: models.Sequential([
        layers.Input((7, 2)), layers.Conv1D(3, 3, activation='relu'), layers.Flatten(),
        layers.Dense(2)]))])
def test_loaded_models_compute_what_pytorch_computed(name, build):
    model = build()
    load_torch_weights(model, DATA / f'{name}.pt')
    io = np.load(DATA / f'{name}_io.npz')
    np.testing.assert_allclose(model.predict(io['x']), io['y'], rtol=1e-5, atol=1e-5)


def test_a_model_that_does_not_fit_lists_every_misfit():
    wider = models.Sequential([
        layers.Input((8, 8, 3)), layers.Conv2D(8, 3, padding='same'),
        layers.BatchNormalization(), layers.MaxPooling2D(), layers.Conv2D(6, 3, use_bias=False),
        layers.Flatten(), layers.Dense(5)])
    with pytest.raises(ValueError, match=r'(?s)conv2d.* expects \[\(3, 3, 3, 8\), \(8,\)\], 0 '
                                         r'gives \[\(3, 3, 3, 4\), \(4,\)\].*batch_normalization'):
        load_torch_weights(wider, DATA / 'tiny_convnet.pt')
    shorter = models.Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match='the checkpoint has 4 modules with parameters'):
        load_torch_weights(shorter, DATA / 'tiny_convnet.pt')


def test_only_state_dicts_are_unpickled(tmp_path):
    with pytest.raises(ValueError, match=r'holds a .*save model.state_dict\(\), not the model'):
        read_torch_checkpoint(DATA / 'whole_module.pt')
    (tmp_path / 'notes.pt').write_text('not a checkpoint')
    with pytest.raises(ValueError, match='not a PyTorch checkpoint'):
        read_torch_checkpoint(tmp_path / 'notes.pt')
