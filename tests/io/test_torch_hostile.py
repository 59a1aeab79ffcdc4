"""Crafted, damaged and hostile PyTorch checkpoints: each is refused with a WeightFileError
naming the file and the fault, within bounded time and memory, and never runs code.

The files are built here without PyTorch: :class:`Pickler` writes torch's globals as
:class:`Global` names and calls as :class:`Call`, storages as persistent ids like
``torch.save`` (``('storage', torch.FloatStorage, '0', 'cpu', 4)``), and :func:`write`
zips them as ``<dir>/data.pkl`` beside ``<dir>/data/<key>``."""
import collections
import copyreg
import io
import pickle
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import mutation
from minidl.io import WeightFileError, read_torch_checkpoint


class Global:
    """The module-level name ``module.name`` in a pickle, written without importing it."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args, state=None):
        return Call(self, args, state)


Call = collections.namedtuple('Call', 'func args state')  # func(*args), then BUILD(state)
Raw = collections.namedtuple('Raw', 'opcodes')  # pickle opcodes that push one object
Storage = collections.namedtuple('Storage', 'kind key count data location')

ORDERED_DICT = Global('collections', 'OrderedDict')
REBUILD = Global('torch._utils', '_rebuild_tensor_v2')
FLOAT, LONG, HALF, BOOL = (Global('torch', f'{kind}Storage')
                           for kind in ('Float', 'Long', 'Half', 'Bool'))


class Pickler(pickle._Pickler):
    """Pickles :class:`Global`, :class:`Call`, :class:`Raw` and :class:`Storage` the way
    torch.save writes its globals, reduced tensors and storages."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_name(self, name):
        if self.proto >= 4:
            self.save(name.module)
            self.save(name.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f'{name.module}\n{name.name}\n'.encode())
    dispatch[Global] = save_name

    def save_call(self, call):
        self.save(call.func)
        self.save(call.args)
        self.write(pickle.REDUCE)
        if call.state is not None:
            self.save(call.state)
            self.write(pickle.BUILD)
    dispatch[Call] = save_call

    def save_raw(self, raw):
        self.write(raw.opcodes)
    dispatch[Raw] = save_raw

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return 'storage', obj.kind, obj.key, obj.location, obj.count
        return None


def dumps(obj, protocol=2):
    """The pickle of ``obj`` (holding Globals, Calls, Raws and Storages)."""
    out = io.BytesIO()
    Pickler(out, protocol).dump(obj)
    return out.getvalue()


def storages_in(obj):
    """The Storages ``obj`` refers to, each once."""
    found = {}
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, Storage):
            found[item.key] = item
        elif isinstance(item, dict):
            stack += item.values()
        elif isinstance(item, (tuple, list)):
            stack += item
    return list(found.values())


def write(path, obj, protocol=2, byteorder=b'little', pickled=None, tamper=None,
          compression=zipfile.ZIP_STORED):
    """A torch.save-style zip at ``path`` holding ``obj`` (or the bytes ``pickled``) as
    ``archive/data.pkl`` and its storages; ``tamper(infos)`` may edit the zip directory's
    entries ``{name: ZipInfo}`` before it is written."""
    with zipfile.ZipFile(path, 'w', compression) as zf:
        zf.writestr('archive/data.pkl', dumps(obj, protocol) if pickled is None else pickled)
        zf.writestr('archive/version', '3\n')
        if byteorder is not None:
            zf.writestr('archive/byteorder', byteorder)
        for storage in storages_in(obj):
            zf.writestr(f'archive/data/{storage.key}', storage.data)
        if tamper:
            tamper({info.filename: info for info in zf.infolist()})
    return path


def set_fields(name, **fields):
    """A ``tamper`` setting ZipInfo ``fields`` of member ``name``."""
    def tamper(infos):
        for key, value in fields.items():
            setattr(infos[name], key, value)
    return tamper


def storage(values, kind=FLOAT, key='0', dtype='<f4', location='cpu'):
    """A Storage of ``values`` as ``dtype`` bytes."""
    data = np.asarray(values, dtype).tobytes()
    return Storage(kind, key, len(data) // np.dtype(dtype).itemsize, data, location)


def tensor(store, offset, size, stride, *extra):
    """A tensor as torch.save reduces it."""
    return REBUILD(store, offset, size, stride, False, ORDERED_DICT(), *extra)


def peak_bytes(read, path):
    """``read(path)``'s result (or WeightFileError) and the peak bytes it allocated."""
    tracemalloc.start()
    try:
        result = read(path)
    except WeightFileError as exc:
        result = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak


@pytest.fixture
def pt(tmp_path):
    return tmp_path / 'crafted.pt'


FOUR = storage([1, 2, 3, 4])
VALID = {'w': tensor(FOUR, 0, (4,), (1,))}


@pytest.mark.parametrize('offset, size, stride, fault', [
    (0, (8,), (1,), 'reaches element 7, past the 4 elements'),     # heap past the buffer
    (0, (50_000_000,), (1,), 'past the 4 elements'),               # a segfault before
    (0, (2, 2), (2 ** 40, 1), 'past the 4 elements'),
    (4, (1,), (1,), 'reaches element 4, past'),
    (0, (2,), (-1,), 'not all ints in'),
    (-1, (1,), (1,), 'not all ints in'),
    (0, (2.0,), (1,), 'not all ints in'),
    (0, (True,), (1,), 'not all ints in'),
    (0, (2 ** 70,), (1,), 'not all ints in'),
    (5, (0,), (1,), 'offset 5 is past the 4 elements'),
    (0, (2, 2), (1,), '2 sizes and 1 strides'),
    (0, (1,) * 40, (1,) * 40, 'at most 32'),
    (0, [4], [1], 'not both tuples'),
    ('0', (4,), (1,), 'not all ints in'),
])
def test_every_view_is_proven_inside_its_storage(pt, offset, size, stride, fault):
    write(pt, {'w': tensor(FOUR, offset, size, stride)})
    with pytest.raises(WeightFileError, match=rf"crafted.pt: the tensor on storage '0'.*{fault}"):
        read_torch_checkpoint(pt)


def test_views_inside_their_storage_read_as_pytorch_lays_them_out(pt):
    twelve = storage(np.arange(12))
    write(pt, {'t': tensor(twelve, 0, (4, 3), (1, 4)), 'slice': tensor(twelve, 5, (2, 2), (4, 1)),
               'scalar': tensor(twelve, 11, (), ()), 'empty': tensor(twelve, 12, (0, 3), (3, 1)),
               'expanded': tensor(twelve, 2, (3, 4), (0, 1))})
    state = read_torch_checkpoint(pt)
    grid = np.arange(12, dtype=np.float32)
    np.testing.assert_array_equal(state['t'], grid.reshape(3, 4).T)
    np.testing.assert_array_equal(state['slice'], [[5, 6], [9, 10]])
    assert state['scalar'].shape == () and state['scalar'] == 11
    assert state['empty'].shape == (0, 3)
    np.testing.assert_array_equal(state['expanded'], np.broadcast_to(grid[2:6], (3, 4)))


def test_a_deflated_checkpoint_reads_too(pt):
    write(pt, VALID, compression=zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(read_torch_checkpoint(pt)['w'], [1, 2, 3, 4])


def test_expanded_views_may_not_outgrow_the_storages(pt):
    write(pt, {'w': tensor(FOUR, 0, (2 ** 20, 2 ** 20), (0, 0))})
    result, peak = peak_bytes(read_torch_checkpoint, pt)
    assert isinstance(result, WeightFileError) and 'more than its file' in str(result)
    assert peak < 1 << 20
    many = {f'w{i}': tensor(FOUR, 0, (4096,), (0,)) for i in range(64)}  # 64 KiB each
    write(pt, many)
    with pytest.raises(WeightFileError, match="storage '0' takes 16384 bytes"):
        read_torch_checkpoint(pt)


def test_a_storage_must_have_exactly_the_bytes_its_record_declares(pt):
    write(pt, {'w': tensor(storage([1, 2, 3, 4])._replace(count=2 ** 40), 0, (4,), (1,))})
    with pytest.raises(WeightFileError, match=r'data/0 holds 16 bytes where its record in '
                                              r'data.pkl says 4398046511104'):
        read_torch_checkpoint(pt)
    write(pt, VALID, tamper=set_fields('archive/data/0', file_size=1 << 30),
          compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(WeightFileError, match='holds 1073741824 bytes where'):
        read_torch_checkpoint(pt)


@pytest.mark.parametrize('sizes, fault', [
    (dict(compress_size=14 << 20, file_size=14 << 20), 'claims 14680064 bytes at offset 0, '
                                                       'past the end of the'),
    (dict(file_size=14 << 20), r'data.pkl is stored in \d+ bytes but claims 14680064')])
def test_a_member_is_allocated_only_if_the_file_can_hold_it(pt, sizes, fault):
    """Reading a member allocates the size its zip entry claims, before any byte is read."""
    write(pt, VALID, tamper=set_fields('archive/data.pkl', **sizes))
    result, peak = peak_bytes(read_torch_checkpoint, pt)
    assert isinstance(result, WeightFileError) and re.search(fault, str(result)), result
    assert peak < 1 << 20


def test_a_member_inflating_past_its_declared_size_reads_no_further(pt):
    """The zip directory says 16 bytes; the deflated stream would give 64 MiB."""
    bomb = zipfile.ZipInfo('archive/data/0')
    bomb.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(pt, 'w') as zf:
        zf.writestr('archive/data.pkl', dumps(VALID))
        with zf.open(bomb, 'w') as member:
            for _ in range(64):
                member.write(bytes(1 << 20))
        bomb.file_size = 16
    result, peak = peak_bytes(read_torch_checkpoint, pt)
    assert isinstance(result, WeightFileError) and 'CRC' in str(result), result
    assert peak < 1 << 20


@pytest.mark.parametrize('opcodes', [
    b'}r' + struct.pack('<I', 2 ** 27),          # LONG_BINPUT: the C unpickler's memo grows
    b'}q\x00' + b'j' + struct.pack('<I', 2 ** 27),  # LONG_BINGET of nothing
    b'\x8e' + struct.pack('<Q', 2 ** 40) + b'ab',   # BINBYTES8 declaring 1 TiB
    b'\x8d' + struct.pack('<Q', 2 ** 40) + b'ab',   # BINUNICODE8
    b'\x95' + struct.pack('<Q', 2 ** 40) + b'}',    # FRAME
])
def test_declared_pickle_sizes_allocate_nothing(pt, opcodes):
    write(pt, None, pickled=b'\x80\x04' + opcodes + b'.')
    result, peak = peak_bytes(read_torch_checkpoint, pt)
    assert result == {} or isinstance(result, WeightFileError)
    assert peak < 1 << 20


def test_the_pickle_itself_is_bounded(pt):
    write(pt, None, pickled=pickle.dumps(bytes(17 << 20)))
    with pytest.raises(WeightFileError, match=r'data.pkl holds \d+ bytes, more than the '
                                              r'16777216 it may'):
        read_torch_checkpoint(pt)


@pytest.mark.parametrize('dtype, kind', [('<f4', FLOAT), ('<i8', LONG), ('<f2', HALF)])
@pytest.mark.parametrize('byteorder', [b'little', b'big', None])
def test_the_byteorder_record_is_honoured(pt, dtype, kind, byteorder):
    values = np.array([1.5, -2, 3, 1e4]).astype(dtype)
    stored = values.astype(np.dtype(dtype).newbyteorder('>')) if byteorder == b'big' else values
    write(pt, {'w': tensor(storage(stored, kind, dtype=stored.dtype), 1, (3,), (1,))},
          byteorder=byteorder)
    got = read_torch_checkpoint(pt)['w']
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, values[1:])


def test_an_unknown_byteorder_is_refused(pt):
    write(pt, VALID, byteorder=b'middle')
    with pytest.raises(WeightFileError, match="byteorder record is b'middle'"):
        read_torch_checkpoint(pt)


@pytest.mark.parametrize('build, dtype', [
    (lambda: tensor(storage([1, 2], Global('torch', 'BFloat16Storage'), dtype='<u2'), 0,
                    (2,), (1,)), 'bfloat16'),
    (lambda: tensor(storage([1, 2], Global('torch', 'ComplexFloatStorage'), dtype='<c8'), 0,
                    (2,), (1,)), 'complex64'),
    (lambda: Global('torch._utils', '_rebuild_qtensor')(
        storage([1, 2], Global('torch', 'QInt8Storage'), dtype='i1'), 0, (2,), (1,),
        (Global('torch', 'per_tensor_affine'), 0.1, 0), False, ORDERED_DICT()), 'qint8'),
    (lambda: Global('torch._utils', '_rebuild_tensor_v3')(
        storage([1, 2], Global('torch.storage', 'UntypedStorage'), dtype='u1'), 0, (2,), (1,),
        False, ORDERED_DICT(), Global('torch', 'float8_e4m3fn')), 'float8_e4m3fn'),
])
def test_unsupported_dtypes_are_named(pt, build, dtype):
    write(pt, {'w': build()})
    with pytest.raises(WeightFileError, match=f'dtype {dtype} is not supported'):
        read_torch_checkpoint(pt)


def test_a_bool_storage_holds_only_zeros_and_ones(pt):
    write(pt, {'m': tensor(storage([0, 1, 2], BOOL, dtype='u1'), 0, (3,), (1,))})
    with pytest.raises(WeightFileError, match='bool storage .* other than 0 and 1'):
        read_torch_checkpoint(pt)


@pytest.mark.parametrize('damage, fault', [
    (dict(tamper=set_fields('archive/data/0', CRC=0)), "BadZipFile: Bad CRC-32 for file "
                                                    "'archive/data/0'"),
    (dict(tamper=set_fields('archive/data/0', flag_bits=1)), 'member archive/data/0 is encrypted'),
    (dict(tamper=set_fields('archive/data.pkl', compress_type=99)), 'compressed with zip method 99'),
    (dict(tamper=set_fields('archive/data/0', compress_type=zipfile.ZIP_LZMA)), 'method 14'),
    (dict(pickled=dumps(VALID)[:-2]), 'EOFError|UnpicklingError'),
    (dict(pickled=b'\x80\x02\xff.'), 'pickle opcode 0xff \\(no opcode\\) is not allowed'),
    (dict(pickled=b'\x80\x02X\x02\x00\x00\x00\xff\xfe.'), 'UnicodeDecodeError'),
    (dict(pickled=b'\x80\x02J\x01\x00.'), 'UnpicklingError|struct.error|error'),
    (dict(pickled=b'\x80\x02s.'), 'IndexError|UnpicklingError'),
    (dict(pickled=b'\x80\x02K\x01K\x02s.'), 'IndexError|TypeError'),
    (dict(pickled=b'\x80\x02h\x05.'), 'Memo value not found'),
    (dict(pickled=b'\x80\x02c__builtin__\nlen\n.'), 'holds a __builtin__.len'),
    (dict(pickled=b'\x80\x02(KdQ.'), 'storage record'),
    (dict(pickled=b'\x80\x02Pfoo\n.'), "storage record 'foo'"),
    (dict(pickled=b'\x80\x02}}b.'), 'BUILD on a dict is not allowed'),
    (dict(pickled=b'\x80\x05\x8f.'), 'opcode EMPTY_SET is not allowed'),
    (dict(pickled=b'\x80\x05\x97.'), 'opcode NEXT_BUFFER is not allowed'),
])
def test_damaged_zips_and_pickles_raise_one_error_naming_the_fault(pt, damage, fault):
    write(pt, VALID, **damage)
    with pytest.raises(WeightFileError, match=f'crafted.pt: .*({fault})'):
        read_torch_checkpoint(pt)


@pytest.mark.parametrize('contents, kind', [
    (FLOAT, 'StorageType'), (REBUILD, 'method'), (ORDERED_DICT, 'type'),
    ({'w': [FOUR]}, 'Storage'), (Global('torch', 'uint16'), 'TorchDtype')])
def test_no_stand_in_of_a_torch_global_leaves_the_reader(pt, contents, kind):
    write(pt, contents)
    with pytest.raises(WeightFileError, match=f'holds a {kind} where a checkpoint holds only'):
        read_torch_checkpoint(pt)


def test_cyclic_and_deeply_nested_data_is_walked_without_recursion(pt):
    deep = b']' * 100_000 + b'a' * 99_999  # [[[...]]], 100 000 deep
    write(pt, None, pickled=b'\x80\x02' + deep + b'q\x00h\x00a.')  # the outermost in itself
    contents = read_torch_checkpoint(pt)
    assert contents[-1] is contents


def test_a_zip_spanning_disks_is_refused_by_the_same_error(pt):
    """zipfile.is_zipfile itself raises BadZipFile for a zip64 locator of two disks."""
    data = write(pt, VALID).read_bytes()
    end = data.rfind(b'PK\x05\x06')
    pt.write_bytes(data[:end] + struct.pack('<4sLQL', b'PK\x06\x07', 0, 0, 2) + data[end:])
    with pytest.raises(WeightFileError, match='span multiple disks'):
        read_torch_checkpoint(pt)


def test_files_that_are_no_checkpoint_say_so(tmp_path):
    with pytest.raises(WeightFileError, match='missing.pt: does not exist'):
        read_torch_checkpoint(tmp_path / 'missing.pt')
    with pytest.raises(WeightFileError, match='is a directory'):
        read_torch_checkpoint(tmp_path)
    (tmp_path / 'empty.pt').write_bytes(b'')
    with pytest.raises(WeightFileError, match='empty.pt: not a PyTorch checkpoint'):
        read_torch_checkpoint(tmp_path / 'empty.pt')
    with zipfile.ZipFile(tmp_path / 'other.zip', 'w') as zf:
        zf.writestr('readme.txt', 'hello')
    with pytest.raises(WeightFileError, match='with 0 data.pkl members'):
        read_torch_checkpoint(tmp_path / 'other.zip')


# --- the pickle-safety battery: payloads that would create MARKER, by every opcode that can
# reach a callable, placed wherever a pickle can hold an object ---

def unicode(text):
    """BINUNICODE ``text``."""
    data = text.encode()
    return b'X' + struct.pack('<I', len(data)) + data


# opcode, code and its packing, and the shell-running callable registered under the code
EXT_CODES = {'EXT1': (b'\x82', 0xf0, 'B', ('os', 'system')),
             'EXT2': (b'\x83', 0xf00d, '<H', ('posix', 'system')),
             'EXT4': (b'\x84', 0x7eadbeef, '<I', ('subprocess', 'getoutput'))}


def payload(how, command):
    """Opcodes that run the shell ``command`` (via os.system) when unpickled by a trusting
    unpickler, reaching the callable by opcode ``how``."""
    arg = unicode(command)
    if how == 'GLOBAL':
        return b'cos\nsystem\n(' + arg + b'tR'
    if how == 'STACK_GLOBAL':
        return unicode('os') + unicode('system') + b'\x93(' + arg + b'tR'
    if how == 'INST':
        return b'(' + arg + b'ios\nsystem\n'
    if how == 'OBJ':
        return b'(cos\nsystem\n' + arg + b'o'
    if how in EXT_CODES:
        op, code, fmt, _ = EXT_CODES[how]
        return op + struct.pack(fmt, code) + b'(' + arg + b'tR'
    if how == 'NEWOBJ':       # cls.__new__(cls) of an allowed class, then its state
        return b'ccollections\nOrderedDict\n)\x81(' + arg + b'tb'
    if how == 'NEWOBJ_EX':
        return b'ccollections\nOrderedDict\n)}\x92(' + arg + b'tb'
    raise ValueError(how)


HOWS = ['GLOBAL', 'STACK_GLOBAL', 'INST', 'OBJ', 'EXT1', 'EXT2', 'EXT4', 'NEWOBJ',
        'NEWOBJ_EX']
PLACES = {
    'top': lambda p: p,
    'state_dict value': lambda p: {'w': tensor(FOUR, 0, (4,), (1,)), 'x': p},
    'tensor argument': lambda p: {'w': tensor(FOUR, p, (4,), (1,))},
    'tensor metadata': lambda p: {'w': tensor(FOUR, 0, (4,), (1,), p)},
    'persistent id': lambda p: {'w': tensor(FOUR._replace(location=p), 0, (4,), (1,))},
    'storage type': lambda p: {'w': tensor(FOUR._replace(kind=p), 0, (4,), (1,))},
    'BUILD state': lambda p: ORDERED_DICT(state={'_metadata': p}),
}


@pytest.fixture
def extensions():
    """Shell-running callables registered as copyreg extension codes, and already in
    copyreg's cache of loaded extensions (as after any trusting unpickle of one)."""
    for op, code, fmt, (module, name) in EXT_CODES.values():
        copyreg.add_extension(module, name, code)
        pickle.loads(b'\x80\x02' + op + struct.pack(fmt, code) + b'.')
    yield
    for _, code, _, (module, name) in EXT_CODES.values():
        copyreg.remove_extension(module, name, code)


@pytest.mark.parametrize('place', PLACES)
@pytest.mark.parametrize('how', HOWS)
def test_no_payload_ever_runs(tmp_path, extensions, how, place):
    marker = tmp_path / 'marker'
    command = f'touch {marker}'
    write(tmp_path / 'evil.pt', PLACES[place](Raw(payload(how, command))))
    with pytest.raises(WeightFileError, match='evil.pt: '):
        read_torch_checkpoint(tmp_path / 'evil.pt')
    assert not marker.exists()


@pytest.mark.parametrize('protocol', range(6))
@pytest.mark.parametrize('target', [
    lambda m: Global('os', 'system')(f'touch {m}'),
    lambda m: Global('posix', 'system')(f'touch {m}'),
    lambda m: Global('builtins', 'open')(str(m), 'w'),
    lambda m: Global('builtins', 'exec')(f'open({str(m)!r}, "w")'),
    lambda m: Global('builtins', 'eval')(f'open({str(m)!r}, "w")'),
    lambda m: Global('subprocess', 'check_call')(['touch', str(m)]),
    lambda m: Global('builtins', 'getattr')(Global('os', 'system'), '__call__'),
    lambda m: Global('collections', 'OrderedDict')(state=Global('os', 'system')(f'touch {m}')),
])
def test_no_payload_runs_in_any_protocol(tmp_path, protocol, target):
    marker = tmp_path / 'marker'
    write(tmp_path / 'evil.pt', {'w': target(marker)}, protocol=protocol)
    with pytest.raises(WeightFileError, match='evil.pt: .*(holds a|not allowed)'):
        read_torch_checkpoint(tmp_path / 'evil.pt')
    assert not marker.exists()


def test_a_tensor_cannot_be_rebuilt_by_build(pt):
    """BUILD on an array would call ndarray.__setstate__ with the file's state."""
    write(pt, {'w': Call(REBUILD, (FOUR, 0, (4,), (1,), False, ORDERED_DICT()),
                         (1, (2,), 'f4', False, 'data'))})
    with pytest.raises(WeightFileError, match='BUILD on a ndarray is not allowed'):
        read_torch_checkpoint(pt)


# --- interop: the crafted files read as PyTorch reads them (needs PyTorch) ---

@pytest.mark.interop
@pytest.mark.parametrize('byteorder', [b'little', b'big'])
def test_crafted_files_read_as_pytorch_reads_them(pt, byteorder):
    torch = pytest.importorskip('torch')
    order = '>' if byteorder == b'big' else '<'
    floats = storage(np.arange(12) / 8, dtype=f'{order}f4')
    longs = storage(np.arange(-3, 3) * 2 ** 40, LONG, key='1', dtype=f'{order}i8')
    halves = storage([0.5, -1, 2], HALF, key='2', dtype=f'{order}f2')
    write(pt, {'t': tensor(floats, 0, (4, 3), (1, 4)), 'slice': tensor(floats, 5, (2, 2), (4, 1)),
               'expanded': tensor(floats, 2, (3, 4), (0, 1)), 'scalar': tensor(floats, 11, (), ()),
               'longs': tensor(longs, 1, (5,), (1,)), 'halves': tensor(halves, 0, (3,), (1,))},
          byteorder=byteorder)
    ours, theirs = read_torch_checkpoint(pt), torch.load(pt, weights_only=True)
    assert list(ours) == list(theirs)
    for name, tensor_ in theirs.items():
        np.testing.assert_array_equal(ours[name], tensor_.numpy(), err_msg=name)
        assert ours[name].dtype == tensor_.numpy().dtype


@pytest.mark.interop
@pytest.mark.parametrize('make, dtype', [
    (lambda torch: torch.zeros(2, dtype=torch.bfloat16), 'bfloat16'),
    (lambda torch: torch.zeros(2, dtype=torch.complex64), 'complex64'),
    (lambda torch: torch.zeros(2, dtype=torch.float8_e4m3fn), 'float8_e4m3fn'),
    (lambda torch: torch.zeros(2, dtype=torch.uint16), 'uint16'),
    (lambda torch: torch.quantize_per_tensor(torch.zeros(2), 0.1, 0, torch.qint8), 'qint8'),
])
def test_pytorch_tensors_of_other_dtypes_are_named(pt, make, dtype):
    torch = pytest.importorskip('torch')
    torch.save({'w': make(torch)}, pt)
    with pytest.raises(WeightFileError, match=f'dtype {dtype} is not supported'):
        read_torch_checkpoint(pt)


@pytest.mark.interop
def test_a_pytorch_training_checkpoint_reads_as_pytorch_reads_it(pt):
    torch = pytest.importorskip('torch')
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(4, 3)).sum().backward()
    sgd.step()
    torch.save({'model': net.state_dict(), 'optimizer': sgd.state_dict(), 'epoch': 3}, pt)
    ours, theirs = read_torch_checkpoint(pt), torch.load(pt, weights_only=True)

    def plain(value):  # torch.load's result with tensors as arrays
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(plain(item) for item in value)
        return value.numpy() if isinstance(value, torch.Tensor) else value
    assert mutation.same_arrays(ours, plain(theirs))
    assert ours['optimizer']['param_groups'] == theirs['optimizer']['param_groups']
