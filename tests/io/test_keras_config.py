"""The config translator: Keras 2, Keras 3 and minidl spellings in, Keras's spellings out; what
minidl cannot honour is listed in one WeightFileError, what only shapes training is dropped."""
import json
import warnings

import h5py
import numpy as np
import pytest

from minidl import constraints, initializers, layers, models
from minidl.io import WeightFileError
from minidl.io.keras_config import KERAS2, KERAS3, from_config, serialize


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
    regularizer = {'class_name': 'L2', 'config': {'l2': 0.01}}
    spec = keras2_sequential(keras2_input('in', (3,)),
                             keras2_dense('a', 4, kernel_regularizer=regularizer),
                             {'class_name': 'Dropout', 'config': {
                                 'name': 'drop', 'rate': 0.5, 'noise_shape': [None, 1],
                                 'seed': None}})
    with pytest.warns(UserWarning, match=r"m\.h5: settings that only affect training were "
                                         r"dropped: a \(Dense\) kernel_regularizer=.*L2.*; "
                                         r"drop \(Dropout\) noise_shape=\[None, 1\]$"):
        model = build(spec)
    assert model.get_layer('drop').rate == 0.5


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


def test_keras2_nodes_shared_layers_and_dangling_inputs_are_checked():
    config = {'name': 'fun', 'layers': [
        dict(keras2_input('in', (3,)), name='in', inbound_nodes=[]),
        dict(keras2_dense('a', 3), name='a', inbound_nodes=[[['in', 0, 0, {}]],
                                                             [['in', 0, 0, {}]]]),
        dict(keras2_dense('b', 2), name='b', inbound_nodes=[[['ghost', 0, 0, {}]]])],
        'input_layers': [['in', 0, 0]], 'output_layers': [['b', 0, 0]]}
    with pytest.raises(WeightFileError) as caught:
        build({'class_name': 'Functional', 'config': config})
    assert 'a (Dense): called 2 times (shared layers are not supported)' in str(caught.value)
    assert "b (Dense): takes output 0, 0 of 'ghost', which no layer before it" in \
        str(caught.value)
    config['layers'][1]['inbound_nodes'].pop()
    config['layers'][2]['inbound_nodes'] = [[['a', 0, 0, {'training': True}]]]
    with pytest.warns(UserWarning, match=r'b \(Dense\) called with training=True'):
        assert build({'class_name': 'Functional', 'config': config}).output_shape == (None, 2)


@pytest.mark.parametrize('axis, refused', [(-1, False), ([3], False), (3, False), (1, True)])
def test_batch_normalization_takes_the_last_axis_only(axis, refused):
    bn = {'class_name': 'BatchNormalization', 'config': {
        'name': 'bn', 'axis': axis, 'momentum': 0.9, 'epsilon': 1e-3, 'center': True,
        'scale': True, 'gamma_initializer': {'class_name': 'Ones', 'config': {}}}}
    spec = keras2_sequential(keras2_input('in', (4, 4, 2)), bn)
    if not refused:
        assert build(spec).get_layer('bn').momentum == 0.9
        return
    with pytest.raises(WeightFileError, match=r'bn \(BatchNormalization\): argument axis=1 '
                                              r'\(minidl normalises the last axis only'):
        build(spec)


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
