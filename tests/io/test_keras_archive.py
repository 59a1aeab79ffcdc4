"""Keras 3 ``.keras`` archives: minidl's round trip is exact and spelled as Keras 3's, and a
damaged, foreign or crafted archive is a WeightFileError naming the file."""
import functools
import gzip
import io
import json
import struct
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mutation
from minidl import layers, models, optimizers
from minidl.io import WeightFileError

FIXTURE = gzip.decompress((Path(__file__).parent / 'fixtures' /
                           'k3_functional.keras.gz').read_bytes())  # written by Keras 3.15


def convnet():
    """A small Sequential with distinct weights: Conv2D, BatchNormalization, Dense."""
    model = models.Sequential([layers.Conv2D(2, 3, input_shape=(5, 5, 1), name='conv'),
                               layers.BatchNormalization(name='bn'), layers.Flatten(),
                               layers.Dense(2, name='out')])
    model.set_weights([np.arange(w.size, dtype=np.float32).reshape(w.shape) / (k + 1) + 1
                       for k, w in enumerate(model.get_weights())])
    return model


def same_weights(got, want):
    return len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))


def rewrite(path, **members):
    """Replace members of the archive at ``path`` (bytes, or None to leave one out)."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents.update(members)
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in contents.items():
            if data is not None:
                archive.writestr(name, data)


def patch_directory(path, member, offset, fmt, value):
    """Overwrite a field of ``member``'s central directory entry (the entry that zipfile
    trusts for sizes and flags)."""
    data = bytearray(path.read_bytes())
    at = data.find(b'PK\x01\x02')
    while data[at + 46:at + 46 + len(member)] != member.encode():
        at = data.find(b'PK\x01\x02', at + 1)
    struct.pack_into(fmt, data, at + offset, value)
    path.write_bytes(bytes(data))


def test_the_round_trip_is_exact_and_keeps_names_and_order(tmp_path):
    model = convnet()
    model.save(tmp_path / 'm.keras')
    loaded = models.load_model(tmp_path / 'm.keras')
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert same_weights(loaded.get_weights(), model.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 1)).astype(np.float32)
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_the_archive_is_laid_out_as_keras3_writes_it(tmp_path):
    convnet().save(tmp_path / 'm.keras')
    with zipfile.ZipFile(tmp_path / 'm.keras') as archive:
        assert archive.namelist() == ['metadata.json', 'config.json', 'model.weights.h5']
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        assert json.loads(archive.read('metadata.json'))['keras_version'] == '3.15.1'
        config = json.loads(archive.read('config.json'))
        weights = h5py.File(io.BytesIO(archive.read('model.weights.h5')), 'r')
    assert (config['module'], config['class_name']) == ('keras', 'Sequential')
    assert config['config']['layers'][0]['config']['batch_shape'] == [None, 5, 5, 1]
    assert sorted(weights['layers']) == ['batch_normalization', 'conv2d', 'dense', 'flatten']
    assert [weights[f'layers/batch_normalization/vars/{i}'].shape for i in range(4)] == [(2,)] * 4
    assert weights['layers/conv2d/vars'].attrs['name'] == b'conv'


def test_an_archive_is_recognised_by_its_content(tmp_path):
    model = convnet()
    model.save(tmp_path / 'm.keras')
    (tmp_path / 'm.keras').rename(tmp_path / 'model.bin')
    assert same_weights(models.load_model(tmp_path / 'model.bin').get_weights(),
                        model.get_weights())


@pytest.mark.parametrize('optimizer', [
    lambda: optimizers.Adam(0.01, beta_1=0.8), lambda: optimizers.SGD(0.05, momentum=0.9),
    lambda: optimizers.RMSprop(0.002, rho=0.8), lambda: optimizers.SGD(0.1, decay=0.5)],
    ids=['adam', 'sgd', 'rmsprop', 'sgd-decay'])
def test_a_compiled_archive_trains_on_exactly_where_it_stopped(tmp_path, optimizer):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 5, 5, 1)).astype(np.float32), rng.integers(0, 2, 6)
    model = convnet()
    model.compile(optimizer(), 'sparse_categorical_crossentropy', ['acc'])
    model.train_on_batch(x, y)
    model.save(tmp_path / 'm.keras')
    loaded = models.load_model(tmp_path / 'm.keras')
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.compiled_metric_names == ['acc']
    for trained in (model, loaded):
        trained.train_on_batch(x, y)
    assert same_weights(loaded.get_weights(), model.get_weights())
    assert models.load_model(tmp_path / 'm.keras', compile=False).optimizer is None


def test_a_compiled_archive_is_spelled_as_keras3_writes_it(tmp_path):
    model = convnet()
    model.compile(optimizers.Adam(0.01), 'sparse_categorical_crossentropy', ['accuracy'])
    model.train_on_batch(np.ones((2, 5, 5, 1), np.float32), np.array([0, 1]))
    model.save(tmp_path / 'm.keras')
    with zipfile.ZipFile(tmp_path / 'm.keras') as archive:
        compiled = json.loads(archive.read('config.json'))['compile_config']
        weights = h5py.File(io.BytesIO(archive.read('model.weights.h5')), 'r')
        stored = [weights[f'optimizer/vars/{i}'][()] for i in range(len(weights['optimizer/vars']))]
    assert compiled['optimizer']['class_name'] == 'Adam'
    assert compiled['optimizer']['module'] == 'keras.optimizers'
    assert (compiled['loss'], compiled['metrics']) == ('sparse_categorical_crossentropy',
                                                       ['accuracy'])
    # iterations, the rate, then momentum and velocity of each of the 6 weights in turn
    assert len(stored) == 2 + 2 * 6 and stored[0] == 1 and np.isclose(stored[1], 0.01)
    assert [a.shape for a in stored[2:6]] == [(3, 3, 1, 2)] * 2 + [(2,)] * 2


def test_an_archive_whose_optimizer_state_does_not_fit_trains_from_a_fresh_optimizer(tmp_path):
    model = convnet()
    model.compile(optimizers.Adam(0.01), 'sparse_categorical_crossentropy')
    model.train_on_batch(np.ones((2, 5, 5, 1), np.float32), np.array([0, 1]))
    model.save(tmp_path / 'm.keras')
    with zipfile.ZipFile(tmp_path / 'm.keras') as archive:
        config = json.loads(archive.read('config.json'))
    config['compile_config']['optimizer']['class_name'] = 'RMSprop'
    config['compile_config']['optimizer']['config'] = {'learning_rate': 0.01}
    rewrite(tmp_path / 'm.keras', **{'config.json': json.dumps(config).encode()})
    with pytest.warns(UserWarning, match=r'optimizer/vars holds 14 variables, RMSprop on '
                                         r'\w+ has 8; the optimizer starts afresh'):
        loaded = models.load_model(tmp_path / 'm.keras')
    assert loaded.optimizer.iterations == 0
    config['compile_config']['optimizer']['class_name'] = 'Ftrl'
    rewrite(tmp_path / 'm.keras', **{'config.json': json.dumps(config).encode()})
    with pytest.raises(WeightFileError, match=r'm.keras: compile_config cannot be built: .*'
                                              r'Ftrl.*compile=False'):
        models.load_model(tmp_path / 'm.keras')


def test_weights_that_do_not_fit_are_all_listed_and_nothing_changes(tmp_path):
    convnet().save(tmp_path / 'm.keras')
    wider = models.Sequential([layers.Conv2D(3, 3, input_shape=(5, 5, 1), name='conv'),
                               layers.BatchNormalization(name='bn'), layers.Flatten(),
                               layers.Dense(2, name='out')])
    wider.save(tmp_path / 'w.keras')
    with zipfile.ZipFile(tmp_path / 'w.keras') as archive:
        rewrite(tmp_path / 'm.keras', **{'config.json': archive.read('config.json')})
    with pytest.raises(WeightFileError, match=r'm\.keras: model\.weights\.h5: weights do not '
                                              r'fit:\n  conv \(/layers/conv2d\) expects '
                                              r'\[\(3, 3, 1, 3\), \(3,\)\].*\n  bn \(.*\) expects '
                                              r'.*\n  out \(/layers/dense\) expects'):
        models.load_model(tmp_path / 'm.keras')


def damage_member_size(path):
    patch_directory(path, 'model.weights.h5', 24, '<I', 1 << 30)


def damage_encryption(path):
    patch_directory(path, 'config.json', 8, '<H', 1)


def extra_layer(path):
    with zipfile.ZipFile(path) as archive:
        data = io.BytesIO(archive.read('model.weights.h5'))
    with h5py.File(data, 'r+') as f:
        f.create_dataset('layers/lstm/vars/0', data=np.zeros(3, np.float32))
    rewrite(path, **{'model.weights.h5': data.getvalue()})


DAMAGES = {
    'not a zip': (lambda path: path.write_bytes(b'PK\x03\x04 not really'), 'damaged or not'),
    'empty': (lambda path: path.write_bytes(b''), 'damaged or not a .keras archive'),
    'missing': (lambda path: path.unlink(), 'no such file'),
    'a directory': (lambda path: (path.unlink(), path.mkdir()), 'not a regular file'),
    'no config': (lambda path: rewrite(path, **{'config.json': None}), 'config.json is missing'),
    'no weights': (lambda path: rewrite(path, **{'model.weights.h5': None}),
                   'model.weights.h5 is missing'),
    'config not JSON': (lambda path: rewrite(path, **{'config.json': b'{"class_name": '}),
                        'config.json is not valid JSON'),
    'config a list': (lambda path: rewrite(path, **{'config.json': b'[1, 2]'}),
                      'config.json cannot be built'),
    'weights not HDF5': (lambda path: rewrite(path, **{'model.weights.h5': b'\x89HDF junk'}),
                         'model.weights.h5: damaged or not an HDF5 file'),
    'member claims a gigabyte': (damage_member_size, 'claims 1073741824 bytes, more than it'),
    'member encrypted': (damage_encryption, 'member config.json is encrypted'),
    'a layer the model lacks': (extra_layer, 'the file holds /layers/lstm, which the model has no layer for'),
}


@pytest.mark.parametrize('name', list(DAMAGES))
def test_broken_archives_raise_weight_file_error_naming_the_file(tmp_path, name):
    path = tmp_path / 'm.keras'
    path.write_bytes(FIXTURE)
    damage, problem = DAMAGES[name]
    damage(path)
    with pytest.raises(WeightFileError) as caught:
        models.load_model(path)
    assert str(caught.value).startswith(f'{path}: ') and problem in str(caught.value)


def read_weights(path):
    return models.load_model(path).get_weights()


@functools.cache
def original_weights():
    """The weights of the unedited fixture."""
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / 'original.keras'
        path.write_bytes(FIXTURE)
        return read_weights(path)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutation.edits(len(FIXTURE)))
def test_damaged_keras_archives_load_unchanged_or_raise(tmp_path, changes):
    original = original_weights()
    mutation.check_read(read_weights, tmp_path / 'm.keras',
                        mutation.apply_edits(FIXTURE, changes), original,
                        sum(w.nbytes for w in original))


def minidl_archive():
    """``(members, weights)`` of a small archive minidl wrote: its datasets carry checksums,
    which Keras's lack (in Keras's archives only the zip's CRC protects the weights)."""
    model = models.Sequential([layers.Dense(4, input_shape=(3,), name='hidden'),
                               layers.Dense(2, name='out')])
    with tempfile.TemporaryDirectory() as work:
        model.save(Path(work) / 'm.keras')
        with zipfile.ZipFile(Path(work) / 'm.keras') as archive:
            return {name: archive.read(name) for name in archive.namelist()}, \
                model.get_weights()


MEMBERS, WEIGHTS = minidl_archive()


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_members_with_valid_checksums_load_unchanged_or_raise(tmp_path, data):
    """Byte edits of a whole archive mostly hit CRC-protected members: here one member is
    edited and zipped again with a correct CRC, so the JSON and HDF5 readers see the damage."""
    name = data.draw(st.sampled_from(['config.json', 'model.weights.h5']))
    edited = mutation.apply_edits(MEMBERS[name], data.draw(mutation.edits(len(MEMBERS[name]))))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, 'w') as out:
        for member, content in MEMBERS.items():
            out.writestr(member, edited if member == name else content)
    mutation.check_read(read_weights, tmp_path / 'm.keras', archive.getvalue(), WEIGHTS,
                        sum(w.nbytes for w in WEIGHTS))


def test_load_weights_takes_the_weights_of_an_archive(tmp_path):
    model = convnet()
    model.save(tmp_path / 'm.keras')
    other = models.Sequential([layers.Conv2D(2, 3, input_shape=(5, 5, 1)),
                               layers.BatchNormalization(), layers.Flatten(), layers.Dense(2)])
    other.load_weights(tmp_path / 'm.keras')
    assert same_weights(other.get_weights(), model.get_weights())
    with pytest.raises(WeightFileError, match=r'm.keras: by_name=True is for Keras 2 h5 files'):
        other.load_weights(tmp_path / 'm.keras', by_name=True)


@pytest.mark.parametrize('suffix', ['.h5', '.keras'])
@pytest.mark.parametrize('loss, loss_weights, metrics', [
    (['mse', 'binary_crossentropy'], [1.0, 0.5], ['acc']),
    ({'score': 'mse', 'flag': 'binary_crossentropy'}, {'flag': 2.0},
     {'score': ['mae'], 'flag': ['acc', 'mse']}),
    ({'flag': 'binary_crossentropy'}, None, [['mae'], ['acc']])])
def test_the_compile_settings_of_several_outputs_survive_a_file(tmp_path, suffix, loss,
                                                                loss_weights, metrics):
    x = layers.Input((3,))
    hidden = layers.Dense(4, activation='relu')(x)
    model = models.Model(x, [layers.Dense(1, name='score')(hidden),
                             layers.Dense(1, activation='sigmoid', name='flag')(hidden)])
    model.compile(optimizers.Adam(0.01), loss, metrics, loss_weights)
    rng = np.random.default_rng(2)
    data, targets = rng.normal(size=(8, 3)), [rng.normal(size=(8, 1)), rng.integers(0, 2, (8, 1))]
    model.fit(data, targets, epochs=1, verbose=0)
    model.save(tmp_path / f'm{suffix}')
    loaded = models.load_model(tmp_path / f'm{suffix}')
    assert loaded.metrics_names == model.metrics_names
    assert loaded.optimizer.iterations == model.optimizer.iterations
    assert loaded.evaluate(data, targets, verbose=0) == model.evaluate(data, targets, verbose=0)


@pytest.mark.parametrize('suffix', ['.h5', '.keras'])
def test_loss_objects_with_their_settings_survive_a_file(tmp_path, suffix):
    from minidl import losses
    x = layers.Input((3,))
    model = models.Model(x, [layers.Dense(3, name='scores')(x),
                             layers.Dense(3, activation='softmax', name='probs')(x)])
    model.compile('sgd', [losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                          losses.Huber(delta=0.5)])
    model.save(tmp_path / f'm{suffix}')
    loaded = models.load_model(tmp_path / f'm{suffix}')
    assert [type(loss) for loss in loaded.loss] == [losses.CategoricalCrossentropy, losses.Huber]
    assert [loss.get_config() for loss in loaded.loss] == \
        [loss.get_config() for loss in model.loss]
    rng = np.random.default_rng(3)
    data, targets = rng.normal(size=(5, 3)), [np.eye(3)[[0, 1, 2, 0, 1]]] * 2
    assert loaded.evaluate(data, targets, verbose=0) == model.evaluate(data, targets, verbose=0)
