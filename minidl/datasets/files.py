"""Finding the files Keras downloads for its datasets, offline, and checking them.

Keras keeps what it downloads in ``$KERAS_HOME/datasets`` (``~/.keras/datasets``, or
``/tmp/.keras/datasets`` where the home folder is not writable). minidl reads those copies and
never downloads: a file that is missing is a FileNotFoundError saying which file, its hash,
where Keras gets it and where to put it; a file whose hash is not the published one is a
ValueError naming it. Reads whose size a file header declares go through :func:`read_upto`,
so a header that lies never allocates more than the file really holds.
"""
import hashlib
import os
from pathlib import Path

from minidl.utils import cache_dir as minidl_cache

_CHUNK = 1 << 22
# where Keras keeps its files when the home folder is not writable
KERAS_FALLBACK = Path('/tmp/.keras/datasets')


def search_folders(cache_dir=None):
    """The folders a dataset file is looked for in, in order: ``cache_dir/datasets`` when
    ``cache_dir`` is given (Keras's argument of that name); otherwise
    ``$MINIDL_HOME/datasets``, then Keras's own ``datasets`` folders."""
    if cache_dir is not None:
        return [Path(cache_dir).expanduser() / 'datasets']
    keras_home = os.environ.get('KERAS_HOME')
    keras_homes = [Path(keras_home)] if keras_home else [Path('~/.keras').expanduser()]
    folders = [minidl_cache('datasets')] + [home / 'datasets' for home in keras_homes]
    folders.append(KERAS_FALLBACK)
    return list(dict.fromkeys(folders))


def first_existing(names, folders):
    """The first ``folder / name`` that exists, folders outermost; None when none does."""
    for folder in folders:
        for name in names:
            if (folder / name).exists():
                return folder / name
    return None


def not_found(dataset, what, url, file_hash, folders):
    """The FileNotFoundError for a dataset file that is nowhere to be found."""
    places = ', '.join(str(folder) for folder in folders)
    return FileNotFoundError(
        f'{dataset}: {what} not found, and minidl never downloads. Fetch {url} '
        f'({_algorithm(file_hash)} {file_hash}) and put it in one of {places}, or pass '
        f'path= to load_data')


def file_hash(file, algorithm):
    """The hex digest of ``file``'s bytes by ``algorithm`` ('sha256' or 'md5')."""
    digest = hashlib.new(algorithm)
    with open(file, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def verify(file, expected, dataset):
    """Check ``file`` against ``expected`` (64 hex digits: SHA-256, else MD5, as Keras's
    ``get_file`` decides); a mismatch is a ValueError naming the file and both hashes."""
    algorithm = _algorithm(expected)
    digest = file_hash(file, algorithm.lower().replace('-', ''))
    if digest != expected:
        raise ValueError(f'{dataset}: checksum mismatch for {file}: {algorithm} {digest}, '
                         f'expected {expected}; the file is damaged or is not the one Keras '
                         f'downloads')


def _algorithm(expected):
    return 'SHA-256' if len(expected) == 64 else 'MD5'


def read_upto(stream, size):
    """Up to ``size`` bytes of ``stream`` as a bytearray, read in chunks: a size that a header
    declares costs memory only as far as the stream really holds data."""
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(_CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    return data
