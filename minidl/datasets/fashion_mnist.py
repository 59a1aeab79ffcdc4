"""Fashion-MNIST, offline: ``(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()``.

Zalando's 28x28 greyscale photos of clothes, a drop-in for MNIST. Returns what Keras returns:
uint8 images ``(60000, 28, 28)`` and ``(10000, 28, 28)``, uint8 labels ``(60000,)`` and
``(10000,)`` with classes 0..9 (T-shirt/top, trouser, pullover, dress, coat, sandal, shirt,
sneaker, bag, ankle boot).

minidl never downloads. It reads the four gzipped IDX files Keras keeps in
``datasets/fashion-mnist`` of its cache (``$KERAS_HOME``, ``~/.keras``) or of
``$MINIDL_HOME``, or in the folder given as ``path=``. Keras checks no hash for these files;
minidl checks each against the MD5 that Zalando publishes (Keras's copies are those files).
"""
from pathlib import Path

from minidl.datasets import files
from minidl.datasets.idx import read_idx

DATASET = 'Fashion-MNIST'
SUBDIR = 'fashion-mnist'
URL = 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/'
# file -> (array it holds, its IDX dimensions, MD5 of the file)
FILES = {'train-images-idx3-ubyte.gz': ('x_train', 3, '8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
         'train-labels-idx1-ubyte.gz': ('y_train', 1, '25c81989df183df01b3e8a0aad5dffbe'),
         't10k-images-idx3-ubyte.gz': ('x_test', 3, 'bef4ecab320f06d8554ea6380940ec79'),
         't10k-labels-idx1-ubyte.gz': ('y_test', 1, 'bb300cfdad3c16e7a12a480ee83cd310')}


def load_data(path=None, cache_dir=None):
    """``((x_train, y_train), (x_test, y_test))`` as uint8 NumPy arrays (see the module doc).

    ``path``: a folder holding the four ``.gz`` files; ``cache_dir``: look in
    ``cache_dir/datasets/fashion-mnist`` instead, as Keras's argument does. Raises
    FileNotFoundError when a file is missing and ValueError when one is not intact.
    """
    if path is not None:
        folders = [Path(path).expanduser()]
        if not folders[0].is_dir():
            raise FileNotFoundError(f'{DATASET}: {folders[0]} is not a folder')
    else:
        folders = [folder / SUBDIR for folder in files.search_folders(cache_dir)]
    arrays = {}
    for name, (array, ndim, md5) in FILES.items():
        file = files.first_existing([name], folders)
        if file is None:
            raise files.not_found(DATASET, name, URL + name, md5, folders)
        files.verify(file, md5, DATASET)
        arrays[array] = read_idx(file, ndim, DATASET)
    for split in ('train', 'test'):
        images, labels = arrays[f'x_{split}'], arrays[f'y_{split}']
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f'{DATASET}: the {split} images are {images.shape} for '
                             f'{labels.shape} labels, expected (N, 28, 28) for (N,)')
    return (arrays['x_train'], arrays['y_train']), (arrays['x_test'], arrays['y_test'])
