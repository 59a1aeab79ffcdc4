"""ImageNet helpers for the pretrained applications: finding Keras's files offline, the Caffe
preprocessing VGG16 was trained with, and turning 1000-way predictions into class names.

minidl downloads nothing. A file Keras would download is looked up where Keras caches it
(``$KERAS_HOME/models``, by default ``~/.keras/models``) and in ``$MINIDL_HOME/models``.
"""
import json
import os
from pathlib import Path

import numpy as np

from minidl.utils import cache_dir

CLASS_INDEX_FILE = 'imagenet_class_index.json'
# The mean ImageNet pixel in BGR order, which the original Caffe models subtracted.
IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def keras_file(name, purpose):
    """The path of Keras's file ``name``, found offline, or a FileNotFoundError that says
    where to put it; ``purpose`` says what needs it."""
    places = [Path(os.environ.get('KERAS_HOME', '~/.keras')).expanduser() / 'models' / name,
              cache_dir('models', name)]
    for path in places:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{purpose} needs Keras's file {name}, and minidl downloads nothing. Copy it (from a "
        f"machine where Keras fetched it into ~/.keras/models) to one of: "
        f"{', '.join(str(p) for p in places)}")


def preprocess_input(x):
    """RGB images (..., H, W, 3) with values 0..255 -> what the ImageNet VGG16 expects: BGR
    channel order with the mean ImageNet pixel subtracted (Caffe's convention; no scaling).
    Returns a new float32 array."""
    x = np.asarray(x, np.float32)
    if x.shape[-1] != 3:
        raise ValueError(f'preprocess_input expects RGB images (..., 3), got shape {x.shape}')
    return x[..., ::-1] - IMAGENET_MEAN_BGR


def decode_predictions(preds, top=5):
    """(N, 1000) class probabilities -> for each image, the ``top`` classes as
    ``(wordnet_id, name, probability)``, most probable first."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f'decode_predictions expects ImageNet predictions of shape (N, 1000), '
                         f'got {preds.shape}')
    path = keras_file(CLASS_INDEX_FILE, 'decode_predictions')
    with open(path) as f:
        index = json.load(f)
    return [[(*index[str(k)], float(row[k])) for k in np.argsort(row)[::-1][:top]]
            for row in preds]
