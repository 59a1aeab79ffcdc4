"""Keras 3's ``.keras`` archive, read and written: a zip holding ``config.json`` (the
architecture in Keras 3's spelling, see :mod:`minidl.io.keras_config`), ``metadata.json`` (the
Keras version) and ``model.weights.h5`` (the weights, one group per layer)::

    layers/<key>/vars/0, 1, ...      a layer's weights, trainable first, in creation order
    layers/<key>/layers/...          a nested model's layers, the same way
    vars                             the model's own (none)

``<key>`` is not the layer's name but its class in snake case, numbered within its model from
the second of a class on (``dense``, ``dense_1``): Keras 3 names the groups by the layers'
place, so the weights follow the config's layer order. A Sequential's layers exclude its input,
a functional model's include theirs (``input_layer``), as in Keras.

Reading trusts nothing in the zip: a member is read only when its directory entry is sound
(not encrypted, stored or deflated, inside the file, claiming no more than its compressed bytes
can expand to) and never past the size it claims; ``config.json`` may take at most
``CONFIG_LIMIT`` bytes; ``model.weights.h5`` is copied to a temporary file in chunks and read
with :mod:`minidl.io.keras_h5`'s checks; the model is built under a budget of the bytes that
file holds. Anything wrong raises :class:`~minidl.io.WeightFileError` naming the archive.

A compiled model's archive also holds its compile settings (``compile_config`` in
``config.json``) and its optimizer's state (``optimizer/vars`` in the weights file), in Keras 3's
spelling (:mod:`minidl.io.keras_training`), so ``load_model`` gives a model that trains on where
it stopped. The weights are Keras 3's ``.weights.h5`` layout (:mod:`minidl.io.keras3_weights`).
"""
import contextlib
import datetime
import json
import os
import tempfile
import zipfile
import zlib

import h5py

from minidl.io import keras3_weights, keras_h5, keras_training
from minidl.io.errors import WeightFileError
from minidl.io.keras_config import BUILD_SLACK, KERAS3, file_config, from_config
from minidl.layers.base import Layer
from minidl.utils import atomic_write

KERAS_VERSION = '3.15.1'  # the Keras whose spelling the archives minidl writes use
CONFIG_LIMIT = 16 << 20  # bytes config.json may hold; VGG16's takes 20 KB
DEFLATE_RATIO = 1032  # the most deflate expands its input
CHUNK = 1 << 20  # bytes copied at a time from the zip to the weights file
WEIGHTS = 'model.weights.h5'
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
           NotImplementedError)


def is_archive(path):
    """Whether ``path`` starts as a zip file does (a ``.keras`` archive is one)."""
    try:
        with open(path, 'rb') as f:
            return f.read(4) == b'PK\x03\x04'
    except OSError:
        return False


# --- writing -----------------------------------------------------------------------------
def save_model(model, filepath):
    """Write ``model`` as a ``.keras`` archive that Keras 3 ``load_model`` reads."""
    config = file_config(model, filepath, KERAS3)
    with atomic_write(filepath) as tmp, tempfile.TemporaryDirectory() as work:
        weights = os.path.join(work, WEIGHTS)
        with h5py.File(weights, 'w') as f:
            keras3_weights.write_weights(f, model)
            if model.loss is not None:
                config['compile_config'] = keras_training.compile_config(model)
                keras_training.write_keras3_optimizer(f, model)
        metadata = {'keras_version': KERAS_VERSION,
                    'date_saved': datetime.datetime.now().strftime('%Y-%m-%d@%H:%M:%S')}
        with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_STORED) as archive:
            archive.writestr('metadata.json', json.dumps(metadata))
            archive.writestr('config.json', json.dumps(config))
            archive.write(weights, WEIGHTS)


# --- reading -----------------------------------------------------------------------------
def load_model(filepath, compile=True):  # noqa: A002 - Keras's keyword
    """The model a ``.keras`` archive holds, with its weights and, with ``compile`` and
    compile settings in the archive, compiled with its optimizer in its saved state."""
    with _opened(filepath) as (path, members, reader):
        config = members.json('config.json')
        with Layer.weight_budget(os.path.getsize(reader.path) + BUILD_SLACK, path):
            model = from_config(config, path, 'config.json')
        keras3_weights.load_weights(reader, model)
        if compile and config.get('compile_config'):
            with keras_training.config_errors(path, 'compile_config', True):
                model.compile(*keras_training.keras3_compile_arguments(
                    config['compile_config']))
            keras_training.load_keras3_optimizer(reader, model)
    return model


def load_weights(model, filepath, skip_mismatch=False):
    """Give ``model`` the weights of a ``.keras`` archive (Keras 3's ``load_weights`` takes
    one too); its architecture is not consulted, only its layers' keys."""
    with _opened(filepath) as (_, _members, reader):
        keras3_weights.load_weights(reader, model, skip_mismatch=skip_mismatch)


@contextlib.contextmanager
def _opened(filepath):
    """``(path, members, reader)``: the archive's checked members and a Reader of its weights,
    copied out to a temporary file; damage anywhere is a WeightFileError naming the archive."""
    path = os.fspath(filepath)
    if not os.path.isfile(path):
        raise WeightFileError(path, 'is not a regular file (a directory?)' if
                              os.path.exists(path) else 'no such file')
    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as work:
            members = _Members(archive, path)
            weights = members.extract(WEIGHTS, work)
            with _weights_errors(path, weights), keras_h5.open_h5(weights) as reader:
                yield path, members, reader
    except WeightFileError:
        raise
    except _DAMAGE as exc:
        raise WeightFileError(path, f'damaged or not a .keras archive ({type(exc).__name__}: '
                                    f'{exc})') from None


@contextlib.contextmanager
def _weights_errors(path, weights):
    """An error about the extracted weights file names the archive and its member."""
    try:
        yield
    except WeightFileError as exc:
        if exc.path != weights:
            raise
        raise WeightFileError(path, f'{WEIGHTS}: {exc.problem}') from None


class _Members:
    """The members of an archive, each read only once its directory entry is found sound."""

    def __init__(self, archive, path):
        self.archive, self.path, self.size = archive, path, os.path.getsize(path)

    def info(self, name, most):
        """The checked directory entry of member ``name``, which may hold ``most`` bytes."""
        info = self.archive.NameToInfo.get(name)
        problem = None
        if info is None:
            problem = 'is missing (a .keras archive holds config.json and model.weights.h5)'
        elif info.flag_bits & 0x1:
            problem = 'is encrypted'
        elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problem = f'is compressed with zip method {info.compress_type}'
        elif info.header_offset + info.compress_size > self.size:
            problem = f'claims {info.compress_size} bytes past the end of the file'
        elif info.file_size > min(most, info.compress_size * (
                DEFLATE_RATIO if info.compress_type == zipfile.ZIP_DEFLATED else 1)):
            problem = f'claims {info.file_size} bytes, more than it can hold'
        if problem:
            raise WeightFileError(self.path, f'member {name} {problem}')
        return info

    def chunks(self, name, most):
        """The bytes of member ``name`` in pieces, never more than its entry claims."""
        info = self.info(name, most)
        left = info.file_size
        with self.archive.open(info) as member:
            while left:
                chunk = member.read(min(left, CHUNK))
                if not chunk:
                    raise WeightFileError(self.path, f'member {name} ends {left} bytes early')
                left -= len(chunk)
                yield chunk
            if member.read(1):
                raise WeightFileError(self.path, f'member {name} holds more than it claims')

    def json(self, name):
        """Member ``name`` parsed as JSON."""
        text = b''.join(self.chunks(name, CONFIG_LIMIT))
        try:
            return json.loads(text.decode('utf-8'))
        except (ValueError, RecursionError) as exc:
            raise WeightFileError(self.path, f'{name} is not valid JSON ({exc})') from None

    def extract(self, name, folder):
        """Copy member ``name`` into ``folder``; returns the new file's path."""
        target = os.path.join(folder, name)
        with open(target, 'wb') as out:
            for chunk in self.chunks(name, self.size * DEFLATE_RATIO):
                out.write(chunk)
        return target
