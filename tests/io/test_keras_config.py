"""The config translator: Keras 2, Keras 3 and minidl spellings in, Keras's spellings out; what
minidl cannot honour is listed in one WeightFileError, what only shapes training is dropped."""
import json
import re
import sys
import types
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from minidl import constraints, initializers, layers, models
from minidl.io import WeightFileError
from minidl.io.keras_config import KERAS2, KERAS3, from_config, serialize

sys.path.insert(0, str(Path(__file__).parent / 'fixtures'))
import make_keras_models  # noqa: E402


def keras2_dense(name, units, **extra):
    """A Dense layer's config as tf-keras 2.21 writes it."""
    return {'class_name': 'Dense', 'config': {
        'name': name, 'trainable': True, 'dtype': 'float32', 'units': units,
        'activation': 'relu', 'use_bias': True,
        'kernel_initializer': {'module': 'keras.initializers', 'class_name': 'GlorotUniform',
                               'config': {'seed': None}, 'registered_name': None},
        'bias_initializer': {'module': 'keras.initializers', 'class_name': 'Zeros',
                             'config': {}, 'registered_name': None},
        'kernel_regularizer': None, 'bias_regularizer': None, 'activity_regularizer': None,
        'kernel_constraint': None, 'bias_constraint': None, **extra}}


def keras2_input(name, shape):
    return {'class_name': 'InputLayer', 'config': {
        'batch_input_shape': [None, *shape], 'dtype': 'float32', 'sparse': False,
        'ragged': False, 'name': name}}


def keras2_sequential(*specs):
    return {'class_name': 'Sequential', 'config': {'name': 'seq', 'layers': list(specs)}}


def keras3_tensor(source):
    return {'class_name': '__keras_tensor__', 'config': {
        'shape': [None, 3], 'dtype': 'float32', 'keras_history': [source, 0, 0]}}


def keras3_functional(*entries):
    """A Keras 3 functional config: ``entries`` are ``(spec, [source names])``."""
    specs = []
    for spec, sources in entries:
        args = [keras3_tensor(s) for s in sources]
        specs.append(dict(spec, name=spec['config']['name'], inbound_nodes=[
            {'args': args if len(args) == 1 else [args], 'kwargs': {}}] if args else []))
    first, last = specs[0]['name'], specs[-1]['name']
    return {'module': 'keras.src.models.functional', 'class_name': 'Functional',
            'registered_name': 'Functional', 'config': {
                'name': 'fun', 'trainable': True, 'layers': specs,
                'input_layers': [first, 0, 0], 'output_layers': [last, 0, 0]}}


def keras3_input(name, shape):
    return {'module': 'keras.layers', 'class_name': 'InputLayer', 'registered_name': None,
            'config': {'batch_shape': [None, *shape], 'dtype': 'float32', 'sparse': False,
                       'ragged': False, 'name': name, 'optional': False}}


def keras3_dense(name, units):
    spec = keras2_dense(name, units)
    spec['config']['dtype'] = {'module': 'keras', 'class_name': 'DTypePolicy',
                               'config': {'name': 'float32'}, 'registered_name': None}
    return dict(spec, module='keras.layers', registered_name=None,
                build_config={'input_shape': [None, 3]})


def build(spec):
    return from_config(spec, 'm.h5')


# --- reading -----------------------------------------------------------------------------
def test_a_keras2_sequential_with_its_input_layer_builds_silently():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model = build(keras2_sequential(keras2_input('in', (3,)), keras2_dense('a', 4),
                                        keras2_dense('b', 2)))
    assert [layer.name for layer in model.layers] == ['a', 'b']
    assert model.input_shape == (None, 3) and model.output_shape == (None, 2)
    assert model.get_layer('a').kernel_initializer == 'glorot_uniform'  # at its defaults


def test_an_initializer_with_settings_of_its_own_is_kept_as_an_object():
    spec = keras2_dense('a', 4)
    spec['config']['kernel_initializer'] = {'class_name': 'RandomNormal', 'config': {
        'mean': 0.0, 'stddev': 0.1, 'seed': None}}
    initializer = build(keras2_sequential(keras2_input('in', (3,)), spec)).get_layer(
        'a').kernel_initializer
    assert isinstance(initializer, initializers.RandomNormal) and initializer.stddev == 0.1


def test_a_keras3_functional_config_builds_its_graph():
    model = build(keras3_functional((keras3_input('in', (3,)), []),
                                    (keras3_dense('a', 4), ['in']),
                                    (keras3_dense('b', 2), ['a'])))
    assert [layer.name for layer in model.layers] == ['in', 'a', 'b']
    assert model.output_shape == (None, 2) and model.get_layer('b').input_shape == (None, 4)


def test_unknown_layers_and_arguments_are_listed_in_one_error():
    spec = keras2_sequential(keras2_input('in', (3,)), keras2_dense('a', 4, lora_rank=4),
                             {'class_name': 'LSTM', 'config': {'name': 'memory'}},
                             keras2_dense('b', 2, magic=1, data_format='channels_first'))
    with pytest.raises(WeightFileError) as caught:
        build(spec)
    message = str(caught.value)
    assert message.startswith('m.h5: model_config uses what minidl does not support:')
    for problem in ('a (Dense): argument lora_rank=4', 'memory (LSTM): unknown layer class',
                    'b (Dense): unknown argument magic=1',
                    "b (Dense): argument data_format='channels_first'"):
        assert problem in message


def test_custom_keras3_classes_are_refused_even_under_a_known_name():
    spec = dict(keras3_dense('a', 4), module='my_package.layers',
                registered_name='my_package>Dense')
    with pytest.raises(WeightFileError, match=r'a \(Dense\): a custom class '
                                              r'\(my_package>Dense\)'):
        build(spec)


def test_settings_that_only_shape_training_are_dropped_with_a_warning():
    """...unless the layer takes them: Dropout keeps its noise_shape and seed, Dense the
    regularizers minidl has."""
    regularizer = {'class_name': 'OrthogonalRegularizer', 'config': {'factor': 0.01}}
    spec = keras2_sequential(keras2_input('in', (3,)),
                             keras2_dense('a', 4, kernel_regularizer=regularizer),
                             {'class_name': 'Dropout', 'config': {
                                 'name': 'drop', 'rate': 0.5, 'noise_shape': [None, 1],
                                 'seed': 7}})
    with pytest.warns(UserWarning, match=r"m\.h5: settings that only affect training were "
                                         r"dropped: a \(Dense\) kernel_regularizer=.*"
                                         r"\(unknown regularizer 'OrthogonalRegularizer'"):
        model = build(spec)
    drop = model.get_layer('drop')
    assert (drop.rate, drop.noise_shape, drop.seed) == (0.5, (None, 1), 7)


def test_an_unknown_initializer_leaves_the_default_with_a_warning():
    spec = keras2_dense('a', 4)
    spec['config']['kernel_initializer'] = {'class_name': 'Orthogonal', 'config': {'gain': 1}}
    with pytest.warns(UserWarning, match=r'a \(Dense\) kernel_initializer .*Orthogonal'):
        model = build(keras2_sequential(keras2_input('in', (3,)), spec))
    assert model.get_layer('a').kernel_initializer == 'glorot_uniform'


def test_dtype_policies_and_constraints_are_read_in_either_spelling():
    spec = keras3_dense('a', 4)
    spec['config']['kernel_constraint'] = {'module': 'keras.constraints',
                                           'class_name': 'MaxNorm', 'registered_name': None,
                                           'config': {'max_value': 3, 'axis': 0}}
    layer = build(spec)
    assert layer.dtype == np.float32 and isinstance(layer.kernel_constraint, constraints.MaxNorm)
    spec['config']['dtype']['config']['name'] = 'mixed_float16'
    with pytest.raises(WeightFileError, match=r"a \(Dense\): argument dtype='mixed_float16'"):
        build(spec)


def test_a_merge_layer_is_built_on_every_input_it_is_given():
    merge = {'module': 'keras.layers', 'class_name': 'Concatenate', 'registered_name': None,
             'config': {'name': 'cat', 'axis': -1}}
    spec = keras3_functional((keras3_input('in', (3,)), []), (keras3_dense('a', 3), ['in']),
                             (merge, ['in', 'a']), (keras3_dense('b', 2), ['cat']))
    model = build(spec)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    a = model.get_layer('a')(x).numpy()
    joined = model.get_layer('cat')([x, a]).numpy()
    assert model.get_layer('cat').input_shape == [(None, 3), (None, 3)]
    np.testing.assert_allclose(model.predict(x), model.get_layer('b')(joined).numpy(),
                               rtol=1e-6)
    spec['config']['layers'][2]['class_name'] = 'Dense'
    with pytest.raises(WeightFileError, match=r'cat \(Dense\): takes one input, the graph '
                                              r'gives it 2'):
        build(spec)


def keras2_functional(layers, inputs, outputs):
    """A Keras 2 functional config: ``layers`` are ``(spec, inbound_nodes)``."""
    return {'class_name': 'Functional', 'config': {
        'name': 'fun', 'layers': [dict(spec, name=spec['config']['name'], inbound_nodes=nodes)
                                  for spec, nodes in layers],
        'input_layers': inputs, 'output_layers': outputs}}


def test_a_shared_layer_called_again_on_a_layer_listed_after_it_is_built_as_keras_does():
    spec = keras2_functional([
        (keras2_input('in', (3,)), []),
        (keras2_dense('shared', 3), [[['in', 0, 0, {}]], [['back', 0, 0, {}]]]),
        (keras2_dense('back', 3), [[['shared', 0, 0, {}]]]),
        ({'class_name': 'Add', 'config': {'name': 'sum', 'trainable': True, 'dtype': 'float32'}},
         [[['shared', 0, 0, {}], ['shared', 1, 0, {}]]])], [['in', 0, 0]], [['sum', 0, 0]])
    model = build(spec)
    shared, back = model.get_layer('shared'), model.get_layer('back')
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    first = shared(x)
    np.testing.assert_allclose(model.predict(x), (first + shared(back(first))).numpy(),
                               rtol=1e-6)
    assert serialize(model)['config']['layers'][1]['inbound_nodes'] == \
        spec['config']['layers'][1]['inbound_nodes']


def test_references_to_tensors_no_call_makes_and_cycles_are_listed_in_one_error():
    spec = keras2_functional([
        (keras2_input('in', (3,)), []),
        (keras2_dense('a', 3), [[['in', 0, 0, {}]], [['in', 1, 0, {}]]]),
        (keras2_dense('b', 3), [[['ghost', 0, 0, {}]]]),
        (keras2_dense('c', 3), [[['a', 2, 0, {}]], [['a', 0, 1, {}]]]),
        (keras2_dense('d', 3), [])], [['in', 0, 0]], [['b', 0, 0], ['a', 0, 0]])
    with pytest.raises(WeightFileError) as caught:
        build(spec)
    for problem in ("a (Dense): takes output [1][0] of 'in', which no layer of the model "
                    "makes", "b (Dense): takes output [0][0] of 'ghost'",
                    "c (Dense): takes output [2][0] of 'a'", "c (Dense): takes output [0][1] "
                    "of 'a'", 'd (Dense): takes no input in the graph'):
        assert problem in str(caught.value)
    cycle = keras2_functional([
        (keras2_input('in', (3,)), []), (keras2_dense('a', 3), [[['b', 0, 0, {}]]]),
        (keras2_dense('b', 3), [[['a', 0, 0, {}]]])], [['in', 0, 0]], [['b', 0, 0]])
    with pytest.raises(WeightFileError, match=r'a \(Dense\): call 0 waits on inputs no other '
                                              r'call can make first \(the graph has a cycle\)'):
        build(cycle)


def test_call_arguments_other_than_an_empty_mask_are_refused_and_training_is_dropped():
    spec = keras2_functional([
        (keras2_input('in', (3,)), []), (keras2_dense('a', 3), [[['in', 0, 0, {'scale': 2}]]]),
        (keras2_dense('b', 2), [[['a', 0, 0, {'training': True}]]])],
        [['in', 0, 0]], [['b', 0, 0]])
    with pytest.raises(WeightFileError, match=r'a \(Dense\): call argument scale=2'):
        build(spec)
    spec['config']['layers'][1]['inbound_nodes'] = [[['in', 0, 0, {'mask': None}]]]
    with pytest.warns(UserWarning, match=r'b \(Dense\) called with training=True'):
        assert build(spec).output_shape == (None, 2)


def test_code_in_a_keras_file_is_refused_by_name():
    """tf-keras's Lambda and TFOpLambda (``x * 2`` on a Keras tensor, whose one call is a
    lone reference with the other operand as a keyword) and Keras 3's operation."""
    lam = {'class_name': 'Lambda', 'config': {'name': 'lam', 'function': ['4wEAAA', None, None],
                                              'function_type': 'lambda'}}
    op = {'class_name': 'TFOpLambda', 'config': {'name': 'tf.math.multiply',
                                                 'function': 'math.multiply'}}
    spec = keras2_functional([(keras2_input('in', (3,)), []), (lam, [[['in', 0, 0, {}]]]),
                              (op, [['lam', 0, 0, {'y': 2, 'name': None}]]),
                              (keras2_dense('d', 2), [[['tf.math.multiply', 0, 0, {}]]])],
                             [['in', 0, 0]], [['d', 0, 0]])
    with pytest.raises(WeightFileError) as caught:
        build(spec)
    assert str(caught.value).endswith(
        'lam (Lambda): code (a function), which minidl does not run from a file\n'
        '  tf.math.multiply (TFOpLambda): code (a function), which minidl does not run from '
        'a file')
    multiply = {'module': 'keras.src.ops.numpy', 'class_name': 'Multiply',
                'registered_name': 'Multiply', 'config': {'name': 'multiply'}}
    spec = keras3_functional((keras3_input('in', (3,)), []), (multiply, ['in']),
                             (keras3_dense('b', 2), ['multiply']))
    spec['config']['layers'][1]['inbound_nodes'][0]['args'].append(2)
    with pytest.raises(WeightFileError, match=r'uses what minidl does not support:\n  multiply '
                                              r'\(Multiply\): code \(a function\)[^\n]*$'):
        build(spec)


@pytest.mark.parametrize('axis, size', [(-1, 2), ([3], 2), (3, 2), (1, 4), ([2], 4)])
def test_batch_normalization_takes_any_axis(axis, size):
    bn = {'class_name': 'BatchNormalization', 'config': {
        'name': 'bn', 'axis': axis, 'momentum': 0.9, 'epsilon': 1e-3, 'center': True,
        'scale': True, 'gamma_initializer': {'class_name': 'Ones', 'config': {}}}}
    layer = build(keras2_sequential(keras2_input('in', (4, 4, 2)), bn)).get_layer('bn')
    assert layer.momentum == 0.9 and layer.gamma.shape == (size,)


def test_batch_normalization_over_several_axes_is_refused():
    bn = {'class_name': 'BatchNormalization', 'config': {'name': 'bn', 'axis': [1, 2]}}
    with pytest.raises(WeightFileError, match=r'bn \(BatchNormalization\): normalises per index '
                                              r'of one axis, got axis=\[1, 2\]'):
        build(keras2_sequential(keras2_input('in', (4, 4, 2)), bn))


def test_a_damaged_config_names_the_file_and_the_key():
    with pytest.raises(WeightFileError, match=r'^x\.keras: config\.json cannot be built: '
                                              r'KeyError'):
        from_config({'class_name': 'Sequential', 'config': {}}, 'x.keras', 'config.json')


# --- writing -----------------------------------------------------------------------------
def nested_model():
    inner = models.Sequential([layers.Dense(4, input_shape=(3,), name='inner_d')],
                              name='inner')
    x = inputs = layers.Input((3,), name='in')
    x = inner(x)
    outputs = layers.Dense(2, kernel_constraint=constraints.MaxNorm(2), name='top')(x)
    return models.Model(inputs, outputs, name='outer')


def test_keras2_spelling_is_what_tf_keras_writes():
    spec = serialize(nested_model())
    assert spec['class_name'] == 'Functional'
    entries = {entry['name']: entry for entry in spec['config']['layers']}
    assert entries['in']['config'] == {'batch_input_shape': [None, 3], 'dtype': 'float32',
                                       'sparse': False, 'ragged': False, 'name': 'in'}
    assert entries['inner']['inbound_nodes'] == [[['in', 0, 0, {}]]]
    assert entries['top']['inbound_nodes'] == [[['inner', 1, 0, {}]]]  # a model's 2nd node
    top = entries['top']['config']
    assert top['kernel_initializer'] == {'class_name': 'GlorotUniform', 'config': {'seed': None}}
    assert top['kernel_constraint'] == {'class_name': 'MaxNorm',
                                        'config': {'max_value': 2.0, 'axis': 0}}
    inner = entries['inner']['config']
    assert inner['layers'][0]['config']['batch_input_shape'] == [None, 3]
    assert spec['config']['input_layers'] == [['in', 0, 0]]


def test_keras3_spelling_is_what_keras3_writes():
    spec = serialize(nested_model(), KERAS3)
    assert (spec['module'], spec['registered_name']) == ('keras.src.models.functional',
                                                         'Functional')
    entries = {entry['name']: entry for entry in spec['config']['layers']}
    assert entries['in']['config']['batch_shape'] == [None, 3]
    inner = entries['inner']
    assert (inner['module'], inner['class_name']) == ('keras', 'Sequential')
    assert [s['class_name'] for s in inner['config']['layers']] == ['InputLayer', 'Dense']
    top = entries['top']
    assert top['config']['dtype'] == {'module': 'keras', 'class_name': 'DTypePolicy',
                                      'config': {'name': 'float32'}, 'registered_name': None}
    assert top['build_config'] == {'input_shape': [None, 4]}
    assert top['inbound_nodes'][0]['args'][0]['config']['keras_history'] == ['inner', 0, 0]
    assert spec['config']['output_layers'] == ['top', 0, 0]


@pytest.mark.parametrize('dialect', ['keras2', 'keras3'])
def test_what_is_written_reads_back_as_the_same_architecture(dialect):
    model = nested_model()
    spelling = {'keras2': KERAS2, 'keras3': KERAS3}[dialect]
    rebuilt = build(json.loads(json.dumps(serialize(model, spelling))))
    assert serialize(rebuilt, spelling) == serialize(model, spelling)
    assert [layer.get_config() for layer in rebuilt.layers[2:]] == \
        [layer.get_config() for layer in model.layers[2:]]


def test_model_files_carry_keras_version_and_backend(tmp_path):
    nested_model().save(tmp_path / 'm.h5')
    with h5py.File(tmp_path / 'm.h5', 'r') as f:
        for attrs in (f.attrs, f['model_weights'].attrs):
            assert (attrs['keras_version'], attrs['backend']) == (b'2.21.0', b'minidl')
        config = json.loads(f.attrs['model_config'])
    assert config == json.loads(json.dumps(serialize(models.load_model(tmp_path / 'm.h5'))))


def test_a_sequential_declares_its_input_where_the_model_did():
    declared = models.Sequential([layers.Input((3,)), layers.Dense(2, name='d')])
    on_layer = models.Sequential([layers.Dense(2, input_shape=(3,), name='d')])
    first = serialize(declared)['config']['layers'][0]
    assert first['class_name'] == 'InputLayer' and first['config']['batch_input_shape'] == \
        [None, 3]
    assert [spec['class_name'] for spec in serialize(on_layer)['config']['layers']] == ['Dense']
    for model in (declared, on_layer):
        assert build(serialize(model)).get_layer('d').get_config() == \
            model.get_layer('d').get_config()


def graph_model():
    return make_keras_models.shared_graph(types.SimpleNamespace(
        layers=layers, Input=layers.Input, Model=models.Model))


def test_shared_layers_and_nested_outputs_are_numbered_as_each_keras_numbers_them():
    model = graph_model()
    keras2 = {spec['name']: spec for spec in serialize(model)['config']['layers']}
    assert keras2['shared']['inbound_nodes'] == [[['x', 0, 0, {}]], [['y', 0, 0, {}]],
                                                 [['back', 0, 0, {}]]]
    assert keras2['add']['inbound_nodes'] == [[['shared', 0, 0, {}], ['shared', 1, 0, {}],
                                               ['shared', 2, 0, {}]]]
    assert keras2['cat']['inbound_nodes'][0][-2:] == [['inner', 1, 0, {}], ['inner', 2, 0, {}]]
    assert serialize(model)['config']['output_layers'] == [['inner', 1, 1], ['cat', 0, 0],
                                                           ['dot', 0, 0]]
    keras3 = serialize(model, KERAS3)['config']
    cat = keras3['layers'][[spec['name'] for spec in keras3['layers']].index('cat')]
    assert [t['config']['keras_history'] for t in cat['inbound_nodes'][0]['args'][0][-2:]] == \
        [['inner', 0, 0], ['inner', 1, 0]]  # Keras 3 counts a model's calls from 0 ...
    assert keras3['output_layers'][0] == ['inner', 1, 1]  # ... but its outputs from 1
    assert keras3['input_layers'] == [['x', 0, 0], ['y', 0, 0]]


@pytest.mark.parametrize('dialect', [KERAS2, KERAS3], ids=['keras2', 'keras3'])
def test_a_graph_with_shared_layers_and_merges_reads_back_computing_the_same(dialect):
    model = graph_model()
    rebuilt = build(json.loads(json.dumps(serialize(model, dialect))))
    assert serialize(rebuilt, dialect) == serialize(model, dialect)
    rebuilt.set_weights(model.get_weights())
    xs = [np.random.default_rng(k).normal(size=(2, 6)).astype(np.float32) for k in (0, 1)]
    for got, want in zip(rebuilt(xs), model(xs)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize('suffix', ['.h5', '.keras'])
def test_a_model_holding_code_cannot_be_saved_and_says_which_layers(tmp_path, suffix):
    x = layers.Input((3,), name='x')
    inner = models.Model(x, layers.Lambda(lambda t: t * 3, name='triple')(x), name='inner')
    y = layers.Input((3,), name='y')
    model = models.Model(y, layers.Dense(2, name='d')(inner(y) * 2), name='coded')
    path = tmp_path / f'm{suffix}'
    with pytest.raises(ValueError) as caught:
        model.save(path)
    assert re.fullmatch(
        rf'{re.escape(str(path))}: coded cannot be saved with its architecture: triple '
        rf'\(Lambda\), mul(_\d+)? \(Operation\) compute with code \(a function\), which a '
        rf'config cannot hold. Save the weights \(save_weights\) and rebuild the model in code '
        rf'to load them', str(caught.value))
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert list(tmp_path.iterdir()) == []
