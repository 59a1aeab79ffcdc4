"""Small helpers used across minidl: one-hot labels, safe file writes, the cache folder.

- :func:`to_categorical` turns class indices into one-hot rows, as Keras does.
- :func:`atomic_write` makes saving a model or a cache file all-or-nothing: a crash or an
  error halfway through never leaves a half-written file where a good one used to be.
- :func:`cache_dir` is where minidl keeps what it generates or a user drops in
  (``$MINIDL_HOME``, by default ``~/.minidl``).
- :func:`signature_config` builds ``get_config()`` dicts from an object's constructor.
- ``plot_model(model, to_file, show_shapes=...)`` draws a model's layers, as Keras's (it is
  :func:`minidl.viz.plot_model`).
"""
import contextlib
import inspect
import os
import re
import tempfile
import time
import types
from pathlib import Path

from minidl.backends import get_array_module


def as_list(value):
    """``value`` as a list: a list or tuple's items, or ``[value]`` for a single value."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def to_categorical(y, num_classes=None, dtype='float32'):
    """One-hot encode integer class labels.

    ``y`` of shape ``S`` (any shape; a trailing axis of size 1, as in ``(N, 1)``, is dropped)
    gives an array of shape ``S + (num_classes,)`` whose entry ``[..., k]`` is 1 where the
    label is ``k`` and 0 elsewhere: label ``k`` becomes row ``k`` of the identity matrix.
    ``num_classes`` defaults to ``max(y) + 1``. NumPy in, NumPy out; CuPy in, CuPy out.

    >>> to_categorical([0, 2, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    xp = get_array_module(y)
    labels = xp.asarray(y)
    if labels.dtype.kind not in 'biuf':
        raise TypeError(f'to_categorical: labels must be integers, got dtype {labels.dtype}')
    if labels.dtype.kind == 'f':
        whole = labels == xp.round(labels)
        if not bool(whole.all()):
            raise ValueError('to_categorical: labels must be whole numbers (class indices), '
                             f'got {labels[~whole][0]}')
    labels = labels.astype(xp.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if num_classes is None:
        if labels.size == 0:
            raise ValueError('to_categorical: cannot infer num_classes from empty labels; '
                             'pass num_classes=')
        num_classes = int(labels.max()) + 1
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f'to_categorical: labels must be >= 0, got {int(labels.min())}')
    if labels.size and int(labels.max()) >= num_classes:
        raise ValueError(f'to_categorical: label {int(labels.max())} is out of range for '
                         f'num_classes={num_classes} (labels must be in [0, {num_classes - 1}])')
    return xp.eye(num_classes, dtype=dtype)[labels]


# ``from keras.utils import np_utils`` then ``np_utils.to_categorical(...)``, as Keras 2.0
# lessons write it.
np_utils = types.SimpleNamespace(to_categorical=to_categorical)


@contextlib.contextmanager
def atomic_write(path):
    """Write ``path`` all-or-nothing: ``with atomic_write(p) as tmp: save_to(tmp)``.

    Yields the name of a fresh temporary file beside ``path``, ``.<name>.<pid>.<random>.tmp``
    plus ``path``'s extension (writers such as ``np.savez`` that add one keep the name). When
    the block ends normally the file is flushed to disk and renamed over ``path`` in one step;
    when it raises, the temporary file is removed and ``path`` is left as it was. A process
    killed mid-write cannot clean up, so every write first removes what killed writes of the
    same path left (see :func:`remove_stale_temps`).
    """
    path = Path(path)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.{os.getpid()}.',
                               suffix=f'.tmp{path.suffix}')
    os.close(fd)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


LEGACY_TEMP_AGE = 3600  # seconds after which a temp file without a pid counts as abandoned


def remove_stale_temps(path):
    """Remove the temporary files that :func:`atomic_write` of ``path`` left when its process
    was killed: those whose pid no longer runs on this machine (a save still running keeps
    its file), and those of older minidl versions, which carry no pid, once an hour old.

    Saves and loads of ``path`` call this; a folder that cannot be listed or written is left
    alone. On a folder shared between machines a pid says nothing about another machine's
    processes; such a file stays until its pid is free here too.
    """
    path = Path(path)
    pattern = re.compile(re.escape(f'.{path.name}.') + r'(?:(\d+)\.)?[A-Za-z0-9_]+' +
                         re.escape(f'.tmp{path.suffix}'))
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match and _abandoned(entry, match[1]):
                with contextlib.suppress(OSError):
                    os.remove(entry.path)


def _abandoned(entry, pid):
    """Whether the temp file ``entry`` (of process ``pid``, None for legacy names) is no
    longer being written."""
    if pid is None:
        return time.time() - entry.stat().st_mtime > LEGACY_TEMP_AGE
    return not _running(int(pid))


def _running(pid):
    """Whether a process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _umask():
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def cache_dir(*parts):
    """The folder ``$MINIDL_HOME/<parts...>`` (``MINIDL_HOME`` defaults to ``~/.minidl``).

    Only the path is returned; nothing is created.
    """
    return Path(os.environ.get('MINIDL_HOME', '~/.minidl')).expanduser().joinpath(*parts)


def signature_config(obj):
    """``{name: obj.name}`` for every named parameter of ``type(obj).__init__``.

    Objects that keep each constructor argument under its own name get ``get_config()`` for
    free, and ``type(obj)(**config)`` rebuilds them.
    """
    params = inspect.signature(type(obj)).parameters.values()
    return {p.name: getattr(obj, p.name) for p in params
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


class Configurable:
    """``get_config``/``from_config``/``repr`` derived from the constructor's arguments.

    For classes that keep each constructor argument under its own name (optimizers,
    initializers): ``type(obj).from_config(obj.get_config())`` builds an equal object.
    """

    def get_config(self):
        return signature_config(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ', '.join(f'{key}={value!r}' for key, value in self.get_config().items())
        return f'{type(self).__name__}({args})'


class Registry:
    """The named classes of one kind (initializers, constraints, optimizers) behind a Keras
    ``get(identifier)`` and ``serialize(obj)``: a name matches ignoring case and underscores
    ('he_normal', 'HeNormal'), and a config dict ``{'class_name': ..., 'config': {...}}``
    names its class."""

    def __init__(self, kind, classes):
        self.kind, self.names = kind, list(classes)
        self._by_key = {self._key(name): cls for name, cls in classes.items()}

    @staticmethod
    def _key(name):
        return str(name).replace('_', '').lower()

    def lookup(self, name):
        """The class registered under ``name``, or a ValueError listing the known names."""
        cls = self._by_key.get(self._key(name))
        if cls is None:
            raise ValueError(f'unknown {self.kind} {name!r}; known {self.kind}s: '
                             f'{", ".join(self.names)}')
        return cls

    def build(self, identifier, alternative):
        """An object from a name (default settings) or a config dict; anything else is a
        TypeError saying that ``alternative`` is accepted too."""
        if isinstance(identifier, dict):
            cls = self.lookup(identifier.get('class_name'))
            return cls.from_config(identifier.get('config', {}))
        if isinstance(identifier, str):
            return self.lookup(identifier)()
        raise TypeError(f'{self.kind} must be a name, a config dict or {alternative}, got '
                        f'{type(identifier).__name__}: {identifier!r}')

    def serialize(self, obj, base):
        """The config dict ``{'class_name', 'config'}`` that :meth:`build` reads (``None`` for
        none); an object that is no ``base`` (a plain function) has no config: a TypeError."""
        if obj is None:
            return None
        if not isinstance(obj, base):
            raise TypeError(f'cannot save the {self.kind} {obj!r}: only {base.__name__} objects '
                            f'have a config; subclass {base.__module__}.{base.__name__}')
        return {'class_name': type(obj).__name__, 'config': obj.get_config()}


def __getattr__(name):
    """``minidl.utils.image_dataset_from_directory``, ``plot_model`` and ``model_to_dot``,
    where Keras lessons import them (they live in higher layers, so they load on first use)."""
    if name == 'image_dataset_from_directory':
        from minidl.preprocessing import image_dataset_from_directory
        return image_dataset_from_directory
    if name in ('plot_model', 'model_to_dot'):
        from minidl.viz import graphs
        return getattr(graphs, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
