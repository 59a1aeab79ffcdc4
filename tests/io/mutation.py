"""Byte-level mutation of valid files: the harness behind the readers' property tests.

A test writes a small valid file and hypothesis draws edits of its bytes (overwritten runs,
zeroed runs, flipped bits, truncation). Reading the edited file must give back exactly the
original arrays or raise :class:`~minidl.io.WeightFileError`; never another exception, never
more than ``factor`` times the file's weight bytes of memory (plus a fixed allowance for the
interpreter's own objects), never longer than ``seconds``.
"""
import time
import tracemalloc

import numpy as np
from hypothesis import strategies as st

from minidl.io import WeightFileError

ALLOWANCE = 1 << 20  # bytes of Python objects (h5py handles, pickle frames) any read may make


def edits(size):
    """A strategy of 1-3 edits of a ``size``-byte file, as ``(kind, position, value)``."""
    position = st.integers(0, size - 1)
    one = st.one_of(
        st.tuples(st.just('overwrite'), position, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just('zero'), position, st.integers(1, 64)),
        st.tuples(st.just('flip'), position, st.integers(0, 7)),
        st.tuples(st.just('truncate'), position, st.just(None)))
    return st.lists(one, min_size=1, max_size=3)


def apply_edits(data, changes):
    """``data`` (bytes) with ``changes`` from :func:`edits` applied in order."""
    data = bytearray(data)
    for kind, pos, value in changes:
        pos = min(pos, max(len(data) - 1, 0))
        if kind == 'overwrite':
            data[pos:pos + len(value)] = value
        elif kind == 'zero':
            data[pos:pos + value] = bytes(len(data[pos:pos + value]))
        elif kind == 'flip' and data:
            data[pos] ^= 1 << value
        elif kind == 'truncate':
            del data[pos:]
    return bytes(data)


def same_arrays(got, want):
    """True when two (nested dicts/lists of) arrays hold the same shapes, dtypes and bits."""
    if isinstance(want, dict):
        return isinstance(got, dict) and list(got) == list(want) and all(
            same_arrays(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(got) == len(want) and all(
            same_arrays(g, w) for g, w in zip(got, want))
    got, want = np.asarray(got), np.asarray(want)
    return got.shape == want.shape and got.dtype == want.dtype and \
        got.tobytes() == want.tobytes()


def check_read(read, path, data, original, weight_bytes, seconds=5.0, factor=2.0):
    """Write ``data`` to ``path`` and call ``read(path)``; assert it returns ``original`` or
    raises WeightFileError, within ``seconds`` and ``factor * weight_bytes`` of memory.
    Returns the exception raised, or None when the original came back."""
    path.write_bytes(data)
    tracemalloc.start()
    start = time.perf_counter()
    error = None
    try:
        result = read(path)
    except WeightFileError as exc:
        error = exc
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds, f'reading took {elapsed:.1f} s'
    assert peak <= factor * weight_bytes + ALLOWANCE, \
        f'reading allocated {peak} bytes for {weight_bytes} bytes of weights'
    if error is None:
        assert same_arrays(result, original), 'a damaged file loaded changed weights silently'
    return error
