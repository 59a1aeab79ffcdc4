"""``cupy.cuda.nccl`` for the simulator: NCCL's communicator and all-reduce, carried by MPI.

The simulator's processes are MPI ranks (``mpiexec -n 2 ...``) and its device memory is NumPy
memory, so an NCCL all-reduce becomes an MPI all-reduce of the same bytes. As with NCCL,
:meth:`NcclCommunicator.allReduce` takes raw device pointers (wrapped here as NumPy arrays over
that memory), returns at once and leaves the collective in flight on the given stream
(:mod:`.streams`): an Event recorded after it is done when MPI has finished, and until then a
rank whose peers never join waits, as it would on GPUs. The constants are NCCL's values.

What it checks, each an :class:`NcclError` as CuPy raises: that every process passed the same
unique id to :class:`NcclCommunicator`, with ``ndev`` the number of MPI processes and each rank
once; for each all-reduce, an NCCL datatype NumPy has, an operation, a count >= 0, non-null
pointers, send and receive buffers either the same or apart; and that every rank's all-reduce
has the same count, datatype and operation (NCCL would mix unlike bytes, or hang, without a
word: here the mismatch is the error :meth:`NcclCommunicator.check_async_error` raises).

What it cannot: check that ``count`` elements fit behind a pointer (a raw pointer carries no
size, on a GPU as here); reproduce NCCL's ring or tree order of additions (MPI's order is used,
so sums can differ from a GPU's in the last bit); span part of the MPI processes (one
communicator holds them all); NCCL_AVG and bfloat16 (not simulated), and the collectives other
than the all-reduce.
"""
import ctypes
import operator
import os

import numpy

from minidl.backends.cuda_simulator.streams import stream_at

NCCL_UNIQUE_ID_BYTES = 128

NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = range(5)
(NCCL_INT8, NCCL_UINT8, NCCL_INT32, NCCL_UINT32, NCCL_INT64, NCCL_UINT64, NCCL_FLOAT16,
 NCCL_FLOAT32, NCCL_FLOAT64, NCCL_BFLOAT16) = range(10)
NCCL_CHAR, NCCL_INT, NCCL_HALF, NCCL_FLOAT, NCCL_DOUBLE = (
    NCCL_INT8, NCCL_INT32, NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64)

_DTYPES = {NCCL_INT8: 'int8', NCCL_UINT8: 'uint8', NCCL_INT32: 'int32', NCCL_UINT32: 'uint32',
           NCCL_INT64: 'int64', NCCL_UINT64: 'uint64', NCCL_FLOAT16: 'float16',
           NCCL_FLOAT32: 'float32', NCCL_FLOAT64: 'float64'}
_OPERATIONS = {NCCL_SUM: 'SUM', NCCL_PROD: 'PROD', NCCL_MAX: 'MAX', NCCL_MIN: 'MIN'}

# ncclResult_t values, with the names CuPy's NcclError gives them
_SYSTEM_ERROR, _INVALID_ARGUMENT, _INVALID_USAGE = 2, 4, 5
_STATUS_NAMES = {_SYSTEM_ERROR: 'NCCL_ERROR_SYSTEM_ERROR',
                 _INVALID_ARGUMENT: 'NCCL_ERROR_INVALID_ARGUMENT',
                 _INVALID_USAGE: 'NCCL_ERROR_INVALID_USAGE'}

available = True


class NcclError(RuntimeError):
    """An NCCL call failed; ``status`` is NCCL's result code."""

    def __init__(self, status, detail):
        self.status = status
        super().__init__(f'{_STATUS_NAMES[status]}: {detail} (minidl CUDA simulator)')


def get_unique_id():
    """A fresh id for one communicator: 128 random bytes as a tuple of ints, signed like the
    ``char`` array CuPy turns NCCL's id into."""
    return tuple(int(byte) for byte in numpy.frombuffer(os.urandom(NCCL_UNIQUE_ID_BYTES),
                                                        numpy.int8))


def _mpi():
    from mpi4py import MPI
    return MPI


class NcclCommunicator:
    """One rank of an NCCL communicator of ``ndev`` ranks (every MPI process of the job), made
    from the ``commId`` that :func:`get_unique_id` returned on one of them. Like NCCL's, the
    constructor returns once every rank has called it."""

    def __init__(self, ndev, commId, rank):
        ndev, rank = operator.index(ndev), operator.index(rank)
        if not (isinstance(commId, tuple) and len(commId) == NCCL_UNIQUE_ID_BYTES
                and all(isinstance(b, int) and -128 <= b < 128 for b in commId)):
            raise TypeError(f'minidl CUDA simulator: commId must be the tuple of '
                            f'{NCCL_UNIQUE_ID_BYTES} ints that get_unique_id() returns, got '
                            f'{commId!r:.60}')
        MPI = _mpi()
        self._comm = MPI.COMM_WORLD.Dup()  # its own messages, never the program's
        table = numpy.empty((self._comm.Get_size(), 2 + NCCL_UNIQUE_ID_BYTES), numpy.int64)
        self._comm.Allgather(numpy.array([ndev, rank, *commId], numpy.int64), table)
        _check_members(table)
        self._rank, self._size = rank, ndev
        self._error, self._closed = None, None

    def rank_id(self):
        return self._rank

    def size(self):
        return self._size

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        """Start reducing ``count`` elements of ``datatype`` at ``sendbuf`` over every rank
        with ``op`` into ``recvbuf`` (the same pointer: in place), on the stream whose handle
        is ``stream``. Returns at once; an Event recorded on the stream afterwards is done
        when the result is there."""
        self._check_open()
        sendbuf, recvbuf, count = map(operator.index, (sendbuf, recvbuf, count))
        if datatype not in _DTYPES:
            raise NcclError(_INVALID_ARGUMENT, f'datatype {datatype!r} is not one of NCCL_INT8 '
                            f'.. NCCL_FLOAT64 (0 to 8; bfloat16, 9, is not simulated)')
        if op not in _OPERATIONS:
            raise NcclError(_INVALID_ARGUMENT, f'op {op!r} is not NCCL_SUM, NCCL_PROD, NCCL_MAX '
                            f'or NCCL_MIN (0 to 3; NCCL_AVG, 4, is not simulated)')
        if count < 0:
            raise NcclError(_INVALID_ARGUMENT, f'count is {count}')
        dtype = numpy.dtype(_DTYPES[datatype])
        nbytes = count * dtype.itemsize
        if count and not (sendbuf and recvbuf):
            raise NcclError(_INVALID_ARGUMENT, f'a null pointer (sendbuf {sendbuf:#x}, '
                            f'recvbuf {recvbuf:#x}) for {count} elements')
        if sendbuf != recvbuf and sendbuf < recvbuf + nbytes and recvbuf < sendbuf + nbytes:
            raise NcclError(_INVALID_ARGUMENT, f'sendbuf {sendbuf:#x} and recvbuf {recvbuf:#x} '
                            f'overlap over {nbytes} bytes without being the same buffer')
        target = stream_at(stream)
        received = _array_at(recvbuf, count, dtype)
        sent = _mpi().IN_PLACE if sendbuf == recvbuf else _array_at(sendbuf, count, dtype)
        target.enqueue(_AllReduce(self, sent, received, [count, datatype, op]))

    def check_async_error(self):
        """Raise the error that stopped a collective in flight, if one did."""
        if self._error is not None:
            raise self._error

    def abort(self):
        """Give up the collectives in flight (their events become done, their buffers hold
        anything) and close the communicator: what a rank does before ending a job that hangs."""
        self._closed = 'aborted'

    def destroy(self):
        """Close the communicator (the MPI communicator under it is left to MPI's end: freeing
        one is collective, and destroying an NCCL communicator is not)."""
        self._closed = self._closed or 'destroyed'

    def _check_open(self):
        if self._closed:
            raise NcclError(_INVALID_ARGUMENT, f'the communicator was {self._closed}')

    def _fail(self, error):
        if self._error is None:
            self._error = error


def _check_members(table):
    """Every process's ``[ndev, rank, *commId]`` row must name one communicator of all of
    them, each rank once; the same NcclError on every rank otherwise."""
    processes = len(table)
    for process in range(1, processes):
        if (table[process, 2:] != table[0, 2:]).any():
            raise NcclError(_INVALID_USAGE, f'MPI process {process} passed another unique id '
                            f'than process 0: every rank must pass the one get_unique_id() made')
    if (table[:, 0] != processes).any():
        raise NcclError(_INVALID_USAGE, f'ndev is {table[:, 0].tolist()} on the MPI processes; '
                        f'the simulated communicator holds all {processes} of them')
    if sorted(table[:, 1].tolist()) != list(range(processes)):
        raise NcclError(_INVALID_USAGE, f'the processes passed ranks {table[:, 1].tolist()}; '
                        f'each of 0 to {processes - 1} must be passed once')


def _array_at(pointer, count, dtype):
    """The ``count`` elements of ``dtype`` at the raw address ``pointer``, as a NumPy array."""
    return numpy.frombuffer((ctypes.c_byte * (count * dtype.itemsize)).from_address(pointer),
                            dtype)


class _AllReduce:
    """One all-reduce in flight: first every rank's ``[count, datatype, op]`` are gathered and
    compared, then the MPI all-reduce of the data runs. ``test()`` moves it on and says whether
    it has finished (also when its communicator was aborted)."""

    def __init__(self, communicator, sent, received, header):
        self.communicator, self.sent, self.received = communicator, sent, received
        self.header = numpy.array(header, numpy.int64)
        self.headers = numpy.empty((communicator._comm.Get_size(), 3), numpy.int64)
        self.request = communicator._comm.Iallgather(self.header, self.headers)
        self.stage = 'agreeing'

    def test(self):
        if self.communicator._closed == 'aborted' or self.stage == 'finished':
            return True
        if self.stage == 'failed':
            return False
        MPI = _mpi()
        try:
            if not self.request.Test():
                return False
            if self.stage == 'agreeing':
                self._check_agreement()
                op = getattr(MPI, _OPERATIONS[int(self.header[2])])
                self.request = self.communicator._comm.Iallreduce(self.sent, self.received, op)
                self.stage = 'reducing'
                return self.test()
        except (NcclError, MPI.Exception) as error:
            self.stage = 'failed'
            self.communicator._fail(error if isinstance(error, NcclError) else NcclError(
                _SYSTEM_ERROR, f'MPI failed in the all-reduce: {error.Get_error_string()}'))
            return False
        self.stage = 'finished'
        return True

    def _check_agreement(self):
        for process, header in enumerate(self.headers):
            if (header != self.header).any():
                raise NcclError(_INVALID_USAGE, f'this all-reduce has [count, datatype, op] = '
                                f'{self.header.tolist()} here and {header.tolist()} on MPI '
                                f'process {process}: every rank must reduce alike (NCCL would '
                                f'not say)')
