"""VGG16's pretrained weights from Keras's own h5 files, found offline; ImageNet helpers."""
import json

import h5py
import numpy as np
import pytest

from minidl.applications import VGG16
from minidl.applications.vgg16 import WEIGHT_FILES, decode_predictions, preprocess_input


def write_keras_weight_file(path, model, seed=0):
    """A weight file laid out as Keras writes the applications' ones: byte-string names, an
    input layer without weights, Keras 1 weight names; returns {layer: [arrays]}."""
    rng, written = np.random.default_rng(seed), {}
    with h5py.File(path, 'w') as f:
        f.attrs['layer_names'] = np.array([b'input_1'] + [layer.name.encode()
                                                          for layer in model.layers[1:]])
        f.attrs['backend'], f.attrs['keras_version'] = b'tensorflow', b'2.1.5'
        f.create_group('input_1').attrs['weight_names'] = np.array([], dtype='S1')
        for layer in model.layers[1:]:
            group = f.create_group(layer.name)
            names = [f'{layer.name}_{kind}_1:0'.encode() for kind in 'Wb'][:len(layer.weights)]
            group.attrs['weight_names'] = np.array(names, dtype='S')
            written[layer.name] = [rng.standard_normal(w.shape).astype(np.float32)
                                   for w in layer.weights]
            for name, array in zip(names, written[layer.name]):
                group.create_dataset(name.decode(), data=array)
    return written


def assert_loaded(model, written):
    for layer in model.layers[1:]:
        for weight, array in zip(layer.get_weights(), written[layer.name]):
            np.testing.assert_array_equal(weight, array)


def test_imagenet_weights_load_from_where_keras_caches_them(keras_home):
    source = VGG16(include_top=False, input_shape=(32, 32, 3))
    written = write_keras_weight_file(keras_home / WEIGHT_FILES[False], source)
    model = VGG16(include_top=False, weights='imagenet', input_shape=(32, 32, 3))
    assert_loaded(model, written)


def test_weights_load_from_a_path_and_from_minidl_home(keras_home, tmp_path):
    source = VGG16(include_top=False, input_shape=(32, 32, 3), pooling='max')
    written = write_keras_weight_file(tmp_path / 'mine.h5', source, seed=1)
    assert_loaded(VGG16(include_top=False, weights=tmp_path / 'mine.h5',
                        input_shape=(32, 32, 3)), written)
    (tmp_path / 'minidl' / 'models').mkdir(parents=True)
    (tmp_path / 'mine.h5').rename(tmp_path / 'minidl' / 'models' / WEIGHT_FILES[False])
    assert_loaded(VGG16(include_top=False, weights='imagenet', input_shape=(32, 32, 3)),
                  written)


def test_missing_imagenet_file_says_where_to_put_it(keras_home):
    with pytest.raises(FileNotFoundError, match=f'{WEIGHT_FILES[False]}.*downloads nothing'):
        VGG16(include_top=False, weights='imagenet', input_shape=(32, 32, 3))


def test_the_imagenet_classifier_needs_its_input_size_and_classes():
    with pytest.raises(ValueError, match=r'input_shape=\(224, 224, 3\) and classes=1000'):
        VGG16(weights='imagenet', input_shape=(150, 150, 3))


def test_a_file_for_another_architecture_lists_the_misfits_by_name(tmp_path):
    source = VGG16(include_top=False, input_shape=(32, 32, 3))
    write_keras_weight_file(tmp_path / 'notop.h5', source)
    with pytest.raises(ValueError, match=r'13 layers \(block1_conv1, .*block5_conv3\) but vgg16 '
                                         r'has 16 layers'):
        VGG16(weights=tmp_path / 'notop.h5', input_shape=(32, 32, 3), classes=10)


def test_preprocess_input_is_caffe_style_bgr_minus_the_mean_pixel():
    rgb = np.array([[[255, 0, 10]]], np.uint8)
    np.testing.assert_allclose(preprocess_input(rgb),
                               [[[10 - 103.939, 0 - 116.779, 255 - 123.68]]], rtol=1e-6)
    assert preprocess_input(rgb).dtype == np.float32 and rgb[0, 0, 0] == 255
    with pytest.raises(ValueError, match=r'RGB images \(\.\.\., 3\)'):
        preprocess_input(np.zeros((2, 2, 1)))


def test_decode_predictions_names_the_top_classes_from_keras_class_index(keras_home):
    index = {str(k): [f'n{k:08d}', f'class_{k}'] for k in range(1000)}
    (keras_home / 'imagenet_class_index.json').write_text(json.dumps(index))
    preds = np.full((2, 1000), 1e-4, np.float32)
    preds[0, [386, 101]], preds[1, 7] = (0.9, 0.08), 0.5
    decoded = decode_predictions(preds, top=2)
    assert decoded[0] == [('n00000386', 'class_386', pytest.approx(0.9)),
                          ('n00000101', 'class_101', pytest.approx(0.08))]
    assert decoded[1][0][:2] == ('n00000007', 'class_7') and len(decoded[1]) == 2
    with pytest.raises(ValueError, match=r'shape \(N, 1000\)'):
        decode_predictions(preds[:, :10])


def test_decode_predictions_without_the_class_index_says_where_to_put_it(keras_home):
    with pytest.raises(FileNotFoundError, match='imagenet_class_index.json'):
        decode_predictions(np.zeros((1, 1000)))
