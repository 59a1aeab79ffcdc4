"""Full Keras models both ways: Keras 2's ``model.save('x.h5')`` and Keras 3's ``.keras``.

The fixture half runs everywhere: files that tf-keras 2.21 and Keras 3.15 wrote (and one that
minidl wrote before configs were spelled as Keras's), made by ``fixtures/make_keras_models.py``,
load with their layers' names and order and predict what the library predicted. The live half
(marked ``interop``) runs where tf-keras or Keras 3 is importable and checks both directions
against the library itself: Keras writes -> minidl reads, minidl writes -> Keras reads, for
those models and for a graph of shared layers and a nested model of two outputs (the weight
files of the branched model cross live in ``test_keras_weights_roundtrip.py``). Run with
``-s`` to see each difference. Predictions agree when ``max |a - b| <= 1e-5 * max |b|``.
"""
import gzip
import sys
import types
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from minidl import layers, models

FIXTURES = Path(__file__).parent / 'fixtures'
sys.path.insert(0, str(FIXTURES))
import make_keras_models  # noqa: E402

MINIDL = types.SimpleNamespace(layers=layers, Input=layers.Input, Model=models.Model,
                               Sequential=models.Sequential)
NAMES = list(make_keras_models.models(MINIDL))
TOLERANCE = 1e-5


def relative_difference(got, want):
    """``max |got - want| / max |want|``: the measure every prediction check uses."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def layer_names(model):
    """The names of a model's layers but its inputs (whose automatic names differ), nested
    models' layers as nested lists."""
    return [layer_names(layer) if hasattr(layer, 'layers') else layer.name
            for layer in model.layers if type(layer).__name__ != 'InputLayer']


def unpacked(tmp_path, name):
    """A fixture model file unzipped into ``tmp_path``."""
    path = tmp_path / name
    path.write_bytes(gzip.decompress((FIXTURES / f'{name}.gz').read_bytes()))
    return path


WRITERS = [('k2', '.h5'), ('k3', '.keras'), ('minidl_835fae9', '.h5')]


@pytest.mark.parametrize('prefix, suffix, name', [
    (prefix, suffix, name) for prefix, suffix in WRITERS for name in NAMES
    if not (prefix.startswith('minidl') and name == 'branches')])  # that minidl had no merges
def test_files_keras_and_older_minidl_wrote_load_and_predict_alike(tmp_path, prefix, suffix,
                                                                   name):
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # nothing in these files is dropped or refused
        model = models.load_model(unpacked(tmp_path, f'{prefix}_{name}{suffix}'))
    io = np.load(FIXTURES / f'{prefix}_{name}_io.npz')
    expected = make_keras_models.models(MINIDL)[name][0]
    assert layer_names(model) == layer_names(expected)
    assert relative_difference(model.predict(io['x']), io['y']) <= TOLERANCE


def test_a_nested_model_keeps_its_layers_reachable_by_name(tmp_path):
    model = models.load_model(unpacked(tmp_path, 'k2_nested_sequential.h5'))
    assert model.get_layer('base').get_layer('block1_conv1').kernel.shape == (3, 3, 3, 4)


# --- live: the libraries themselves ------------------------------------------------------
LIBRARIES = [('tf_keras', '.h5'), ('keras', '.keras')]


def report(direction, suffix, name, difference):
    print(f'{suffix:7} {direction:22} {name:18} {difference:.2e}')


@pytest.mark.interop
@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('library, suffix', LIBRARIES)
@pytest.mark.parametrize('keras_writes', [True, False], ids=['keras->minidl', 'minidl->keras'])
def test_each_library_reads_what_the_other_wrote(tmp_path, library, suffix, name, keras_writes,
                                                keras_or_skip):
    keras = keras_or_skip(library)
    writer, reader = (keras, MINIDL) if keras_writes else (MINIDL, keras)
    model, x = make_keras_models.models(writer)[name]
    model.save(tmp_path / f'm{suffix}')
    loaded = (models if reader is MINIDL else keras.models).load_model(tmp_path / f'm{suffix}')
    assert layer_names(loaded) == layer_names(model)
    difference = relative_difference(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    direction = f'{library} -> minidl' if keras_writes else f'minidl -> {library}'
    report(direction, suffix, name, difference)
    assert difference <= TOLERANCE


@pytest.mark.interop
@pytest.mark.parametrize('name', [name for name in NAMES if name.startswith('nested')])
def test_tf_keras_builds_minidls_nested_model_config(tmp_path, name, keras_or_skip):
    """The model_config half of the nested h5 files that tf-keras cannot load whole yet."""
    keras = keras_or_skip('tf_keras')
    model, x = make_keras_models.models(MINIDL)[name]
    model.save(tmp_path / 'm.h5')
    with h5py.File(tmp_path / 'm.h5', 'r') as f:
        loaded = keras.models.model_from_json(f.attrs['model_config'])
    assert layer_names(loaded) == layer_names(model)
    loaded.set_weights(model.get_weights())
    difference = relative_difference(loaded.predict(x, verbose=0), model.predict(x))
    report('minidl -> tf_keras', '.h5 cfg', name, difference)
    assert difference <= TOLERANCE


def graph_outputs(model, xs):
    """A two-input model's outputs, from Keras's ``predict`` or a minidl call."""
    if isinstance(model, models.Model):
        return [y.numpy() for y in model(xs)]
    return model.predict(xs, verbose=0)


@pytest.mark.interop
@pytest.mark.parametrize('library, suffix', LIBRARIES)
def test_shared_layers_and_nested_outputs_cross_both_ways(tmp_path, library, suffix,
                                                          keras_or_skip):
    keras = keras_or_skip(library)
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(3, 6)).astype('float32') for _ in range(2)]
    for direction, writer, reader in [(f'{library} -> minidl', keras, models),
                                      (f'minidl -> {library}', MINIDL, keras.models)]:
        model = make_keras_models.shared_graph(writer)
        model.set_weights([rng.normal(size=w.shape).astype('float32')
                           for w in model.get_weights()])
        model.save(tmp_path / f'{writer is MINIDL}{suffix}')
        loaded = reader.load_model(tmp_path / f'{writer is MINIDL}{suffix}')
        assert layer_names(loaded) == layer_names(model)
        difference = max(relative_difference(got, want) for got, want in
                         zip(graph_outputs(loaded, xs), graph_outputs(model, xs)))
        report(direction, suffix, 'shared + nested', difference)
        assert difference <= TOLERANCE
