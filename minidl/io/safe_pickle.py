"""A pickle reader that builds plain data and nothing else, for files from strangers.

Python's unpickler is a small virtual machine whose GLOBAL/REDUCE/BUILD/EXT opcodes import and
call anything the file names. :class:`SafeUnpickler` keeps the machine but closes it:

* only the opcodes of plain data run (constants, strings, bytes, tuples, lists, dicts, the
  memo, persistent ids) and GLOBAL/STACK_GLOBAL/REDUCE; every other opcode (INST, OBJ, NEWOBJ,
  EXT, sets, out-of-band buffers) is refused by name, so EXT never reaches copyreg's registry
  or its cache of already imported objects;
* GLOBAL and STACK_GLOBAL resolve only the ``(module, name)`` pairs the caller lists, to the
  stand-ins the caller gives; nothing is imported, so REDUCE can only call those stand-ins;
* BUILD is handed to the caller's ``build`` (refused unless given).

It is CPython's pure-Python unpickler (``pickle._Unpickler``) underneath, not the C one: its
memo is a dict, so a PUT at index 2**27 costs one entry, not a 2**27-slot table, and it reads
each string or bytes object from the data it has, never allocating a declared length first.
That costs little where it is used: VGG16's state_dict pickles to 2.8 KB, read in 0.35 ms
(0.07 ms by the C unpickler).
"""
import io
import pickle
import pickletools

_PLAIN = {
    'PROTO', 'FRAME', 'STOP', 'MARK', 'POP', 'POP_MARK', 'DUP', 'NONE', 'NEWTRUE', 'NEWFALSE',
    'INT', 'BININT', 'BININT1', 'BININT2', 'LONG', 'LONG1', 'LONG4', 'FLOAT', 'BINFLOAT',
    'STRING', 'BINSTRING', 'SHORT_BINSTRING', 'UNICODE', 'BINUNICODE', 'SHORT_BINUNICODE',
    'BINUNICODE8', 'BINBYTES', 'SHORT_BINBYTES', 'BINBYTES8', 'BYTEARRAY8', 'EMPTY_TUPLE',
    'TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3', 'EMPTY_LIST', 'LIST', 'APPEND', 'APPENDS',
    'EMPTY_DICT', 'DICT', 'SETITEM', 'SETITEMS', 'PUT', 'BINPUT', 'LONG_BINPUT', 'GET',
    'BINGET', 'LONG_BINGET', 'MEMOIZE', 'GLOBAL', 'STACK_GLOBAL', 'REDUCE', 'PERSID',
    'BINPERSID'}
_NAMES = {op.code.encode('latin-1')[0]: op.name for op in pickletools.opcodes}


class _Opcodes(dict):
    """The dispatch table of the plain opcodes; any other byte is refused by name."""

    def __missing__(self, code):
        name = _NAMES.get(code, f'{code:#04x} (no opcode)')
        raise pickle.UnpicklingError(f'pickle opcode {name} is not allowed')


class SafeUnpickler(pickle._Unpickler):
    """Unpickles ``data`` (bytes, or an io.BytesIO read from its position and left just past
    the pickle's STOP, for files of several pickles) resolving globals through ``allowed``, a dict
    ``{(module, name): stand-in}``; ``refuse(module, name)`` is the exception raised for any
    other global. Subclasses may define ``persistent_load(pid)`` and ``build(instance, state)``."""

    dispatch = _Opcodes({code: load for code, load in pickle._Unpickler.dispatch.items()
                         if _NAMES.get(code) in _PLAIN})

    def __init__(self, data, allowed, refuse):
        super().__init__(data if isinstance(data, io.BytesIO) else io.BytesIO(data))
        self.allowed, self.refuse = allowed, refuse

    def find_class(self, module, name):
        if (module, name) in self.allowed:
            return self.allowed[module, name]
        raise self.refuse(module, name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError('pickle holds a persistent id, which is not allowed')

    def build(self, instance, state):
        """BUILD: set ``state`` on ``instance``; refused unless a subclass allows it."""
        raise pickle.UnpicklingError('pickle opcode BUILD is not allowed')

    def load_build(self):
        state = self.stack.pop()
        self.build(self.stack[-1], state)
    dispatch[pickle.BUILD[0]] = load_build
