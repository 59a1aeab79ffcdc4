"""PyTorch checkpoints (``torch.save(model.state_dict(), path)``, or a training checkpoint
holding one) read without PyTorch, every tensor as a NumPy array.

``torch.save`` has written two formats, told apart by their first bytes as ``torch.load``
does:

* since PyTorch 1.6, a zip holding ``<dir>/data.pkl``, a pickle whose tensors point at raw
  storages ``<dir>/data/<key>`` beside it, in the byte order ``<dir>/byteorder`` names
  (little when absent);
* before it (and with ``_use_new_zipfile_serialization=False``; torchvision's published
  weights are such files), a stream of pickles: the magic number 0x1950a86a20f9469cfc6c, the
  format version 1001, the writer's sys_info, the contents (whose storage records carry a
  sixth field, the view of the storage a tensor uses, if any) and the list of storage keys,
  followed by each storage as an 8-byte element count and its bytes, little-endian whatever
  sys_info says, as torch writes and reads them.

Both are read by one unpickler over either source (:class:`_Archive`, :class:`_Stream`);
DESIGN.md's one module per format would have the two import each other, so they share this
one. The file comes from a stranger, so the reader trusts nothing in it:

* the pickles are read by :class:`~minidl.io.safe_pickle.SafeUnpickler` with a closed list of
  the globals a state_dict uses, mapped to inert stand-ins (the legacy format's other pickles
  with none): loading a file never runs its code;
* a storage is read only when the file can hold its declared element count times its item
  size: a zip member must have exactly that size (its CRC-32 checked), and the legacy format's
  storages together must fit in the bytes after the pickle before one is noted, and each
  carries its count, which must be the declared one;
* every tensor's offset, sizes and strides (and every legacy view's) are proven inside its
  storage before its array is made, and the arrays of one file may total at most twice the
  bytes of its storages (tied weights view one storage twice) plus 64 KiB, which refuses an
  expanded view (stride 0) of a tiny storage to a huge size: ``torch.save`` of a state_dict
  never writes one. Arrays are made as the pickle builds them and filled afterwards, one
  storage at a time, since the legacy format stores the storages after the pickle;
* anything wrong raises :class:`~minidl.io.WeightFileError` naming the file and the fault,
  the storage key for a storage or a tensor; the errors zipfile and the unpickler raise on
  damaged bytes become one at the single boundary, :func:`read_torch_checkpoint`.

:func:`minidl.io.torch_weights.load_torch_weights` gives what this reads to a minidl model.
"""
import collections
import contextlib
import io
import math
import os
import pickle
import reprlib
import struct
import zipfile
import zlib

import numpy as np

from minidl.io.errors import WeightFileError
from minidl.io.safe_pickle import SafeUnpickler

_MAX_PICKLE_BYTES = 16 << 20  # for a pickle (legacy: all five), at some 150 bytes a tensor
_MAX_RANK = 32                # NumPy's own limit; no weight comes near it
_MAX_INDEX = 1 << 62          # sizes, strides, offsets and counts are below this
_VIEW_ALLOWANCE = 64 << 10    # bytes of arrays a file may make beyond twice its storages
_ZIP_MAGIC = b'PK\x03\x04'    # how a zip starts, and so how torch tells its formats apart
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # the first pickle of the legacy format
_LEGACY_VERSION = 1001        # its second
# What zipfile and the unpickler raise on damaged bytes (a bad CRC, a truncated pickle, a
# malformed record); read_torch_checkpoint turns each into a WeightFileError.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, pickle.UnpicklingError, struct.error,
           ValueError, TypeError, LookupError, AttributeError, ArithmeticError, MemoryError,
           RuntimeError, OSError)

_StorageType = collections.namedtuple('_StorageType', 'dtype name')  # dtype None: unsupported
_TorchDtype = collections.namedtuple('_TorchDtype', 'name')
# count elements of dtype from element start of storage root (itself, unless a legacy view)
_Storage = collections.namedtuple('_Storage', 'key dtype count root start')

_STORAGES = {f'{name}Storage': _StorageType(np.dtype(dtype), dtype) for name, dtype in (
    ('Float', 'float32'), ('Double', 'float64'), ('Half', 'float16'), ('Long', 'int64'),
    ('Int', 'int32'), ('Short', 'int16'), ('Char', 'int8'), ('Byte', 'uint8'),
    ('Bool', 'bool'))}
_STORAGES.update({f'{name}Storage': _StorageType(None, dtype) for name, dtype in (
    ('BFloat16', 'bfloat16'), ('ComplexHalf', 'complex32'), ('ComplexFloat', 'complex64'),
    ('ComplexDouble', 'complex128'), ('QInt8', 'qint8'), ('QUInt8', 'quint8'),
    ('QInt32', 'qint32'), ('QUInt4x2', 'quint4x2'), ('QUInt2x4', 'quint2x4'))})
# dtypes without a storage class of their own, which torch.save writes with _rebuild_tensor_v3
_V3_DTYPES = ('uint16 uint32 uint64 float8_e4m3fn float8_e4m3fnuz float8_e5m2 float8_e5m2fnuz '
              'float8_e8m0fnu float4_e2m1fn_x2 complex32 bits8 bits16 bits1x8 bits2x4 bits4x2 '
              'int1 int2 int3 int4 int5 int6 int7 uint1 uint2 uint3 uint4 uint5 uint6 '
              'uint7').split()
_SUPPORTED = 'float16/32/64, int8/16/32/64, uint8 and bool'


class _Shown(reprlib.Repr):
    """Short reprs of values from the file, for messages: no huge string or int in full."""

    def __init__(self):
        super().__init__()
        self.maxstring, self.maxother = 200, 80

    def repr_int(self, value, level):
        return repr(value) if value.bit_length() < 64 else f'<int of {value.bit_length()} bits>'


show_value = _Shown().repr  # a value from a file, shortened for a message


def is_checkpoint(path):
    """Whether ``path`` holds a ``torch.save`` file: a zip with a ``data.pkl`` in it, or a
    stream that starts with the legacy format's magic number (a Keras ``.keras`` zip is
    neither)."""
    legacy = b'\x80\x02\x8a\x0a' + _LEGACY_MAGIC.to_bytes(10, 'little')
    try:
        with open(path, 'rb') as file:
            head = file.read(len(legacy))
            if not head.startswith(_ZIP_MAGIC):
                return head == legacy
            with zipfile.ZipFile(file) as zip_file:
                return any(name.split('/')[-1] == 'data.pkl' for name in zip_file.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def read_torch_checkpoint(path):
    """The contents of a ``torch.save`` file, in either of its formats, with every tensor as a
    NumPy array: for a state_dict, ``{name: array}`` in the model's module order. A file that
    is missing, damaged or holds anything but plain data and tensors raises WeightFileError."""
    if not os.path.isfile(path):
        raise WeightFileError(path, 'is a directory, not a checkpoint file'
                              if os.path.isdir(path) else 'does not exist')
    try:
        with open(path, 'rb') as file:
            if file.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC:
                with zipfile.ZipFile(file) as zip_file:
                    return _CheckpointUnpickler(_Archive(zip_file, path)).load()
            return _LegacyUnpickler(_Stream(file, path)).load()
    except WeightFileError:
        raise
    except _DAMAGE as exc:
        raise WeightFileError(path, f'cannot be read ({type(exc).__name__}: '
                                    f'{show_value(str(exc))[1:-1]})') from None


_PLAIN = {dict, collections.OrderedDict, list, tuple, str, bytes, bytearray, int, float, bool,
          type(None), np.ndarray}


def _check_plain(contents, source):
    """Refuse ``contents`` unless it is plain data and arrays all through: no stand-in of a
    torch global (a storage type, a bare storage, a rebuild function) may leave the reader.
    Walked without recursion, and each object once, since the memo can make cycles."""
    seen, stack = set(), [contents]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if type(item) not in _PLAIN:
            raise source.error(f'holds a {type(item).__name__.lstrip("_")} where a checkpoint '
                               f'holds only plain data and tensors')
        if isinstance(item, dict):
            stack += [*item, *item.values()]
        elif isinstance(item, (list, tuple)):
            stack += item


class _Archive:
    """The zip format: the one ``<dir>/data.pkl`` and its storages ``<dir>/data/<key>`` in
    the byte order ``<dir>/byteorder`` names. A member is read only once its directory entry
    is found sound: neither encrypted nor compressed by a method other than deflate, inside
    the file (reading a member allocates the size its entry claims) and of the size wanted."""

    def __init__(self, zip_file, path):
        self.zip, self.path, self.size = zip_file, path, os.path.getsize(path)
        self.members = {info.filename: info for info in zip_file.infolist()}
        pickles = [name for name in self.members if name.endswith('/data.pkl')]
        if len(pickles) != 1:
            raise self.error(f'a zip file with {len(pickles)} data.pkl members, not a PyTorch '
                             f'checkpoint (it has one)')
        self.prefix = pickles[0][:-len('/data.pkl')]
        self.order = _byteorder(self)
        self.storages = {}  # key: its bytes, read as the pickle names it

    def error(self, problem):
        """The WeightFileError naming this file and ``problem``."""
        return WeightFileError(self.path, problem)

    def pickle(self):
        """The bytes of ``data.pkl``."""
        return self.read(f'{self.prefix}/data.pkl', most=_MAX_PICKLE_BYTES)

    def declare(self, key, dtype, count):
        """Read storage ``key``, which the pickle says holds ``count`` elements of ``dtype``:
        its member must hold exactly that many bytes."""
        self.storages[key] = self.read(f'{self.prefix}/data/{key}', size=count * dtype.itemsize)

    def each_storage(self):
        """``(key, bytes)`` of each storage declared, given up as it is handed out."""
        while self.storages:
            key = next(iter(self.storages))
            yield key, self.storages.pop(key)

    def read(self, name, size=None, most=None):
        """The bytes of member ``name``: exactly ``size`` of them, or at most ``most``. Sizes
        are checked against the zip directory before reading, and the bytes read (never more
        than the directory says) against its size and CRC-32."""
        info = self.members.get(name)
        name = show_value(name)[1:-1]
        if info is None:
            raise self.error(f'has no member {name}')
        if info.flag_bits & 0x1:
            raise self.error(f'member {name} is encrypted')
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.error(f'member {name} is compressed with zip method '
                             f'{info.compress_type}; torch.save stores members uncompressed')
        if info.header_offset + info.compress_size > self.size:
            raise self.error(f'member {name} claims {info.compress_size} bytes at offset '
                             f'{info.header_offset}, past the end of the {self.size}-byte file')
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise self.error(f'member {name} is stored in {info.compress_size} bytes but '
                             f'claims {info.file_size}')
        if size is not None and info.file_size != size:
            raise self.error(f'member {name} holds {info.file_size} bytes where its record in '
                             f'data.pkl says {size}')
        if most is not None and info.file_size > most:
            raise self.error(f'member {name} holds {info.file_size} bytes, more than the '
                             f'{most} it may')
        with self.zip.open(info) as member:
            data = member.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise self.error(f'member {name} ends after {len(data)} of its {info.file_size} '
                             f'bytes')
        return data


def _byteorder(archive):
    """The byte order (``'<'`` or ``'>'``) the ``<dir>/byteorder`` record names; PyTorch
    before 1.11 wrote none, and only little-endian files."""
    name = f'{archive.prefix}/byteorder'
    if name not in archive.members:
        return '<'
    record = archive.read(name, most=16)
    if record not in (b'little', b'big'):
        raise archive.error(f'byteorder record is {show_value(record)}, not little or big')
    return '<' if record == b'little' else '>'


class _Stream:
    """The legacy format: pickles one after another (the magic number, the format's version,
    the writer's sys_info, the contents, the storage keys), then each storage as an 8-byte
    little-endian element count and its little-endian bytes. The pickles are read from the
    file's first 16 MiB; a storage only once the file is known to hold it."""

    order = '<'  # whatever sys_info says: torch writes little-endian storages on any machine

    def __init__(self, file, path):
        self.file, self.path = file, path
        self.size = os.fstat(file.fileno()).st_size
        file.seek(0)
        self.head = io.BytesIO(file.read(min(self.size, _MAX_PICKLE_BYTES)))  # read(n) takes n
        self.storages = {}  # key: (dtype, count), as the contents' pickle declares them
        self.declared = 0   # the bytes those take in the file, with their element counts
        try:
            magic = self.plain('magic number')
        except _DAMAGE:
            magic = None
        if type(magic) is not int or magic != _LEGACY_MAGIC:
            raise self.error('not a PyTorch checkpoint (torch.save writes a zip file, or '
                             'before PyTorch 1.6 a stream that starts with its magic number)')
        version = self.plain('format version')
        if type(version) is not int or version != _LEGACY_VERSION:
            raise self.error(f'legacy format version {show_value(version)}, not '
                             f'{_LEGACY_VERSION}, the one torch.save writes')
        if type(self.plain('sys_info')) is not dict:
            raise self.error('sys_info record is not a dict')

    def error(self, problem):
        """The WeightFileError naming this file and ``problem``."""
        return WeightFileError(self.path, problem)

    def plain(self, what):
        """The next pickle, which holds only plain data: no global, no persistent id."""
        with self.bounded():
            return SafeUnpickler(self.head, {}, lambda module, name: self.error(
                f'its {what} holds a {show_value(module)[1:-1]}.{show_value(name)[1:-1]}')).load()

    @contextlib.contextmanager
    def bounded(self):
        """Refuse, as such, a pickle that runs on past the first 16 MiB read."""
        try:
            yield
        except (EOFError, pickle.UnpicklingError):
            if self.head.tell() < _MAX_PICKLE_BYTES:
                raise
            raise self.error(f'its pickles run on past its first {_MAX_PICKLE_BYTES} bytes, '
                             f'the most a checkpoint\'s may take') from None

    def pickle(self):
        """The contents' pickle, read from where it starts to its end."""
        return self.head

    def declare(self, key, dtype, count):
        """Note storage ``key`` of ``count`` elements of ``dtype``, once sure that it and the
        storages declared before it fit in the bytes after the pickle read so far."""
        self.storages[key] = dtype, count
        self.declared += 8 + count * dtype.itemsize
        room = self.size - self.head.tell()
        if self.declared > room:
            raise self.error(f'storage {show_value(key)} takes the storages declared to '
                             f'{self.declared} bytes, more than the {room} left in the file')

    def each_storage(self):
        """``(key, bytes)`` of each storage, in the file's order, which the list of keys after
        the contents gives: exactly the keys the contents declared, each once."""
        keys = self.plain('list of storage keys')
        if type(keys) is not list or not all(type(key) is str for key in keys) or \
                sorted(keys) != sorted(self.storages):
            raise self.error(f'its list of storage keys, {show_value(keys)}, is not the '
                             f'{len(self.storages)} storages its tensors use, each once')
        offset = self.head.tell()
        for key in keys:
            data = self.read_storage(key, offset, *self.storages[key])
            yield key, data
            offset += 8 + len(data)

    def read_storage(self, key, offset, dtype, count):
        """The bytes of storage ``key`` (``count`` elements of ``dtype``) from ``offset``,
        after its element count, which must be ``count``; checked to be in the file before
        they are read."""
        nbytes = count * dtype.itemsize
        self.file.seek(offset)
        record = self.file.read(8)
        if len(record) != 8 or offset + 8 + nbytes > self.size:
            raise self.error(f'storage {show_value(key)} ({nbytes} bytes at offset {offset}) runs '
                             f'past the end of the {self.size}-byte file')
        if int.from_bytes(record, 'little') != count:
            raise self.error(f'storage {show_value(key)} holds {int.from_bytes(record, "little")} '
                             f'elements where the pickle says {count}')
        data = self.file.read(nbytes)
        if len(data) != nbytes:
            raise self.error(f'storage {show_value(key)} ends after {len(data)} of its {nbytes} bytes')
        return data


class _CheckpointUnpickler(SafeUnpickler):
    """Unpickles plain data and tensors, which become NumPy arrays, from the pickle of
    ``source`` (an :class:`_Archive` or a :class:`_Stream`). A tensor's array is made when
    the pickle builds it, and filled once the pickle is read: the legacy format stores the
    storages after the pickle."""

    def __init__(self, source):
        allowed = {('collections', 'OrderedDict'): collections.OrderedDict,
                   ('torch._utils', '_rebuild_tensor'): self.rebuild_tensor,
                   ('torch._utils', '_rebuild_tensor_v2'): self.rebuild_tensor,
                   ('torch._utils', '_rebuild_parameter'): self.rebuild_parameter,
                   ('torch._utils', '_rebuild_tensor_v3'): self.refuse_dtype,
                   ('torch._utils', '_rebuild_qtensor'): self.refuse_quantized,
                   ('torch.storage', 'UntypedStorage'): _StorageType(np.dtype('uint8'), 'uint8')}
        allowed.update({('torch', name): kind for name, kind in _STORAGES.items()})
        allowed.update({('torch', name): _TorchDtype(name) for name in _V3_DTYPES})
        super().__init__(source.pickle(), allowed, self.refuse_global)
        self.source = source
        self.storages = {}  # key: _Storage, named by the pickle
        self.copies = collections.defaultdict(list)  # root key: [(array, storage, offset, stride)]
        self.budget = _VIEW_ALLOWANCE  # bytes the arrays still to be made may take

    def load(self):
        """What the pickle holds, each tensor's array filled from its storage; refused unless
        it is plain data and tensors."""
        contents = super().load()
        _check_plain(contents, self.source)
        for key, raw in self.source.each_storage():
            self.fill(key, raw)
        return contents

    def fill(self, key, raw):
        """Copy into each array made on storage ``key`` (or on a view of it) its elements
        from ``raw``, the storage's bytes in the file's byte order."""
        dtype = self.storages[key].dtype
        if dtype == bool and raw.translate(None, b'\x00\x01'):
            raise self.source.error(f'bool storage {show_value(key)} holds bytes other than 0 and 1')
        data = np.frombuffer(raw, dtype.newbyteorder(self.source.order))
        for array, storage, offset, stride in self.copies.pop(key, ()):
            array[...] = np.lib.stride_tricks.as_strided(
                data[storage.start + offset:], array.shape,
                tuple(step * dtype.itemsize for step in stride))

    def persistent_load(self, pid):
        """The storage that a record ``('storage', torch.FloatStorage, key, location, count)``
        names, declared to the source once per key."""
        if not (type(pid) is tuple and len(pid) == 5 and type(pid[0]) is str and
                pid[0] == 'storage' and isinstance(pid[1], _StorageType) and
                type(pid[2]) is str and _is_index(pid[4])):
            raise self.source.error(f'storage record {show_value(pid)} is not (\'storage\', '
                                    f'storage type, key, location, count)')
        _, kind, key, _, count = pid
        if kind.dtype is None:
            raise self.source.error(f'storage {show_value(key)}: dtype {kind.name} is not '
                                    f'supported (minidl reads {_SUPPORTED} tensors)')
        if key not in self.storages:
            self.source.declare(key, kind.dtype, count)
            self.budget += 2 * count * kind.dtype.itemsize
            self.storages[key] = _Storage(key, kind.dtype, count, key, 0)
        storage = self.storages[key]
        if (storage.dtype, storage.count) != (kind.dtype, count):
            raise self.source.error(f'storage {show_value(key)} is named twice, with different '
                                    f'types or sizes')
        return storage

    def rebuild_tensor(self, storage, offset, size, stride, *_):
        """The array ``torch._utils._rebuild_tensor_v2`` (``_rebuild_tensor`` before PyTorch
        0.4) makes: ``size`` elements ``stride`` apart from element ``offset`` of ``storage``,
        in native byte order. Made once proven inside the storage and within the file's
        budget of array bytes (each storage lets the arrays made grow by twice its bytes),
        and filled by :meth:`fill`."""
        if not isinstance(storage, _Storage):
            raise self.source.error(f'a tensor on {show_value(storage)}, not on a storage')
        where = f'the tensor on storage {show_value(storage.key)}'
        problem = _view_problem(storage.count, offset, size, stride)
        if problem:
            raise self.source.error(f'{where}: {problem}')
        nbytes = math.prod(size) * storage.dtype.itemsize
        if nbytes > self.budget:
            raise self.source.error(f'{where} takes {nbytes} bytes (shape {tuple(size)}, '
                                    f'stride {tuple(stride)}), more than its file\'s '
                                    f'storages can hold')
        self.budget -= nbytes
        array = np.empty(size, storage.dtype)
        if nbytes:
            self.copies[storage.root].append((array, storage, offset, stride))
        return array

    def rebuild_parameter(self, data, *_):
        """``torch._utils._rebuild_parameter``: a Parameter is its tensor."""
        if not isinstance(data, np.ndarray):
            raise self.source.error(f'a parameter of {show_value(data)}, not of a tensor')
        return data

    def refuse_dtype(self, *args):
        """``torch._utils._rebuild_tensor_v3``, which torch.save writes for dtypes without a
        storage type (float8, uint16, ...): none that minidl reads."""
        dtype = args[6].name if len(args) > 6 and isinstance(args[6], _TorchDtype) else None
        raise self.source.error(f'dtype {dtype or "unknown"} is not supported (minidl reads '
                                f'{_SUPPORTED} tensors)')

    def refuse_quantized(self, *_):
        """``torch._utils._rebuild_qtensor``: quantized tensors are not read."""
        raise self.source.error(f'quantized tensors are not supported (minidl reads '
                                f'{_SUPPORTED} tensors)')

    def refuse_global(self, module, name):
        """The error for a global outside the closed list."""
        return self.source.error(f'holds a {show_value(module)[1:-1]}.{show_value(name)[1:-1]}, which a '
                                 f'state_dict of tensors does not; save model.state_dict(), '
                                 f'not the model object')

    def build(self, instance, state):
        """BUILD: only the ``_metadata`` torch sets on a state_dict (module versions, which
        minidl has no use for); it is dropped."""
        if type(instance) is not collections.OrderedDict or type(state) is not dict:
            raise self.source.error(f'pickle opcode BUILD on a {type(instance).__name__} is '
                                    f'not allowed')


class _LegacyUnpickler(_CheckpointUnpickler):
    """The legacy format's pickle, whose storage records carry a sixth field: None, or the
    ``(key, offset, count)`` of a view of the storage (which PyTorch before 1.0 wrote)."""

    def load(self):
        """As :meth:`_CheckpointUnpickler.load`; a pickle running on past the first 16 MiB
        is refused as such."""
        with self.source.bounded():
            return super().load()

    def persistent_load(self, pid):
        """The storage, or the view of it, that ``('storage', type, key, location, count,
        view)`` names."""
        if not (type(pid) is tuple and len(pid) == 6):
            raise self.source.error(f'storage record {show_value(pid)} is not (\'storage\', storage '
                                    f'type, key, location, count, view)')
        storage = super().persistent_load(pid[:5])
        return storage if pid[5] is None else self.view(storage, pid[5])

    def view(self, root, view):
        """Storage ``root``'s elements ``[offset, offset + count)``, as the view ``(key,
        offset, count)`` names them, once proven inside it; named by its key from then on."""
        if not (type(view) is tuple and len(view) == 3 and type(view[0]) is str):
            raise self.source.error(f'storage view {show_value(view)} is not (key, offset, count)')
        key, offset, count = view
        problem = _view_problem(root.count, offset, (count,), (1,))
        if problem:
            raise self.source.error(f'the view {show_value(key)} of storage {show_value(root.key)}: '
                                    f'{problem}')
        made = self.storages.setdefault(key, _Storage(key, root.dtype, count, root.key, offset))
        if made != (key, root.dtype, count, root.key, offset):
            raise self.source.error(f'storage {show_value(key)} is named twice, as different views')
        return made


def _is_index(value):
    """True for an int (not a bool) in ``[0, 2**62)``: a size, stride, offset or count."""
    return type(value) is int and 0 <= value < _MAX_INDEX


def _view_problem(count, offset, size, stride):
    """Why ``size`` elements ``stride`` apart from element ``offset`` are not a view inside a
    storage of ``count`` elements, or None when they are."""
    if type(size) is not tuple or type(stride) is not tuple:
        return f'size {show_value(size)} and stride {show_value(stride)} are not both tuples'
    if len(size) != len(stride) or len(size) > _MAX_RANK:
        return (f'{len(size)} sizes and {len(stride)} strides, where a tensor has as many of '
                f'each, at most {_MAX_RANK}')
    if not all(_is_index(n) for n in (offset, *size, *stride)):
        return (f'offset {show_value(offset)}, size {show_value(size)} and stride {show_value(stride)} are '
                f'not all ints in [0, 2**62)')
    if 0 in size:
        return f'offset {offset} is past the {count} elements of its storage' \
            if offset > count else None
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    return (f'size {size} with stride {stride} from offset {offset} reaches element {last}, '
            f'past the {count} elements of its storage') if last >= count else None
