"""Keras-layout h5 files: what is saved comes back exactly, and a damaged, foreign or
crafted file is a WeightFileError naming the file, never a hang, a huge allocation or a silently
changed weight. Every file is built in the test."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

import minidl
from minidl import layers, models, optimizers
from minidl.io import WeightFileError, keras_config

ROOT = Path(__file__).parents[2]


def dense_net():
    """Two Dense layers, 3 -> 4 -> 2, with distinct weights."""
    model = models.Sequential([layers.Dense(4, input_shape=(3,), name='hidden'),
                               layers.Dense(2, name='out')])
    model.set_weights([np.arange(w.size, dtype=np.float32).reshape(w.shape) / (k + 1)
                       for k, w in enumerate(model.get_weights())])
    return model


def same_weights(got, want):
    return len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))


def run_python(code, timeout=60):
    """Run ``code`` in a fresh interpreter on this checkout; a hang inside libhdf5 holds the
    GIL, so only another process can stop it. Returns (returncode, output)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f'timed out after {timeout} s (a hang inside libhdf5?)')
    return done.returncode, done.stdout + done.stderr


def heap_object_offsets(data):
    """File offsets of the first object header of every global heap collection in ``data``."""
    found, start = [], data.find(b'GCOL')
    while start >= 0:
        found.append(start + 16)
        start = data.find(b'GCOL', start + 1)
    return found


def zero_first_heap_object(path):
    """The corruption of the issue: 16 zeroed bytes over a global heap object header."""
    data = bytearray(path.read_bytes())
    offsets = heap_object_offsets(bytes(data))
    assert offsets, 'the file has no global heap to damage'
    data[offsets[0]:offsets[0] + 16] = bytes(16)
    path.write_bytes(bytes(data))


def edit_config(path, change):
    """Replace the file's model_config by ``change(config)``, written as a foreign tool would
    (no checksum), so only the config's own checks can refuse it."""
    with h5py.File(path, 'r+') as f:
        config = json.loads(f.attrs['model_config'])
        f.attrs['model_config'] = json.dumps(change(config))
        del f.attrs['model_config_crc32']


# --- 3: global heaps --------------------------------------------------------------------
def test_minidl_writes_no_global_heap_and_keras_readers_still_read_its_strings(tmp_path):
    model = dense_net()
    model.compile('adam', 'mse')
    model.save(tmp_path / 'm.h5')
    model.save_weights(tmp_path / 'w.h5')
    for name in ('m.h5', 'w.h5'):
        assert b'GCOL' not in (tmp_path / name).read_bytes()
    with h5py.File(tmp_path / 'm.h5') as f:  # what tf-keras's reader does with them
        assert json.loads(f.attrs['model_config'].decode('utf8'))['class_name'] == 'Sequential'
        names = [n.decode('utf8') for n in f['model_weights'].attrs['layer_names']]
        assert names == ['hidden', 'out']
        assert list(f['model_weights/out'].attrs['weight_names']) == [b'kernel', b'bias']


def refusals_under_timeout(path):
    """What load_model and load_weights say of ``path``, run in a child under a timeout."""
    code, output = run_python(f'''
        from minidl import layers, models
        from minidl.io import WeightFileError
        model = models.Sequential([layers.Dense(4, input_shape=(3,), name='hidden'),
                                   layers.Dense(2, name='out')])
        for load in (models.load_model, model.load_weights):
            try:
                load({str(path)!r})
            except WeightFileError as exc:
                print('refused:', exc)
        ''')
    assert code == 0, output
    return output.splitlines()


def assert_refused_as_damaged_heap(path):
    lines = refusals_under_timeout(path)
    assert len(lines) == 2, lines
    for line in lines:
        assert line.startswith(f'refused: {path}: global heap at byte '), line


def test_a_zeroed_heap_object_in_a_long_config_minidl_wrote_is_refused(tmp_path):
    """Text beyond an object header's 64 KB goes to a global heap: the issue's corruption
    there must be an error, not a hang."""
    model = models.Sequential([layers.Dense(4, input_shape=(3,), name='hidden'),
                               layers.Dense(2, name='out')] +
                              [layers.Activation('linear', name=f'pass_{"x" * 200}_{i}')
                               for i in range(300)])
    model.save(tmp_path / 'long.h5')
    assert same_weights(models.load_model(tmp_path / 'long.h5').get_weights(),
                        model.get_weights())
    zero_first_heap_object(tmp_path / 'long.h5')
    assert_refused_as_damaged_heap(tmp_path / 'long.h5')


def write_variable_length(path, model, libver='earliest'):
    """``model`` saved as older minidl versions did, every name and the config a
    variable-length string in a global heap (h5py's default for str)."""
    with h5py.File(path, 'w', libver=libver) as f:
        f.attrs['model_config'] = json.dumps(keras_config.serialize(model))
        group = f.create_group('model_weights')
        group.attrs['layer_names'] = [layer.name for layer in model.layers]
        for layer in model.layers:
            sub = group.create_group(layer.name)
            names = [w.name.split('/')[-1] for w in layer.weights]
            sub.attrs['weight_names'] = names  # [] is stored as an empty float64 array
            for name, array in zip(names, layer.get_weights()):
                sub.create_dataset(name, data=array)


def test_files_older_minidl_wrote_still_load(tmp_path):
    model = models.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dropout(0.5),
                               layers.Dense(2)])
    write_variable_length(tmp_path / 'old.h5', model)
    for loaded in (models.load_model(tmp_path / 'old.h5'), dense_net()):
        loaded.load_weights(tmp_path / 'old.h5')
        assert same_weights(loaded.get_weights(), model.get_weights())


def test_a_zeroed_heap_object_in_a_file_with_variable_length_names_is_refused(tmp_path):
    """Older minidl and Keras files keep every name in a global heap."""
    path = tmp_path / 'old.h5'
    write_variable_length(path, dense_net())
    zero_first_heap_object(path)
    assert_refused_as_damaged_heap(path)


@pytest.mark.parametrize('libver', ['earliest', 'latest'])  # object headers version 1, 2
def test_a_variable_length_string_declaring_gigabytes_is_refused_unread(tmp_path, libver):
    """libhdf5 allocates the length a variable-length reference declares before it reads the
    heap: a damaged length must be refused before libhdf5 sees it."""
    path = tmp_path / 'old.h5'
    model = dense_net()
    write_variable_length(path, model, libver)
    assert same_weights(models.load_model(path).get_weights(), model.get_weights())
    data = bytearray(path.read_bytes())
    config = json.dumps(keras_config.serialize(model)).encode()
    reference = struct.pack('<IQ', len(config), heap_object_offsets(bytes(data))[0] - 16)
    assert bytes(data).count(reference) == 1
    at = bytes(data).find(reference)
    data[at:at + 4] = struct.pack('<I', 3 << 30)
    path.write_bytes(bytes(data))
    code, output = run_python(f'''
        import re
        from minidl import models
        from minidl.io import WeightFileError
        try:
            models.load_model({str(path)!r})
        except WeightFileError as exc:
            print('refused:', exc)
        # VmHWM is this process's own peak; ru_maxrss would keep pytest's from before exec
        with open('/proc/self/status') as status:
            peak = re.search(r'VmHWM:\\s*(\\d+) kB', status.read())
        print('peak MB', int(peak[1]) >> 10)
        ''')
    assert code == 0 and 'refused:' in output, output  # version 2 headers: a checksum
    assert int(output.split('peak MB')[1]) < 1000, output


# --- 2: sizes checked before anything is allocated ------------------------------------
def test_a_dataset_declaring_gigabytes_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / 'huge.h5'
    model = dense_net()
    model.save_weights(path)
    with h5py.File(path, 'r+') as f:
        del f['model_weights/hidden/kernel']
        f['model_weights/hidden'].create_dataset('kernel', shape=(1 << 19, 1024), dtype='f4')
    tracemalloc.start()
    with pytest.raises(WeightFileError, match=r'huge\.h5: .*kernel declares shape '
                                              r'\(524288, 1024\).*beyond the end'):
        model.load_weights(path)
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    tracemalloc.stop()


def test_stored_shapes_are_checked_against_the_layers_before_reading(tmp_path, monkeypatch):
    dense_net().save_weights(tmp_path / 'w.h5')
    reads = []
    monkeypatch.setattr(minidl.io.keras_h5.Reader, 'array', lambda self, obj: reads.append(obj))
    wider = models.Sequential([layers.Dense(5, input_shape=(3,)), layers.Dense(2)])
    with pytest.raises(WeightFileError, match=r'w\.h5: weights do not fit:\n  dense.* '
                                              r'expects \[\(3, 5\), \(5,\)\].*\(3, 4\)'):
        wider.load_weights(tmp_path / 'w.h5')
    assert reads == []


def test_a_config_asking_for_more_than_the_file_stores_is_never_built(tmp_path):
    path = tmp_path / 'm.h5'
    dense_net().save(path)

    def widen(config):
        config['config']['layers'][0]['config']['units'] = 100000
        config['config']['layers'][0]['config']['batch_input_shape'] = [None, 1000]
        return config
    edit_config(path, widen)
    tracemalloc.start()
    with pytest.raises(WeightFileError, match=r'm\.h5: model_config cannot be built: .*hidden: '
                                              r'a weight of shape \(1000, 100000\).* more than '
                                              r'.*m\.h5 holds'):
        models.load_model(path)
    assert tracemalloc.get_traced_memory()[1] < 8 << 20  # the kernel would be 400 MB
    tracemalloc.stop()


def test_compressed_datasets_are_refused(tmp_path):
    path = tmp_path / 'gz.h5'
    model = dense_net()
    model.save_weights(path)
    with h5py.File(path, 'r+') as f:
        kernel = f['model_weights/out/kernel'][()]
        del f['model_weights/out/kernel']
        f['model_weights/out'].create_dataset('kernel', data=kernel, compression='gzip')
    with pytest.raises(WeightFileError, match=r'gz\.h5: .*out/kernel is chunked or compressed'):
        model.load_weights(path)


# --- 5: copies ----------------------------------------------------------------------------
def test_get_weights_and_set_weights_copy():
    minidl.random.seed(0)
    model = dense_net()
    model.compile(optimizers.SGD(0.1), 'mse')
    before = model.get_weights()
    kept = [w.copy() for w in before]
    model.train_on_batch(np.ones((2, 3), np.float32), np.zeros((2, 2), np.float32))
    assert same_weights(before, kept)
    assert not same_weights(model.get_weights(), kept)
    layer = model.layers[0]
    arrays = layer.get_weights()
    layer.set_weights(arrays)
    arrays[0][...] = 7
    assert not (layer.get_weights()[0] == 7).any()


# --- 6: weights by name ---------------------------------------------------------------------
def batchnorm_net(trainable):
    model = models.Sequential([layers.Dense(3, input_shape=(2,), name='d'),
                               layers.BatchNormalization(scale=False, name='bn')])
    model.layers[1].trainable = trainable
    return model


@pytest.mark.parametrize('saved_trainable', [True, False])
def test_batchnorm_weights_load_by_name_whatever_the_trainable_flags(tmp_path, saved_trainable):
    source = batchnorm_net(saved_trainable)
    bn = source.layers[1]
    bn.set_weights([np.full(w.shape, k + 1.0, np.float32) for k, w in enumerate(bn.weights)])
    values = {w.name: w.numpy().copy() for w in source.weights}
    source.save_weights(tmp_path / 'w.h5')
    source.save(tmp_path / 'm.h5')
    target = batchnorm_net(not saved_trainable)
    target.load_weights(tmp_path / 'w.h5')
    restored = models.load_model(tmp_path / 'm.h5')
    restored.layers[1].trainable = not saved_trainable
    for model in (target, restored):
        assert {w.name: w.numpy() for w in model.weights}.keys() == values.keys()
        for w in model.weights:
            np.testing.assert_array_equal(w.numpy(), values[w.name])


# --- 7: the file's declared layer order ---------------------------------------------------
def write_unordered(path, names, model, track_order=False):
    """A weight file with one group per layer, created in ``names`` order, no layer_names."""
    with h5py.File(path, 'w', track_order=track_order) as f:
        for name, layer in zip(names, model.layers):
            group = f.create_group(name)
            group.attrs['weight_names'] = np.array([b'kernel', b'bias'])
            for w in layer.weights:
                group.create_dataset(w.name.split('/')[-1], data=w.numpy())


def square_net(first, second):
    model = models.Sequential([layers.Dense(3, input_shape=(3,), name=first),
                               layers.Dense(3, name=second)])
    model.set_weights([np.full(w.shape, k, np.float32) for k, w in enumerate(model.weights)])
    return model


def test_without_layer_names_layers_match_by_name_not_alphabetically(tmp_path):
    source = square_net('layer_2', 'layer_10')
    write_unordered(tmp_path / 'w.h5', ['layer_2', 'layer_10'], source)
    target = square_net('layer_2', 'layer_10')
    target.set_weights([w * 0 for w in target.get_weights()])
    target.load_weights(tmp_path / 'w.h5')
    assert same_weights(target.get_weights(), source.get_weights())


def test_groups_that_track_creation_order_declare_it(tmp_path):
    source = square_net('layer_2', 'layer_10')
    write_unordered(tmp_path / 'w.h5', ['layer_2', 'layer_10'], source, track_order=True)
    target = square_net('a', 'b')
    target.load_weights(tmp_path / 'w.h5')
    assert same_weights(target.get_weights(), source.get_weights())


def test_a_file_without_declared_order_or_matching_names_is_refused(tmp_path):
    write_unordered(tmp_path / 'w.h5', ['layer_2', 'layer_10'], square_net('p', 'q'))
    with pytest.raises(WeightFileError, match=r'w\.h5: the file declares no layer order'):
        square_net('a', 'b').load_weights(tmp_path / 'w.h5')


def test_nested_models_declare_their_layer_order(tmp_path):
    inner = models.Sequential([layers.Dense(3, input_shape=(3,), name='layer_2'),
                               layers.Dense(3, name='layer_10')], name='inner')
    outer = models.Sequential([inner, layers.Dense(3, name='top')])
    outer.set_weights([np.full(w.shape, k, np.float32) for k, w in enumerate(outer.weights)])
    outer.save_weights(tmp_path / 'w.h5')
    with h5py.File(tmp_path / 'w.h5') as f:
        assert list(f['model_weights/inner'].attrs['weight_names']) == [
            b'layer_2/kernel', b'layer_2/bias', b'layer_10/kernel', b'layer_10/bias']
    restored = models.Sequential(
        [models.Sequential([layers.Dense(3, input_shape=(3,)), layers.Dense(3)]),
         layers.Dense(3)])
    restored.load_weights(tmp_path / 'w.h5')
    assert same_weights(restored.get_weights(), outer.get_weights())


# --- 8: the optimizer state -----------------------------------------------------------------
@pytest.mark.parametrize('optimizer', [
    lambda: optimizers.SGD(0.05, momentum=0.9), lambda: optimizers.RMSprop(0.01),
    lambda: optimizers.Adam(0.01, decay=0.1)])
def test_training_resumes_exactly_after_load_model(tmp_path, optimizer):
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((4, 3)).astype(np.float32),
                rng.standard_normal((4, 2)).astype(np.float32)) for _ in range(5)]

    def fresh():
        minidl.random.seed(1)
        model = models.Sequential([layers.Dense(4, input_shape=(3,), activation='tanh'),
                                   layers.Dense(2)])
        model.compile(optimizer(), 'mse')
        return model
    straight = fresh()
    for x, y in batches:
        straight.train_on_batch(x, y)
    resumed = fresh()
    for x, y in batches[:3]:
        resumed.train_on_batch(x, y)
    resumed.save(tmp_path / 'm.h5')
    resumed = models.load_model(tmp_path / 'm.h5')
    assert resumed.optimizer.iterations == 3
    for x, y in batches[3:]:
        resumed.train_on_batch(x, y)
    for got, want in zip(resumed.get_weights(), straight.get_weights()):
        assert got.tobytes() == want.tobytes()


def test_optimizer_state_that_does_not_fit_its_weights_is_refused():
    weight = dense_net().weights[0]
    adam = optimizers.Adam()
    with pytest.raises(ValueError, match=r'slot m of weight .hidden/kernel. has shape \(2,\)'):
        adam.set_state([weight], 1, [{'m': np.zeros(2), 'v': np.zeros(weight.shape)}])
    with pytest.raises(ValueError, match=r'has slots \[.velocity.\], Adam keeps'):
        adam.set_state([weight], 1, [{'velocity': np.zeros(weight.shape)}])
    assert adam.iterations == 0 and adam.get_state([weight]) == (0, [{}])


# --- 9: temp files of killed saves ------------------------------------------------------
def start_stuck_save(target):
    """A process that is SIGKILL-able halfway through ``model.save(target)``: its weights are
    written into the temporary file, then it waits. Returns the process and the temp path."""
    process = subprocess.Popen([sys.executable, '-c', textwrap.dedent(f'''
        import time
        from minidl import layers, models
        from minidl.io import keras_h5
        write = keras_h5.write_layers
        def write_then_wait(group, model, weights_of):
            write(group, model, weights_of)
            group.file.flush()
            print(group.file.filename, flush=True)
            time.sleep(60)
        keras_h5.write_layers = write_then_wait
        models.Sequential([layers.Dense(64, input_shape=(64,))]).save({str(target)!r})
        ''')], env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    return process, Path(process.stdout.readline().strip())


def test_a_later_save_or_load_removes_what_killed_saves_left(tmp_path):
    target = tmp_path / 'model.h5'
    killed, killed_temp = start_stuck_save(target)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed_temp.exists() and killed_temp.parent == tmp_path
    assert killed_temp.name.startswith(f'.model.h5.{killed.pid}.')
    dense_net().save(target)
    assert not killed_temp.exists()
    running, running_temp = start_stuck_save(target)
    try:
        model = dense_net()
        model.save(target)
        assert running_temp.exists()  # that save is still under way
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    model.load_weights(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.h5']


def test_temp_files_of_older_versions_are_removed_once_an_hour_old(tmp_path):
    target = tmp_path / 'w.h5'
    old, recent = tmp_path / '.w.h5.k3j_x9q2.tmp.h5', tmp_path / '.w.h5.abcd1234.tmp.h5'
    old.write_bytes(b'x')
    recent.write_bytes(b'x')
    os.utime(old, (time.time() - 7200,) * 2)
    dense_net().save_weights(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [recent.name, 'w.h5']


# --- 10: checksums -------------------------------------------------------------------------
def test_a_changed_weight_byte_is_refused(tmp_path):
    path = tmp_path / 'w.h5'
    dense_net().save_weights(path)
    with h5py.File(path) as f:
        offset = f['model_weights/hidden/kernel'].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset + 5] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match=r'w\.h5: .*hidden/kernel is damaged'):
        dense_net().load_weights(path)


def test_a_changed_config_byte_is_refused(tmp_path):
    path = tmp_path / 'm.h5'
    models.Sequential([layers.Dropout(0.25, input_shape=(3,)), layers.Dense(2)]).save(path)
    data = path.read_bytes()
    assert data.count(b'0.25') == 1
    path.write_bytes(data.replace(b'0.25', b'0.75'))
    with pytest.raises(WeightFileError, match=r'm\.h5: attribute model_config .* damaged'):
        models.load_model(path)


def test_files_without_checksums_still_load(tmp_path):
    model = square_net('a', 'b')
    path = tmp_path / 'keras.h5'
    with h5py.File(path, 'w') as f:
        f.attrs['layer_names'] = np.array([b'a', b'b'])
        for layer in model.layers:
            group = f.create_group(layer.name)
            group.attrs['weight_names'] = np.array([f'{layer.name}/kernel:0'.encode(),
                                                    f'{layer.name}/bias:0'.encode()])
            for name, array in zip(group.attrs['weight_names'], layer.get_weights()):
                group.create_dataset(name.decode(), data=array)  # Keras 2: <layer>/<layer>/...
    target = square_net('x', 'y')
    target.load_weights(path)
    assert same_weights(target.get_weights(), model.get_weights())


# --- 15: one exception, naming the file -------------------------------------------------
def drop(key):
    def change(path):
        with h5py.File(path, 'r+') as f:
            del f[key]
    return change


def set_attr(key, value):
    def change(path):
        with h5py.File(path, 'r+') as f:
            f[key.rsplit(':', 1)[0] or '/'].attrs[key.rsplit(':', 1)[1]] = value
    return change


def set_dataset(key):
    def change(path):
        with h5py.File(path, 'r+') as f:
            f[key] = np.zeros(3)
    return change


def config(change_config):
    return lambda path: edit_config(path, change_config)


def class_name(name):
    def change(config):
        config['config']['layers'][0]['class_name'] = name
        return config
    return change


def units(value):
    def change(config):
        config['config']['layers'][0]['config']['units'] = value
        return config
    return change


DAMAGES = {
    'missing file': lambda path: path.unlink(),
    'directory': lambda path: (path.unlink(), path.mkdir()),
    'empty file': lambda path: path.write_bytes(b''),
    'not HDF5': lambda path: path.write_text('{"class_name": "Sequential"}'),
    'truncated': lambda path: path.write_bytes(path.read_bytes()[:3000]),
    'no model_weights': drop('model_weights'),
    'no layer group': drop('model_weights/out'),
    'no weight dataset': drop('model_weights/out/bias'),
    'layer_names not text': set_attr('model_weights:layer_names', np.arange(2)),
    'model_config not JSON': lambda path: (edit_config(path, lambda c: c), set_attr(
        ':model_config', b'{"class_name": ')(path)),
    'unknown layer class': config(class_name('Transmogrifier')),
    'units not a number': config(units('abc')),
    'config a list': config(lambda c: dict(c, config=['not', 'a', 'dict'])),
    'layers a dict': config(lambda c: dict(c, config=dict(c['config'], layers={'a': 1}))),
    'model_weights a dataset': lambda path: (drop('model_weights')(path),
                                             set_dataset('model_weights')(path)),
    'optimizer_weights a dataset': lambda path: (drop('optimizer_weights')(path),
                                                 set_dataset('optimizer_weights')(path)),
    'a Keras functional config': config(lambda c: {'class_name': 'Functional', 'config': {
        'name': 'model', 'layers': [{'class_name': 'InputLayer', 'name': 'input_1',
                                     'config': {'batch_input_shape': [None, 3]},
                                     'inbound_nodes': []}],
        'input_layers': [['input_1', 0, 0]], 'output_layers': [['input_1', 0, 0]]}}),
    'unknown optimizer': set_attr(':training_config', json.dumps(
        {'optimizer': {'class_name': 'Teleport', 'config': {}}, 'loss': 'mse',
         'metrics': []})),
}
IN_CONFIG_ONLY = {'model_config not JSON', 'unknown layer class', 'units not a number',
                  'config a list', 'layers a dict', 'unknown optimizer',
                  'optimizer_weights a dataset', 'a Keras functional config'}


@pytest.mark.parametrize('name', list(DAMAGES))
def test_broken_files_raise_weight_file_error_naming_the_file(tmp_path, name):
    path = tmp_path / 'broken.h5'
    model = dense_net()
    model.compile('adam', 'mse')
    model.save(path)
    with h5py.File(path, 'r+') as f:
        f.attrs.pop('training_config_crc32', None)
    DAMAGES[name](path)
    loads = [models.load_model] + ([] if name in IN_CONFIG_ONLY else [dense_net().load_weights])
    for load in loads:
        with pytest.raises(WeightFileError) as caught:
            load(path)
        assert str(caught.value).startswith(f'{path}: ')


@pytest.mark.parametrize('kind', ['external', 'soft'])
def test_links_to_other_files_or_places_are_refused(tmp_path, kind):
    model = models.Sequential([layers.Dense(2, input_shape=(3,), name='d')])
    model.save_weights(tmp_path / 'w.h5')
    with h5py.File(tmp_path / 'other.h5', 'w') as other:
        other['kernel'] = np.ones((3, 2), np.float32)
    with h5py.File(tmp_path / 'w.h5', 'r+') as f:
        group = f['model_weights/d']
        del group['kernel']
        group['kernel'] = (h5py.ExternalLink(str(tmp_path / 'other.h5'), 'kernel')
                           if kind == 'external' else h5py.SoftLink('/model_weights/d/bias'))
    with pytest.raises(WeightFileError, match=r'w.h5: /model_weights/d/kernel is a '
                                              r'(ExternalLink|SoftLink), which a weight file'):
        model.load_weights(tmp_path / 'w.h5')
