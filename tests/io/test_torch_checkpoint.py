"""PyTorch checkpoints read without PyTorch, and loaded into the matching minidl models.

The checkpoints and PyTorch's outputs on fixed inputs were written by
``data/make_torch_fixtures.py``; these tests need no PyTorch, except those marked ``interop``,
which check crafted files against ``torch.load`` (skipped where PyTorch is not installed).
Crafted and hostile files have their own tests, in test_torch_hostile.py."""
from pathlib import Path

import numpy as np
import pytest

from minidl import layers, models
from minidl.io import WeightFileError, load_torch_weights, read_torch_checkpoint
from minidl.io.torch_checkpoint import is_checkpoint

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


def test_a_misfit_that_cannot_even_be_converted_is_listed_too():
    state = read_torch_checkpoint(DATA / 'tiny_convnet.pt')
    del state['1.running_var']
    state['0.weight'] = state['0.weight'][0, 0]  # a 2-D kernel for a Conv2D
    state['7.weight'] = state['7.weight'][:, :20]  # 20 inputs where Flatten gives 24
    with pytest.raises(ValueError, match=r"(?s)conv2d.* expects \[\(3, 3, 3, 4\), \(4,\)\], "
                                         r"0 gives \{'weight': \(3, 3\), 'bias': \(4,\)\}.*"
                                         r"1 gives \{.*'running_mean': \(4,\)\}.*"
                                         r"7 gives \{'weight': \(5, 20\)"):
        load_torch_weights(tiny_convnet(), state)


def test_only_state_dicts_are_unpickled(tmp_path):
    with pytest.raises(WeightFileError, match=r'holds a .*save model.state_dict\(\), not the '
                                              r'model'):
        read_torch_checkpoint(DATA / 'whole_module.pt')
    (tmp_path / 'notes.pt').write_text('not a checkpoint')
    with pytest.raises(WeightFileError, match='notes.pt: not a PyTorch checkpoint'):
        read_torch_checkpoint(tmp_path / 'notes.pt')


def conv1d_net():
    """minidl's twin of make_torch_fixtures.tiny_conv1d."""
    return models.Sequential([
        layers.Input((7, 2)), layers.Conv1D(3, 3, activation='relu'), layers.Flatten(),
        layers.Dense(2)])


def test_a_training_checkpoint_reads_whole_and_loads_its_state_dict():
    checkpoint = read_torch_checkpoint(DATA / 'tiny_checkpoint.pt')
    assert checkpoint['epoch'] == 3 and list(checkpoint['model']) == [
        '0.weight', '0.bias', '3.weight', '3.bias']
    adam = checkpoint['optimizer']
    assert adam['param_groups'][0]['betas'] == (0.9, 0.999)
    assert adam['param_groups'][0]['params'] == [0, 1, 2, 3]
    assert adam['state'][0]['step'] == 1 and adam['state'][0]['exp_avg'].shape == (3, 2, 3)
    from_file, from_dict = conv1d_net(), conv1d_net()
    load_torch_weights(from_file, DATA / 'tiny_checkpoint.pt')
    load_torch_weights(from_dict, checkpoint['model'])
    x = np.random.default_rng(0).normal(size=(2, 7, 2)).astype(np.float32)
    np.testing.assert_array_equal(from_file.predict(x), from_dict.predict(x))


def test_a_checkpoint_with_several_state_dicts_says_which_key_to_pass():
    checkpoint = read_torch_checkpoint(DATA / 'tiny_checkpoint.pt')
    checkpoint['ema'] = {name: array * 0 for name, array in checkpoint['model'].items()}
    with pytest.raises(WeightFileError, match=r"holds 2 state_dicts, under the keys 'model', "
                                              r"'ema'; pass key= one of them"):
        load_torch_weights(conv1d_net(), checkpoint)
    model = conv1d_net()
    load_torch_weights(model, checkpoint, key='ema')
    assert not any(w.any() for w in model.get_weights())
    with pytest.raises(WeightFileError, match=r"has no key 'net' \(its keys: 'model', "
                                              r"'optimizer', 'epoch', 'ema'\)"):
        load_torch_weights(conv1d_net(), checkpoint, key='net')
    with pytest.raises(WeightFileError, match="'optimizer' is not a state_dict"):
        load_torch_weights(conv1d_net(), checkpoint, key='optimizer')
    with pytest.raises(WeightFileError, match=r"the checkpoint dict: holds no state_dict .*"
                                              r"\('optimizer', 'epoch'\)"):
        load_torch_weights(conv1d_net(), {'optimizer': checkpoint['optimizer'], 'epoch': 3})


@pytest.mark.parametrize('name', ['tiny_convnet.pt', 'tiny_convnet_legacy.pt'])
def test_load_weights_knows_a_torch_file_by_its_content(name, tmp_path):
    model = tiny_convnet()
    model.load_weights(DATA / name)
    io = np.load(DATA / 'tiny_convnet_io.npz')
    np.testing.assert_allclose(model.predict(io['x']), io['y'], rtol=1e-5, atol=1e-5)
    with pytest.raises(WeightFileError, match='matched by module order'):
        model.load_weights(DATA / name, by_name=True)
    tiny_convnet().save(tmp_path / 'm.keras')
    assert not is_checkpoint(tmp_path / 'm.keras') and is_checkpoint(DATA / name)
