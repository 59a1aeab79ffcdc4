"""Damaged copies of real PyTorch checkpoints: each reads back unchanged or raises
WeightFileError, in bounded time and memory (the harness is tests/io/mutation.py).

Byte edits of the whole file mostly hit CRC-protected members, so the pickle is also fuzzed on
its own: edited, then zipped again with a correct CRC, so the unpickler sees damaged but
CRC-valid pickles. Such a pickle may describe another valid object (an edited key, a shorter
list); what it must never do is raise anything but WeightFileError or outgrow its bounds."""
import io
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings

import mutation
from minidl.io import read_torch_checkpoint

DATA = Path(__file__).parent / 'data'
CONVNET = (DATA / 'tiny_convnet.pt').read_bytes()
CHECKPOINT = DATA / 'tiny_checkpoint.pt'  # a training checkpoint: tensors, floats, lists
PICKLE_NAME = 'tiny_checkpoint/data.pkl'
PICKLE = zipfile.ZipFile(CHECKPOINT).read(PICKLE_NAME)


def weight_bytes(contents):
    """The bytes of all arrays in a checkpoint's (nested) contents."""
    if isinstance(contents, dict):
        return sum(weight_bytes(value) for value in contents.values())
    if isinstance(contents, (list, tuple)):
        return sum(weight_bytes(value) for value in contents)
    return contents.nbytes if isinstance(contents, np.ndarray) else 0


def with_pickle(pickled):
    """tiny_checkpoint.pt's bytes with data.pkl replaced by ``pickled`` (a correct CRC)."""
    out = io.BytesIO()
    with zipfile.ZipFile(CHECKPOINT) as source, zipfile.ZipFile(out, 'w') as target:
        for info in source.infolist():
            target.writestr(info, pickled if info.filename == PICKLE_NAME else
                            source.read(info))
    return out.getvalue()


def is_plain(contents):
    """True when ``contents`` holds only plain data and arrays of the dtypes minidl reads
    (walked without recursion, as an edited memo reference can make it cyclic)."""
    seen, stack = set(), [contents]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack += list(item) + list(item.values())
        elif isinstance(item, (list, tuple)):
            stack += item
        elif isinstance(item, np.ndarray):
            if item.dtype.kind not in 'fiub' or not item.dtype.isnative:
                return False
        elif not isinstance(item, (str, bytes, bytearray, int, float, type(None))):
            return False
    return True


CONVNET_STATE = read_torch_checkpoint(DATA / 'tiny_convnet.pt')
CHECKPOINT_CONTENTS = read_torch_checkpoint(CHECKPOINT)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutation.edits(len(CONVNET)))
def test_a_damaged_checkpoint_reads_unchanged_or_raises(tmp_path, changes):
    mutation.check_read(read_torch_checkpoint, tmp_path / 'damaged.pt',
                        mutation.apply_edits(CONVNET, changes), CONVNET_STATE,
                        weight_bytes(CONVNET_STATE))


def read_anything_plain(path):
    """read_torch_checkpoint, standing in the original for any plain result: an edited but
    CRC-valid pickle may well describe another checkpoint."""
    contents = read_torch_checkpoint(path)
    assert is_plain(contents), 'a damaged pickle made something other than plain data'
    return CHECKPOINT_CONTENTS


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutation.edits(len(PICKLE)))
def test_a_damaged_pickle_reads_plain_data_or_raises(tmp_path, changes):
    mutation.check_read(read_anything_plain, tmp_path / 'damaged.pt',
                        with_pickle(mutation.apply_edits(PICKLE, changes)), CHECKPOINT_CONTENTS,
                        weight_bytes(CHECKPOINT_CONTENTS))
