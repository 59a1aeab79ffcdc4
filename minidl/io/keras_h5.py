"""Keras 2's h5 layout, written without a global heap and read without trusting the file.

The layout (Keras 2's ``model.save``/``save_weights``; minidl writes the same)::

    /                      attrs model_config, training_config (JSON text)
    /model_weights         attrs layer_names: the layers in order
        /<layer>           attrs weight_names; one dataset per weight
        /<nested model>    attrs weight_names <layer>/<weight>: all its weights, as Keras 2
                           (older minidl wrote layer_names and a group per layer; read too)
    /optimizer_weights     attrs weight_names; datasets iterations, <weight>/<slot>

Writing: every string is a fixed-length byte string (Keras 2 writes names so too), so minidl's
files hold no global heap, the structure libhdf5 walks without checking progress. Text too long
for an object header (64 KB) is the one exception, stored as Keras does, variable-length. Every
dataset carries a CRC-32 of its dtype, shape and bytes, and every text attribute one of its
text, so damage is refused instead of loaded.

Reading: before h5py opens a file, every global heap collection in it (older minidl and
Keras files hold their names there) is walked as libhdf5 walks it, and one that would make
libhdf5 loop forever or read outside it is refused (see :func:`check_global_heaps`); before a
variable-length attribute is read, its references into those heaps are checked in its object
header, since libhdf5 allocates whatever length a reference declares. Every attribute and
dataset is checked from its metadata (kind, shape, storage, bytes against the file's size)
before its data is read, and any h5py error on the way becomes a
:class:`~minidl.io.WeightFileError` naming the file. Only what HDF5's file format
specification says of these few structures is parsed here; everything else is h5py's.
"""
import contextlib
import io
import itertools
import mmap
import os
import struct
import warnings
import zlib

import h5py
import numpy as np

from minidl.io.errors import WeightFileError

HEADER_LIMIT = 64000  # bytes a fixed-length attribute may take in an object header
_HEAP_HEADER = struct.Struct('<4sB3xQ')  # signature, version, reserved, collection size
_HEAP_OBJECT = struct.Struct('<HH4xQ')  # heap object index, reference count, reserved, size
MAX_MESSAGES = 1 << 16  # messages one object header walk looks at
_REFERENCE = struct.Struct('<IQI')  # a variable-length value: length, heap address, index


# --- opening -----------------------------------------------------------------------------
def check_global_heaps(path, data):
    """Refuse a file whose global heap collections libhdf5 could not walk safely; return
    ``{collection address: {object index: object size}}`` of those it holds.

    ``data`` is the file's bytes (an mmap). A collection is ``GCOL``, version 1, its size, then
    objects: index (2 bytes), reference count (2), reserved (4), size (8), data padded to 8
    bytes; index 0 is the free space, whose size counts its own header. libhdf5 steps from
    object to object by these sizes; a zero-sized free-space object never moves it on (a
    hang inside libhdf5, holding the GIL), and a size past the end reads outside the heap.
    Every ``GCOL`` version 1 in the file is checked, wherever it lies."""
    heaps, start = {}, data.find(b'GCOL')
    while start >= 0:
        if data[start + 4:start + 5] == b'\x01':
            heaps[start] = _check_heap(path, data, start)
        start = data.find(b'GCOL', start + 1)
    return heaps


def _check_heap(path, data, start):
    """Walk one collection at ``start`` as libhdf5 does, returning ``{index: size}`` of its
    objects; refuse anything that stalls or leaves the collection."""
    if start + _HEAP_HEADER.size > len(data):
        raise WeightFileError(path, f'global heap at byte {start} is cut off')
    size = _HEAP_HEADER.unpack_from(data, start)[2]
    end = start + size
    if size < _HEAP_HEADER.size or end > len(data):
        raise WeightFileError(path, f'global heap at byte {start} declares {size} bytes, '
                                    f'more than the file holds')
    offset, objects = start + _HEAP_HEADER.size, {}
    while end - offset >= _HEAP_OBJECT.size:
        index, _, length = _HEAP_OBJECT.unpack_from(data, offset)
        step = length if index == 0 else _HEAP_OBJECT.size + -(-length // 8) * 8
        if step < _HEAP_OBJECT.size or offset + step > end:
            raise WeightFileError(path, f'global heap at byte {start} is damaged: object '
                                        f'{index} at byte {offset} declares {length} bytes')
        objects[index] = length
        offset += step
    return objects


@contextlib.contextmanager
def open_h5(path, data=None):
    """A :class:`Reader` of the HDF5 file at ``path``, opened after its global heaps are
    checked; an h5py, OS or decoding error inside the block becomes a WeightFileError naming
    the file. ``data``, when given, is the file's bytes (a member of a ``.keras`` archive,
    say), read in memory; ``path`` then only names it."""
    path = os.fspath(path)
    with _errors_named(path):
        if data is not None:
            heaps = check_global_heaps(path, data)
            with h5py.File(io.BytesIO(data), 'r') as f:
                yield Reader(f, path, data, heaps)
            return
        _check_regular_file(path)
        with open(path, 'rb') as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
            heaps = check_global_heaps(path, data)
            with h5py.File(path, 'r') as f:
                yield Reader(f, path, data, heaps)


def _check_regular_file(path):
    """Refuse a ``path`` that is not a non-empty regular file (which mmap and h5py need)."""
    if not os.path.exists(path):
        raise WeightFileError(path, 'no such file')
    if not os.path.isfile(path):
        raise WeightFileError(path, 'is not a regular file (a directory?)')
    if os.path.getsize(path) == 0:
        raise WeightFileError(path, 'is empty')


@contextlib.contextmanager
def _errors_named(path):
    """Turn the errors a damaged file makes h5py, NumPy or the OS raise into WeightFileError."""
    try:
        yield
    except WeightFileError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError, ValueError, IndexError,
            OverflowError, struct.error) as exc:
        raise WeightFileError(path, f'damaged or not an HDF5 file ({type(exc).__name__}: '
                                    f'{exc})') from None


def _attribute_data(data, address, name):
    """Where the value of attribute ``name`` starts in the object header at ``address`` (a
    version 1 header, as h5py and Keras write by default, or version 2), None if it is not
    there (dense attribute storage, shared messages)."""
    for kind, at in _header_messages(data, address):
        if kind == 0x0C and data[at] in (1, 2, 3):
            version = data[at]
            name_size, type_size, space_size = struct.unpack_from('<HHH', data, at + 2)
            pad = (lambda n: -(-n // 8) * 8) if version == 1 else (lambda n: n)
            start = at + (9 if version == 3 else 8)
            if bytes(data[start:start + name_size]).rstrip(b'\0') == name:
                return start + pad(name_size) + pad(type_size) + pad(space_size)
    return None


def _header_messages(data, address):
    """``(message type, payload offset)`` of the messages of the object header at
    ``address`` (at most ``MAX_MESSAGES``), continuation blocks followed once each; the walk
    stops at anything that leaves the file or its block."""
    first = _first_block(data, address)
    if first is None:
        return
    version, head = first[0], 8 if first[0] == 1 else 6 if data[address + 5] & 0x04 else 4
    blocks, seen, budget = [first[1:]], set(), MAX_MESSAGES
    while blocks and budget:
        at, end = blocks.pop()
        if (at, end) in seen:
            continue
        seen.add((at, end))
        end = min(end, len(data))
        while budget and at + head <= end:
            budget -= 1
            kind, size, flags = struct.unpack_from('<HHB' if version == 1 else '<BHB', data, at)
            payload = at + head
            if payload + size > end:
                break
            if kind == 0x10 and size >= 16:
                offset, length = struct.unpack_from('<QQ', data, payload)
                if version == 1:
                    blocks.append((offset, offset + length))
                elif data[offset:offset + 4] == b'OCHK':
                    blocks.append((offset + 4, offset + length - 4))
            elif not flags & 0x02:  # a shared message holds a reference, not the message
                yield kind, payload
            at = payload + size


def _first_block(data, address):
    """``(version, first message offset, end)`` of the object header at ``address``, None if
    none of the two versions starts there."""
    if data[address:address + 5] == b'OHDR\x02' and address + 6 <= len(data):
        flags = data[address + 5]
        at = address + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 0x03)
        size = int.from_bytes(data[at:at + width], 'little')
        return 2, at + width, at + width + size
    if data[address:address + 1] == b'\x01' and address + 16 <= len(data):
        return 1, address + 16, address + 16 + struct.unpack_from('<I', data, address + 8)[0]
    return None


# --- writing -----------------------------------------------------------------------------
def write_text(attrs, key, text):
    """Store ``text`` as a fixed-length byte string with its CRC-32 beside it (``<key>_crc32``);
    text beyond an object header's room is stored variable-length, as Keras does."""
    data = text.encode('utf-8')
    attrs[key] = np.bytes_(data) if len(data) <= HEADER_LIMIT else text
    attrs[f'{key}_crc32'] = np.uint32(zlib.crc32(data))


def write_names(attrs, key, names):
    """Store a list of names as a fixed-length byte-string array (how Keras 2 stores them)."""
    data = np.array([name.encode('utf-8') for name in names], dtype='S')
    attrs[key] = data if data.nbytes <= HEADER_LIMIT else np.array(names, dtype=object)


def checksum(array):
    """CRC-32 of an array's dtype, shape and bytes: a changed byte order or shape counts."""
    array = np.ascontiguousarray(array)
    crc = zlib.crc32(f'{array.dtype.str}{array.shape}'.encode())
    return zlib.crc32(array.reshape(-1).view(np.uint8), crc)


def write_array(group, name, array):
    """A contiguous, uncompressed dataset holding ``array``, with its checksum attribute."""
    group.create_dataset(name, data=array).attrs['crc32'] = np.uint32(checksum(array))


def write_layers(group, model, weights_of):
    """Write ``model``'s layers into ``group`` as Keras 2 does: ``layer_names``, then a group
    per layer with its ``weight_names`` and datasets. ``weights_of(layer)`` gives a layer's
    weights in the order to store them. A nested model is one group too, holding all its
    weights in its own ``weights`` order, each named ``<layer>/<weight>`` (so stored under a
    group per layer), which is what tf-keras reads by position."""
    write_names(group.attrs, 'layer_names', [layer.name for layer in model.layers])
    for layer in model.layers:
        sub = group.create_group(layer.name)
        nested = hasattr(layer, 'layers')
        weights = layer.weights if nested else weights_of(layer)
        names = [w.name if nested else w.name.split('/')[-1] for w in weights]
        write_names(sub.attrs, 'weight_names', names)
        for name, w in zip(names, weights):
            write_array(sub, name, w.numpy())


# --- reading -----------------------------------------------------------------------------
class Reader:
    """An open h5 file (``.file``) read defensively: each attribute and dataset is checked
    from its metadata before its data is read, and errors name the file (``.path``).
    ``data`` is the file's bytes, ``heaps`` what :func:`check_global_heaps` found."""

    def __init__(self, file, path, data, heaps):
        self.file, self.path, self.data, self.heaps = file, path, data, heaps
        self.size = len(data)

    def error(self, problem):
        return WeightFileError(self.path, problem)

    def text(self, obj, key):
        """The text attribute ``key`` of ``obj`` (None when absent), checked against its
        CRC-32 when the file stored one."""
        if key not in obj.attrs:
            return None
        data = _as_bytes(self._strings(obj, key, scalar=True))
        crc = self.scalar(obj, f'{key}_crc32')
        if crc is not None and crc != zlib.crc32(data):
            raise self.error(f'attribute {key} of {obj.name} is damaged (its checksum does '
                             f'not match)')
        return self._decode(data, key)

    def names(self, obj, key):
        """The name list ``key`` of ``obj`` as strings, None when absent. Keras splits long
        lists over ``key0``, ``key1``, ...; those are joined."""
        parts = [key] if key in obj.attrs else list(itertools.takewhile(
            obj.attrs.__contains__, (f'{key}{i}' for i in itertools.count())))
        if not parts:
            return None
        return [self._decode(_as_bytes(value), key) for part in parts
                for value in np.atleast_1d(self._strings(obj, part)).tolist()]

    def scalar(self, obj, key):
        """The integer attribute ``key`` of ``obj`` as an int, None when absent."""
        if key not in obj.attrs:
            return None
        aid = obj.attrs.get_id(key)
        if aid.dtype.kind not in 'iu' or aid.shape != ():
            raise self.error(f'attribute {key} of {obj.name} should be an integer, is '
                             f'{aid.dtype} of shape {aid.shape}')
        return int(obj.attrs[key])

    def _strings(self, obj, key, scalar=False):
        """A string attribute's raw value, after checking from its metadata that it is text
        (one string, or a 1-D list) no larger than the file."""
        aid = obj.attrs.get_id(key)
        is_text = aid.dtype.kind == 'S' or h5py.check_string_dtype(aid.dtype) is not None
        shape_ok = aid.shape == () if scalar else len(aid.shape) <= 1
        count = int(np.prod(aid.shape, dtype=np.int64))
        if count == 0 and not scalar:
            return []  # older minidl stored "no weights" as an empty float array
        if not is_text or not shape_ok or count * aid.dtype.itemsize > self.size:
            raise self.error(f'attribute {key} of {obj.name} should be text, is {aid.dtype} '
                             f'of shape {aid.shape}')
        if aid.dtype.kind != 'S':
            self._check_references(obj, key, count)
        return obj.attrs[key]

    def _check_references(self, obj, key, count):
        """Check a variable-length text attribute's references before libhdf5 follows them:
        libhdf5 allocates the length a reference declares before it looks at the heap, so
        each must name an object of a checked global heap and declare no more than it holds.
        The attribute is found in its object's header, ``count`` references of 16 bytes."""
        raw = _attribute_data(self.data, h5py.h5o.get_info(obj.id).addr, key.encode())
        superblock = self.data[:16]  # signature, version, ..., sizes of offsets and lengths
        sizes = superblock[13:15] if superblock[8] < 2 else superblock[9:11]
        if raw is None or raw + 16 * count > self.size or sizes != b'\x08\x08' or \
                superblock[:8] != b'\x89HDF\r\n\x1a\n':
            raise self.error(f'attribute {key} of {obj.name} is stored where minidl cannot '
                             f'check it')
        for at in range(raw, raw + 16 * count, 16):
            length, heap, index = _REFERENCE.unpack_from(self.data, at)
            if length and length > self.heaps.get(heap, {}).get(index, -1):
                raise self.error(f'attribute {key} of {obj.name} is damaged: it refers to '
                                 f'{length} bytes of global heap object {index} at byte '
                                 f'{heap}, which holds fewer')

    def _decode(self, data, key):
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError:
            raise self.error(f'attribute {key} is not UTF-8 text') from None

    def member(self, parent, name):
        """``parent[name]`` (``name`` may be a path), None when there is none. A soft or
        external link on the way is refused: Keras writes neither, and an external link would
        open another file."""
        obj = parent
        for part in name.split('/'):
            link = obj.get(part, getlink=True) if isinstance(obj, h5py.Group) else None
            if link is None:
                return None
            if not isinstance(link, h5py.HardLink):
                raise self.error(f'{obj.name.rstrip("/")}/{part} is a {type(link).__name__}, '
                                 f'which a weight file does not hold')
            obj = obj.get(part)
        return obj

    def group(self, parent, name):
        """The group ``name`` in ``parent``, None when there is none."""
        obj = self.member(parent, name)
        if obj is not None and not isinstance(obj, h5py.Group):
            raise self.error(f'{obj.name} should be a group, is {type(obj).__name__}')
        return obj

    def dataset(self, group, name):
        """The dataset ``name`` in ``group``, checked from its metadata only: numbers stored
        contiguously (or compactly) without filters, whose bytes lie inside the file."""
        obj = self.member(group, name)
        where = f'{group.name.rstrip("/")}/{name}'
        if not isinstance(obj, h5py.Dataset):
            raise self.error(f'{where} is missing or not a dataset')
        dtype, shape = obj.dtype, obj.shape
        if dtype.kind not in 'fiu' or shape is None:
            raise self.error(f'{where} holds {dtype}, not numbers')
        plist = obj.id.get_create_plist()
        layout = plist.get_layout()
        if plist.get_nfilters() or layout not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT):
            raise self.error(f'{where} is chunked or compressed; minidl reads contiguous, '
                             f'uncompressed weights only')
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        offset = obj.id.get_offset()
        inside = offset + nbytes <= self.size if offset is not None else \
            layout == h5py.h5d.COMPACT or nbytes == 0
        if nbytes > self.size or not inside:
            raise self.error(f'{where} declares shape {shape} of {dtype} ({nbytes} bytes), '
                             f'beyond the end of the file')
        return obj

    def array(self, obj):
        """The data of a dataset checked by :meth:`dataset`, verified against its checksum
        when the file stored one (Keras's files and older minidl ones store none)."""
        crc = self.scalar(obj, 'crc32')
        array = np.asarray(obj[()])
        if crc is not None and crc != checksum(array):
            raise self.error(f'{obj.name} is damaged (its checksum does not match)')
        return array

    def assign(self, fits, problems, skip_mismatch, give, stacklevel):
        """Give each ``(layer, datasets)`` of ``fits`` its arrays through ``give(layer,
        arrays)``, once ``problems`` (the misfits found from metadata) are refused or, with
        ``skip_mismatch``, warned about at ``stacklevel`` (the caller's caller)."""
        if problems and not skip_mismatch:
            raise self.error('weights do not fit:\n  ' + '\n  '.join(problems))
        for problem in problems:
            warnings.warn(f'{self.path}: skipped: {problem}', stacklevel=stacklevel + 1)
        values = [(layer, [self.array(d) for d in datasets]) for layer, datasets in fits]
        while values:  # each stored array is freed as soon as its layer holds a copy
            give(*values.pop())

    def layers(self, group):
        """``(layers, ordered)``: ``layers`` is ``[(layer name, [(weight name, dataset)])]``
        for every stored layer with weights, nested groups flattened, datasets checked but not
        read; ``ordered`` says whether the file declared their order (``layer_names``, or
        groups that track creation order) rather than leaving h5py's alphabetical one."""
        names = self.names(group, 'layer_names')
        ordered = names is not None or _tracks_order(group)
        found = []
        for name in names if names is not None else list(group.keys()):
            sub = self.group(group, name)
            if sub is None:
                raise self.error(f'layer {name!r} of {group.name} is missing')
            weight_names = self.names(sub, 'weight_names')
            if weight_names is None:
                nested, nested_ordered = self.layers(sub)
                found += nested
                ordered = ordered and nested_ordered
            elif weight_names:
                found += _by_layer(name, [(n, self.dataset(sub, n)) for n in weight_names])
        return found, ordered


def _by_layer(name, weights):
    """``[(layer name, weights)]`` of one stored layer: a nested model stored as one layer
    (Keras 2's way: weights named ``<layer>/<weight>`` for several layers) is split by layer,
    in the order its layers first appear."""
    prefixes = [n.split('/')[0] for n, _ in weights]
    if len(set(prefixes)) < 2 or not all('/' in n for n, _ in weights):
        return [(name, weights)]
    layers = {prefix: [] for prefix in prefixes}
    for prefix, weight in zip(prefixes, weights):
        layers[prefix].append(weight)
    return list(layers.items())


def _tracks_order(group):
    """Whether ``group`` records the order its members were created in (h5py then lists them
    in that order; ``track_order=True``)."""
    group = group['/'] if isinstance(group, h5py.File) else group  # a File's id is the file's
    return bool(group.id.get_create_plist().get_link_creation_order())


def _as_bytes(value):
    """A string attribute's value as bytes (h5py gives fixed-length ones as bytes and
    variable-length ones as str)."""
    return value if isinstance(value, bytes) else value.encode('utf-8', 'surrogateescape')
