"""The legacy ``torch.save`` format (PyTorch before 1.6, or ``_use_new_zipfile_serialization=
False``): pickles one after another, then the storages, read without PyTorch and without
running pickle code.

The real files, written by torch 2.13, are twins of the zip fixtures
(``fixtures/make_torch_legacy.py``). Crafted files are built by :func:`write` with
test_torch_hostile's pickler, their storage records carrying the legacy format's sixth field,
the view. Tests marked ``interop`` check crafted files against ``torch.load``."""
import collections
import io
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import mutation
from minidl import layers, models
from minidl.io import WeightFileError, load_torch_weights, read_torch_checkpoint
from test_torch_checkpoint import tiny_convnet
from test_torch_hostile import (HOWS, PLACES, Global, Pickler, Raw, Storage, extensions,
                                payload, peak_bytes, storage, storages_in, tensor)

DATA = Path(__file__).parent / 'data'
MAGIC, VERSION = 0x1950a86a20f9469cfc6c, 1001
SYS_INFO = {'protocol_version': VERSION, 'little_endian': True,
            'type_sizes': {'short': 2, 'int': 4, 'long': 8}}
HEADER = (MAGIC, VERSION, SYS_INFO)

View = collections.namedtuple('View', 'storage key offset count')  # a view of a storage


class LegacyPickler(Pickler):
    """Writes storage records as the legacy format does, with a sixth field: None, or for a
    :class:`View` its ``(key, offset, count)``."""

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return 'storage', obj.kind, obj.key, obj.location, obj.count, None
        if isinstance(obj, View):
            root = obj.storage
            return ('storage', root.kind, root.key, root.location, root.count,
                    (obj.key, obj.offset, obj.count))
        return None


def write(path, obj, header=HEADER, keys=None, counts=None, tail=b''):
    """A legacy-format file at ``path``: the ``header`` pickles, ``obj``, the list of
    storage ``keys`` (by default, the sorted keys of the storages in ``obj``) and the
    storages, each after its element count (``counts[key]``, by default its own)."""
    stores = {item.key: item for item in storages_in(obj)}
    out = io.BytesIO()
    for item in (*header, obj, sorted(stores) if keys is None else keys):
        LegacyPickler(out, 2).dump(item)
    for key in sorted(stores):
        out.write(struct.pack('<q', (counts or {}).get(key, stores[key].count)))
        out.write(stores[key].data)
    path.write_bytes(out.getvalue() + tail)
    return path


@pytest.fixture
def pt(tmp_path):
    return tmp_path / 'legacy.pt'


TWELVE = storage(np.arange(12))
FOUR = storage([1, 2, 3, 4])
OTHER = FOUR._replace(key='2')  # to be beside TWELVE
VALID = {'w': tensor(FOUR, 0, (4,), (1,))}


# --- real files, written by torch 2.13 ---

@pytest.mark.parametrize('name', ['tiny_convnet', 'tiny_checkpoint'])
def test_a_legacy_file_reads_as_its_zip_twin(name, tmp_path):
    twin = read_torch_checkpoint(DATA / f'{name}.pt')
    assert mutation.same_arrays(read_torch_checkpoint(DATA / f'{name}_legacy.pt'), twin)
    renamed = tmp_path / 'weights.zip'  # the format is told by the content, not the name
    renamed.write_bytes((DATA / f'{name}_legacy.pt').read_bytes())
    assert mutation.same_arrays(read_torch_checkpoint(renamed), twin)


def test_a_legacy_state_dict_computes_what_pytorch_computed():
    model = tiny_convnet()
    assert load_torch_weights(model, DATA / 'tiny_convnet_legacy.pt') == []
    expected = np.load(DATA / 'tiny_convnet_io.npz')
    np.testing.assert_allclose(model.predict(expected['x']), expected['y'], rtol=1e-5,
                               atol=1e-5)


def test_a_base_takes_the_first_modules_of_a_whole_state_dict_only_when_asked():
    """As VGG16(include_top=False) takes the ``features.*`` of torchvision's state_dict."""
    base = models.Sequential([layers.Input((8, 8, 3)), *tiny_convnet().layers[:-2]])
    with pytest.raises(ValueError, match='4 modules .* 3 layers .*pass strict=False'):
        load_torch_weights(base, DATA / 'tiny_convnet_legacy.pt')
    assert load_torch_weights(base, DATA / 'tiny_convnet_legacy.pt', strict=False) == ['7']
    state = read_torch_checkpoint(DATA / 'tiny_convnet.pt')
    np.testing.assert_array_equal(base.layers[-1].get_weights()[0],
                                  state['4.weight'].transpose(2, 3, 1, 0))
    bigger = models.Sequential([layers.Input((8, 8, 3)), *tiny_convnet().layers, layers.Dense(2)])
    with pytest.raises(ValueError, match='the checkpoint has 4 modules .* 5 layers'):
        load_torch_weights(bigger, DATA / 'tiny_convnet_legacy.pt', strict=False)


# --- the layout: crafted files ---

def test_crafted_files_read_as_pytorch_lays_them_out(pt):
    write(pt, {'t': tensor(TWELVE, 0, (4, 3), (1, 4)), 'v1': Global('torch._utils',
          '_rebuild_tensor')(OTHER, 1, (3,), (1,)), 'scalar': tensor(TWELVE, 11, (), ())},
          tail=b'another object torch.save wrote to the same open file')
    state = read_torch_checkpoint(pt)
    np.testing.assert_array_equal(state['t'], np.arange(12, dtype=np.float32).reshape(3, 4).T)
    np.testing.assert_array_equal(state['v1'], [2, 3, 4])
    assert state['scalar'].shape == () and state['scalar'] == 11


def test_storages_are_little_endian_whatever_sys_info_says(pt):
    """torch writes little-endian storages on any machine; sys_info describes the writer."""
    write(pt, VALID, header=(MAGIC, VERSION, {**SYS_INFO, 'little_endian': False}))
    np.testing.assert_array_equal(read_torch_checkpoint(pt)['w'], [1, 2, 3, 4])


def test_views_of_a_storage_read_as_pytorch_lays_them_out(pt):
    middle, end = View(TWELVE, 'view', 4, 6), View(TWELVE, 'end', 10, 2)
    write(pt, {'square': tensor(middle, 1, (2, 2), (3, 1)), 'again': tensor(middle, 0, (6,), (1,)),
               'end': tensor(end, 0, (2,), (1,)), 'root': tensor(TWELVE, 0, (12,), (1,))})
    state = read_torch_checkpoint(pt)
    np.testing.assert_array_equal(state['square'], [[5, 6], [8, 9]])
    np.testing.assert_array_equal(state['again'], np.arange(4, 10))
    np.testing.assert_array_equal(state['end'], [10, 11])
    np.testing.assert_array_equal(state['root'], np.arange(12))


@pytest.mark.parametrize('obj, fault', [
    ({'w': tensor(View(TWELVE, 'v', 10, 4), 0, (1,), (1,))},
     "the view 'v' of storage '0': size \\(4,\\) .* reaches element 13, past the 12"),
    ({'w': tensor(View(TWELVE, 'v', 13, 0), 0, (0,), (1,))}, 'offset 13 is past the 12'),
    ({'w': tensor(View(TWELVE, 'v', -1, 2), 0, (1,), (1,))}, 'not all ints'),
    ({'w': tensor(View(TWELVE, 'v', 2 ** 70, 2), 0, (1,), (1,))}, 'not all ints'),
    ({'w': tensor(View(TWELVE, 'v', 0, 6), 0, (7,), (1,))},
     "the tensor on storage 'v': .* past the 6 elements"),
    ({'w': tensor(View(TWELVE, 'v', 0, 6), 0, (1,), (1,)),
      'x': tensor(View(TWELVE, 'v', 1, 6), 0, (1,), (1,))}, "'v' is named twice, as different"),
    ({'w': tensor(View(TWELVE, '0', 1, 6), 0, (1,), (1,))}, "'0' is named twice"),
    ({'w': tensor(View(TWELVE, 7, 0, 6), 0, (1,), (1,))}, 'view .* is not \\(key, offset, count'),
])
def test_every_view_is_proven_inside_its_storage(pt, obj, fault):
    write(pt, obj)
    with pytest.raises(WeightFileError, match=f'legacy.pt: .*{fault}'):
        read_torch_checkpoint(pt)


@pytest.mark.parametrize('damage, fault', [
    (dict(counts={'0': 5}), "storage '0' holds 5 elements where the pickle says 4"),
    (dict(counts={'0': 2 ** 62}), 'holds 4611686018427387904 elements where'),
    (dict(keys=[]), 'list of storage keys, \\[\\], is not the 1 storages'),
    (dict(keys=['0', '0']), 'is not the 1 storages its tensors use, each once'),
    (dict(keys=['0', '1']), 'list of storage keys'),
    (dict(keys=[0]), 'list of storage keys'),
    (dict(keys=('0',)), 'list of storage keys'),
    (dict(header=(5, VERSION, SYS_INFO)), 'not a PyTorch checkpoint'),
    (dict(header=(MAGIC, 1000, SYS_INFO)), 'legacy format version 1000, not 1001'),
    (dict(header=(MAGIC, VERSION, [SYS_INFO])), 'sys_info record is not a dict'),
    (dict(header=(MAGIC, VERSION, Global('os', 'uname')())), 'sys_info holds a os.uname'),
])
def test_a_damaged_layout_raises_one_error_naming_the_fault(pt, damage, fault):
    write(pt, VALID, **damage)
    with pytest.raises(WeightFileError, match=f'legacy.pt: .*{fault}'):
        read_torch_checkpoint(pt)


def test_a_truncated_storage_is_refused(pt):
    data = write(pt, {'a': tensor(FOUR, 0, (4,), (1,)),
                      'b': tensor(storage([5, 6], key='1'), 0, (2,), (1,))}).read_bytes()
    for cut, fault in ((4, "'1' \\(8 bytes at offset \\d+\\) runs past the end"),
                       (12, "'1' .* runs past the end"), (20, "'0' .* runs past the end")):
        pt.write_bytes(data[:-cut])
        with pytest.raises(WeightFileError, match=fault):
            read_torch_checkpoint(pt)


@pytest.mark.parametrize('obj, fault', [
    ({'w': tensor(FOUR._replace(count=2 ** 40), 0, (4,), (1,))},
     "storage '0' takes the storages declared to 4398046511112 bytes, more than the"),
    ({f'w{i}': tensor(FOUR._replace(key=str(i), count=100), 0, (1,), (1,))  # each could fit
      for i in range(64)}, "storage '[1-9][0-9]*' takes the storages declared to"),
    ({'w': tensor(FOUR, 0, (2 ** 20, 2 ** 20), (0, 0))}, 'more than its file'),
])
def test_nothing_is_allocated_before_the_file_is_known_to_hold_it(pt, obj, fault):
    write(pt, obj)
    result, peak = peak_bytes(read_torch_checkpoint, pt)
    assert isinstance(result, WeightFileError) and re.search(fault, str(result)), result
    assert peak < 1 << 20


@pytest.mark.parametrize('place', ['contents', 'keys'])
def test_the_pickles_are_read_from_the_first_16_MiB_only(pt, place):
    big = 'x' * (16 << 20)
    write(pt, {'w': big} if place == 'contents' else {}, keys=[big] if place == 'keys' else None)
    with pytest.raises(WeightFileError, match='pickles run on past its first 16777216 bytes'):
        read_torch_checkpoint(pt)


def test_files_that_are_no_checkpoint_say_so(tmp_path):
    for name, data in (('notes.txt', b'cats and dogs\n'), ('one.pkl', b'\x80\x02K\x01.'),
                       ('image.png', b'\x89PNG\r\n\x1a\n' + bytes(64)),
                       ('evil.pkl', b'cos\nsystem\n(X\x02\x00\x00\x00lstR.')):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(WeightFileError, match=f'{name}: not a PyTorch checkpoint'):
            read_torch_checkpoint(tmp_path / name)


# --- the pickle-safety battery, in the legacy format's five pickles ---

LEGACY_PLACES = {
    **PLACES,
    'view key': lambda p: {'w': tensor(View(FOUR, p, 0, 4), 0, (4,), (1,))},
    'view metadata': lambda p: {'w': tensor(View(FOUR, 'v', p, 4), 0, (4,), (1,))},
}
HEADER_PLACES = {'magic number': 0, 'format version': 1, 'sys_info': 2}


@pytest.mark.parametrize('place', [*LEGACY_PLACES, *HEADER_PLACES, 'storage keys'])
@pytest.mark.parametrize('how', HOWS)
def test_no_payload_ever_runs(tmp_path, extensions, how, place):
    marker = tmp_path / 'marker'
    evil = Raw(payload(how, f'touch {marker}'))
    if place in HEADER_PLACES:
        header = list(HEADER)
        header[HEADER_PLACES[place]] = evil
        write(tmp_path / 'evil.pt', VALID, header=header)
    elif place == 'storage keys':
        write(tmp_path / 'evil.pt', VALID, keys=evil)
    else:
        write(tmp_path / 'evil.pt', LEGACY_PLACES[place](evil))
    with pytest.raises(WeightFileError, match='evil.pt: '):
        read_torch_checkpoint(tmp_path / 'evil.pt')
    assert not marker.exists()


# --- damaged copies of the real file ---

CONVNET = (DATA / 'tiny_convnet_legacy.pt').read_bytes()
CONVNET_STATE = read_torch_checkpoint(DATA / 'tiny_convnet.pt')


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutation.edits(len(CONVNET)))
def test_a_damaged_legacy_file_reads_unchanged_or_raises(tmp_path, changes):
    """No CRC guards the legacy format: an edited key or count may read as another valid
    state_dict, which must still be plain data of the dtypes minidl reads."""
    def read(path):
        contents = read_torch_checkpoint(path)
        assert all(type(name) is str and isinstance(array, np.ndarray) and
                   array.dtype.isnative for name, array in contents.items())
        return CONVNET_STATE
    mutation.check_read(read, tmp_path / 'damaged.pt', mutation.apply_edits(CONVNET, changes),
                        CONVNET_STATE, sum(a.nbytes for a in CONVNET_STATE.values()))


# --- interop: crafted files read as PyTorch reads them (needs PyTorch) ---

@pytest.mark.interop
def test_crafted_legacy_files_read_as_pytorch_reads_them(pt):
    torch = pytest.importorskip('torch')
    middle = View(TWELVE, 'view', 4, 6)
    write(pt, {'t': tensor(TWELVE, 0, (4, 3), (1, 4)), 'square': tensor(middle, 1, (2, 2), (3, 1)),
               'v1': Global('torch._utils', '_rebuild_tensor')(OTHER, 1, (3,), (1,)),
               'longs': tensor(storage(np.arange(-3, 3) * 2 ** 40, Global('torch', 'LongStorage'),
                                       key='1', dtype='<i8'), 1, (5,), (1,))},
          header=(MAGIC, VERSION, {**SYS_INFO, 'little_endian': False}), tail=b'more')
    ours, theirs = read_torch_checkpoint(pt), torch.load(pt, weights_only=False)
    assert list(ours) == list(theirs)
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)
        assert ours[name].dtype == value.numpy().dtype


@pytest.mark.interop
def test_pytorch_legacy_files_read_as_pytorch_reads_them(pt):
    torch = pytest.importorskip('torch')
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    state = {**net.state_dict(), 'tied': net[0].weight[1:], 'half': torch.ones(3).half()}
    torch.save(state, pt, _use_new_zipfile_serialization=False)
    ours = read_torch_checkpoint(pt)
    assert mutation.same_arrays(ours, {k: v.detach().numpy() for k, v in state.items()})
