"""flow_from_directory and image_dataset_from_directory on tiny generated folders."""
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from minidl.preprocessing import image_dataset_from_directory
from minidl.preprocessing.image import ImageDataGenerator, load_img


def class_value(index):
    """The grey level every image of class ``index`` is filled with."""
    return 40 * (index + 1)


def write_image(path, value, size=(6, 8)):
    """An RGB image of ``size`` = (height, width) filled with ``value``, saved by extension."""
    Image.fromarray(np.full(size, value, np.uint8)).convert('RGB').save(path)


@pytest.fixture
def image_folder(tmp_path):
    """``image_folder({'cats': 3, 'dogs': 2}, ext='png')``: one subfolder per class, images
    named 0.ext, 1.ext, ... filled with :func:`class_value` of the class's sorted index."""
    def make(counts, ext='png', size=(6, 8), root='data'):
        directory = tmp_path / root
        for index, name in enumerate(sorted(counts)):
            (directory / name).mkdir(parents=True)
            for i in range(counts[name]):
                write_image(directory / name / f'{i}.{ext}', class_value(index), size)
        return directory
    return make


FLOW = ImageDataGenerator(rescale=1 / 255)


def flow(directory, **kwargs):
    kwargs = {'target_size': (6, 8), 'batch_size': 4, **kwargs}
    return FLOW.flow_from_directory(directory, **kwargs)


def class_of(image):
    """Recover the class index from the grey level a test image was filled with."""
    return int(round(image.mean() * 255 / 40)) - 1


def test_listing_classes_files_and_the_keras_message(image_folder, capsys):
    directory = image_folder({'dogs': 2, 'cats': 3})
    with flow(directory) as it:
        assert it.class_indices == {'cats': 0, 'dogs': 1}
        assert it.filenames == [os.path.join('cats', f'{i}.png') for i in range(3)] + \
            [os.path.join('dogs', f'{i}.png') for i in range(2)]
        np.testing.assert_array_equal(it.classes, [0, 0, 0, 1, 1])
        assert it.samples == 5 and len(it) == 2 and it.num_classes == 2
        assert it.filepaths[0] == os.path.join(str(directory), 'cats', '0.png')
    assert capsys.readouterr().out == 'Found 5 images belonging to 2 classes.\n'


@pytest.mark.parametrize('class_mode', ['categorical', 'binary', 'sparse'])
def test_labels_match_the_images_for_each_class_mode(image_folder, class_mode):
    directory = image_folder({'a': 5, 'b': 4}, ext='jpg')
    with flow(directory, class_mode=class_mode, seed=0) as it:
        for _ in range(2 * len(it)):
            x, y = next(it)
            assert x.shape[1:] == (6, 8, 3) and x.dtype == np.float32
            truth = [class_of(image) for image in x]
            if class_mode == 'categorical':
                assert y.dtype == np.float32 and y.shape == (len(x), 2)
                np.testing.assert_array_equal(y.argmax(1), truth)
            else:
                assert y.shape == (len(x),)
                assert y.dtype == (np.float32 if class_mode == 'binary' else np.int32)
                np.testing.assert_array_equal(y, truth)


def test_class_mode_input_and_none(image_folder):
    directory = image_folder({'a': 2, 'b': 2})
    with flow(directory, class_mode='input') as it:
        x, y = next(it)
        np.testing.assert_array_equal(x, y)
    with flow(directory, class_mode=None, shuffle=False) as it:
        batch = next(it)
        assert isinstance(batch, np.ndarray) and batch.shape == (4, 6, 8, 3)


@pytest.mark.parametrize('kwargs, message', [
    (dict(class_mode='multi'), 'class_mode must be one of'),
    (dict(color_mode='cmyk'), 'color_mode must be one of'),
    (dict(interpolation='cubic'), 'interpolation must be one of'),
    (dict(target_size=(0, 0)), r'target_size must be \(height, width\), two integers >= 1, '
                               r'got \(0, 0\)'),
    (dict(target_size=(6, -8)), 'target_size must be'),
    (dict(target_size=(6.5, 8)), 'target_size must be'),
    (dict(target_size=6), 'target_size must be .*got 6'),
])
def test_bad_arguments_fail_before_any_decoding(image_folder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        flow(image_folder({'a': 1}), **kwargs)


def test_binary_needs_two_classes(image_folder):
    with pytest.raises(ValueError, match=r"'binary' needs exactly 2 classes, found 3"):
        flow(image_folder({'a': 1, 'b': 1, 'c': 1}), class_mode='binary')


def test_epochs_cover_every_file_once_and_reshuffle(image_folder):
    directory = image_folder({'a': 5, 'b': 5})
    with flow(directory, class_mode='sparse', batch_size=3, seed=2) as it:
        epochs = []
        for _ in range(2):
            batches = [next(it) for _ in range(len(it))]
            assert [len(y) for _, y in batches] == [3, 3, 3, 1]
            epochs.append(np.concatenate([x.reshape(len(x), -1)[:, 0] for x, _ in batches]))
        assert it.epoch == 2
    assert sorted(np.concatenate([y for _, y in batches])) == [0] * 5 + [1] * 5
    assert not np.array_equal(epochs[0], epochs[1])


def test_explicit_classes_set_the_order_and_the_subset(image_folder):
    directory = image_folder({'a': 1, 'b': 2, 'c': 3})
    with flow(directory, classes=['c', 'a'], class_mode='sparse', shuffle=False) as it:
        assert it.class_indices == {'c': 0, 'a': 1} and it.samples == 4
        np.testing.assert_array_equal(next(it)[1], [0, 0, 0, 1])
    with pytest.raises(FileNotFoundError, match='class folder .*zebra'):
        flow(directory, classes=['a', 'zebra'])


def test_extensions_are_matched_case_insensitively_and_others_ignored(tmp_path):
    for name in ['x.PNG', 'y.Jpeg', 'z.bmp', 'w.tif', 'v.ppm']:
        (tmp_path / 'k').mkdir(exist_ok=True)
        write_image(tmp_path / 'k' / name, 40)
    (tmp_path / 'k' / 'notes.txt').write_text('not an image')
    (tmp_path / 'k' / 'deeper').mkdir()
    write_image(tmp_path / 'k' / 'deeper' / 'u.jpg', 40)
    with flow(tmp_path) as it:
        assert sorted(it.filenames) == sorted(os.path.join('k', n) for n in
                                              ['v.ppm', 'w.tif', 'x.PNG', 'y.Jpeg', 'z.bmp',
                                               os.path.join('deeper', 'u.jpg')])


def test_validation_split_is_per_class(image_folder):
    directory = image_folder({'a': 4, 'b': 6})
    gen = ImageDataGenerator(validation_split=0.5)
    with gen.flow_from_directory(directory, target_size=(6, 8), subset='validation') as val, \
            gen.flow_from_directory(directory, target_size=(6, 8), subset='training') as train:
        assert val.filenames == [os.path.join('a', '0.png'), os.path.join('a', '1.png')] + \
            [os.path.join('b', f'{i}.png') for i in range(3)]
        assert set(val.filenames).isdisjoint(train.filenames) and train.samples == 5


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.*does not exist'):
        flow(tmp_path / 'nowhere')


def test_no_class_folders_says_what_was_expected(tmp_path):
    write_image(tmp_path / 'loose.png', 40)
    with pytest.raises(ValueError, match='no class subfolders in .*one subfolder per class'):
        flow(tmp_path)


def test_no_images_says_what_was_searched(tmp_path):
    (tmp_path / 'cats').mkdir()
    (tmp_path / 'cats' / 'readme.txt').write_text('empty')
    with pytest.raises(ValueError, match=r"no images in .*\['cats'\] for files ending in .png"):
        flow(tmp_path)


@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_a_corrupt_file_is_skipped_with_one_warning_and_labels_stay_right(image_folder, damage):
    directory = image_folder({'a': 3, 'b': 3}, ext='jpg', size=(64, 64))
    bad = directory / 'b' / '1.jpg'
    data = bad.read_bytes()
    bad.write_bytes(b'not a jpeg at all' if damage == 'garbage' else data[:len(data) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with flow(directory, class_mode='sparse', batch_size=6, target_size=(8, 8)) as it:
            for _ in range(3):
                x, y = next(it)
                assert len(x) == len(y) == 5
                np.testing.assert_array_equal(y, [class_of(image) for image in x])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and str(bad) in messages[0]


def test_a_batch_of_only_corrupt_files_is_skipped(image_folder):
    directory = image_folder({'a': 2, 'b': 1})
    (directory / 'a' / '0.png').write_bytes(b'nope')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with flow(directory, class_mode='sparse', batch_size=1, shuffle=False) as it:
            labels = [next(it)[1].tolist() for _ in range(4)]
    assert labels == [[0], [1], [0], [1]]


def test_a_folder_of_only_corrupt_files_is_an_error(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'broken.png').write_bytes(b'nope')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with flow(tmp_path, prefetch=0) as it, pytest.raises(ValueError, match='none of the 1'):
            next(it)


def test_any_pixel_format_becomes_the_requested_colour_mode(tmp_path):
    folder = tmp_path / 'k'
    folder.mkdir()
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(folder / 'sixteen.png')
    palette = Image.new('P', (4, 4), 1)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.save(folder / 'palette.png', transparency=0)
    Image.new('RGBA', (4, 4), (10, 20, 30, 128)).save(folder / 'rgba.png')
    Image.new('L', (4, 4), 77).save(folder / 'grey.png')
    for mode, channels in [('rgb', 3), ('grayscale', 1), ('rgba', 4)]:
        it = ImageDataGenerator().flow_from_directory(tmp_path, target_size=(4, 4),
                                                      color_mode=mode, class_mode=None,
                                                      shuffle=False, prefetch=0)
        x = dict(zip(it.filenames, next(it)))
        assert all(image.shape == (4, 4, channels) for image in x.values())
        pixel = {name.split(os.sep)[1].split('.')[0]: image[0, 0] for name, image in x.items()}
        if mode == 'rgb':
            np.testing.assert_array_equal(pixel['sixteen'], [255] * 3)
            np.testing.assert_array_equal(pixel['palette'], [200, 100, 50])
            np.testing.assert_array_equal(pixel['rgba'], [10, 20, 30])
            np.testing.assert_array_equal(pixel['grey'], [77] * 3)
        if mode == 'rgba':
            assert pixel['rgba'][3] == 128 and pixel['grey'][3] == 255


def test_small_images_are_resized_up(tmp_path):
    (tmp_path / 'k').mkdir()
    write_image(tmp_path / 'k' / 'tiny.png', 90, size=(3, 2))
    assert load_img(tmp_path / 'k' / 'tiny.png', target_size=(30, 20)).size == (20, 30)
    with flow(tmp_path, target_size=(30, 20), class_mode=None) as it:
        np.testing.assert_allclose(next(it), 90 / 255)


def test_image_dataset_is_finite_reiterable_and_labelled(image_folder, capsys):
    directory = image_folder({'cats': 3, 'dogs': 2})
    ds = image_dataset_from_directory(directory, image_size=(6, 8), batch_size=2, seed=1)
    assert capsys.readouterr().out == 'Found 5 images belonging to 2 classes.\n'
    assert ds.class_names == ['cats', 'dogs'] and len(ds) == 3
    orders = []
    for _ in range(3):
        batches = list(ds)
        assert [len(y) for _, y in batches] == [2, 2, 1]
        for x, y in batches:
            assert x.dtype == np.float32 and y.dtype == np.int32 and x.max() > 1
            np.testing.assert_array_equal(y, [class_of(image / 255) for image in x])
        orders.append(np.concatenate([y for _, y in batches]))
    assert any(not np.array_equal(orders[0], order) for order in orders[1:])


@pytest.mark.parametrize('label_mode, shape, dtype', [
    ('categorical', (2, 2), np.float32), ('binary', (2, 1), np.float32), ('int', (2,), np.int32)])
def test_image_dataset_label_modes(image_folder, label_mode, shape, dtype):
    ds = image_dataset_from_directory(image_folder({'a': 2, 'b': 2}), label_mode=label_mode,
                                      image_size=(6, 8), batch_size=2)
    _, y = next(iter(ds))
    assert y.shape == shape and y.dtype == dtype


def test_image_dataset_split_and_images_only(image_folder):
    directory = image_folder({'a': 5, 'b': 5})
    val = image_dataset_from_directory(directory, label_mode=None, image_size=(6, 8),
                                       validation_split=0.2, subset='validation', batch_size=8)
    (batch,) = list(val)
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 6, 8, 3)
    with pytest.raises(ValueError, match="labels='inferred'"):
        image_dataset_from_directory(directory, labels=[0, 1])


def test_flow_from_directory_can_save_what_it_yields(image_folder, tmp_path):
    batch, _ = next(flow(image_folder({'cats': 3, 'dogs': 2}), shuffle=False, prefetch=0,
                         save_to_dir=tmp_path / 'out', save_format='jpeg'))
    saved = sorted((tmp_path / 'out').iterdir())
    assert len(saved) == len(batch) == 4 and all(p.suffix == '.jpeg' for p in saved)


def test_load_img_checks_target_size(image_folder):
    path = image_folder({'a': 1}) / 'a' / '0.png'
    with pytest.raises(ValueError, match=r'target_size must be .*got \(0, 8\)'):
        load_img(path, target_size=(0, 8))


def test_follow_links_enters_a_link_loop_once(image_folder):
    directory = image_folder({'cats': 2, 'dogs': 1})
    os.symlink('.', directory / 'cats' / 'again')  # cats/again/again/... is cats itself
    os.symlink('.', directory / 'cats' / 'twice')  # with two, os.walk's paths grow as 2**depth
    os.symlink('..', directory / 'dogs' / 'up')  # dogs/up is the root: cats and dogs
    with flow(directory, follow_links=True) as it:
        assert it.filenames == [os.path.join('cats', f'{i}.png') for i in range(2)] + [
            os.path.join('dogs', '0.png'), os.path.join('dogs', 'up', 'cats', '0.png'),
            os.path.join('dogs', 'up', 'cats', '1.png')]
    with flow(directory) as it:
        assert it.samples == 3


def test_a_link_to_a_sibling_class_folder_is_followed_as_keras_does(image_folder):
    directory = image_folder({'cats': 2, 'dogs': 1})
    os.symlink(os.path.join('..', 'cats'), directory / 'dogs' / 'more')
    with flow(directory, follow_links=True) as it:
        assert it.filenames[2:] == [os.path.join('dogs', '0.png')] + [
            os.path.join('dogs', 'more', f'{i}.png') for i in range(2)]
        np.testing.assert_array_equal(it.classes, [0, 0, 1, 1, 1])
