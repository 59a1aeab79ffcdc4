"""The processes of one job and the collectives between them: MPI through mpi4py, and NCCL
through CuPy for buffers in GPU memory.

No collective waits forever. Each one is started non-blocking and polled; a rank that has
waited ``timeout`` seconds prints which collective it was in and ends the whole job with
``MPI_Abort``, so a rank that died, stopped early or took another path never leaves the
others hanging. An exception that nobody catches ends the job the same way, after its
traceback (see :func:`install_abort_on_error`).

Small structured values (weight names and shapes, a seed, a stream position) travel as JSON,
never as pickles: a message from another process is read like any other input.
"""
import json
import os
import sys
import time

import numpy as np

from minidl.backends import is_gpu_array

TIMEOUT_ENV = 'MINIDL_DISTRIBUTED_TIMEOUT'
DEFAULT_TIMEOUT = 300.0  # seconds: far longer than any step, the first one's compiling included
_SPIN = 2e-3  # seconds of polling without sleeping, before backing off to at most 1 ms naps


def mpi():
    """The ``mpi4py.MPI`` module, importing it (which starts MPI) on first use."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("minidl.distributed needs mpi4py and an MPI library: pip install "
                          "'minidl[distributed]' (mpi4py with the MPICH wheel; no system MPI "
                          "is needed)") from error
    return MPI


class Communicator:
    """Every process of the job (MPI's COMM_WORLD, duplicated so that minidl's messages never
    meet the user's). ``rank``/``size`` over the job; ``local_rank``/``local_size`` over the
    processes on this machine.

    ``stats`` adds up, per collective kind, the calls, the seconds spent in them and the bytes
    each rank contributed: what ``benchmarks/distributed_scaling.py`` reports.
    """

    def __init__(self, timeout=None):
        MPI = self.MPI = mpi()
        self.comm = MPI.COMM_WORLD.Dup()
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        if timeout is None:
            timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
        if not timeout > 0:
            raise ValueError(f'minidl.distributed: the timeout must be a positive number of '
                             f'seconds, got {timeout!r}')
        self.timeout = timeout
        self.stats = {}
        self._nccl = None

    # --- arrays ---------------------------------------------------------------------------
    def allreduce(self, buffer, what):
        """Sum ``buffer`` (one contiguous array, host or GPU) over every rank, in place.
        ``what`` names it in the message of a timeout."""
        if is_gpu_array(buffer):
            return self._device_allreduce(buffer, what)
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM),
                   f'the all-reduce of {what}', 'allreduce', buffer.nbytes)
        return buffer

    def broadcast(self, buffer, what, root=0):
        """Overwrite ``buffer`` (a host array) with rank ``root``'s, in place."""
        self._wait(self.comm.Ibcast(buffer, root=root), f'the broadcast of {what}',
                   'broadcast', buffer.nbytes)
        return buffer

    # --- small values, as JSON ------------------------------------------------------------
    def broadcast_value(self, value, what, root=0):
        """Rank ``root``'s ``value`` (anything JSON holds), on every rank."""
        data = json.dumps(value).encode() if self.rank == root else b''
        length = self.broadcast(np.array([len(data)], np.int64), f'the size of {what}', root)
        payload = np.frombuffer(data, np.uint8).copy() if self.rank == root else \
            np.empty(int(length[0]), np.uint8)
        return json.loads(self.broadcast(payload, what, root).tobytes())

    def gather_values(self, value, what):
        """Every rank's ``value`` (anything JSON holds), as a list in rank order, on every
        rank."""
        data = np.frombuffer(json.dumps(value).encode(), np.uint8)
        lengths = np.empty(self.size, np.int64)
        self._wait(self.comm.Iallgather(np.array([len(data)], np.int64), lengths),
                   f'the gathering of {what}', 'gather', 8)
        payload = np.empty(int(lengths.sum()), np.uint8)
        self._wait(self.comm.Iallgatherv(data, [payload, lengths]),
                   f'the gathering of {what}', 'gather', len(data))
        starts = np.concatenate([[0], np.cumsum(lengths)])
        return [json.loads(payload[a:b].tobytes()) for a, b in zip(starts[:-1], starts[1:])]

    def any(self, flag, what):
        """True on every rank when ``flag`` is true on at least one."""
        return bool(self.allreduce(np.array([float(bool(flag))]), what)[0])

    # --- ending the job -------------------------------------------------------------------
    def abort(self, message):
        """Print ``message`` naming this rank, then end every process of the job."""
        print(f'minidl.distributed: rank {self.rank} of {self.size}: {message}',
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        self.comm.Abort(1)

    def abort_waiting(self, what):
        """End the job because this rank has waited ``timeout`` seconds in ``what``."""
        self.abort(f'waited {self.timeout:g} s in {what} without hearing from every other '
                   f'process: one has died, stopped early or is stuck, so the job ends here '
                   f'(the limit is {TIMEOUT_ENV} or init(timeout=))')

    def _wait(self, request, what, kind, nbytes):
        """Poll ``request`` until it completes; abort the job after ``timeout`` seconds or if
        MPI reports that a peer is gone."""
        start = time.perf_counter()
        try:
            if not poll(request.Test, start + self.timeout):
                self.abort_waiting(what)
        except self.MPI.Exception as error:
            self.abort(f'MPI failed in {what}: {error.Get_error_string()}')
        self._count(kind, start, nbytes)

    def _count(self, kind, start, nbytes):
        calls, seconds, total = self.stats.get(kind, (0, 0.0, 0))
        self.stats[kind] = (calls + 1, seconds + time.perf_counter() - start, total + nbytes)

    # --- GPU buffers ------------------------------------------------------------------------
    def _device_allreduce(self, buffer, what):
        """The NCCL all-reduce of a GPU buffer on the current stream, polled like the MPI
        collectives (``nccl.py`` holds the NCCL side)."""
        from minidl.distributed import nccl
        if self._nccl is None:
            self._nccl = nccl.NcclRing(self)
        start = time.perf_counter()
        self._nccl.allreduce(buffer, what, deadline=start + self.timeout)
        self._count('allreduce', start, buffer.nbytes)
        return buffer


def poll(test, deadline):
    """Call ``test()`` until it returns true (then True) or the ``time.perf_counter()``
    ``deadline`` passes (then False): spinning at first, then napping up to 1 ms between calls,
    so a short wait costs no latency and a long one little CPU."""
    start, nap = time.perf_counter(), 0.0
    while not test():
        now = time.perf_counter()
        if now > deadline:
            return False
        if now - start > _SPIN:
            time.sleep(nap)
            nap = min(2 * nap + 1e-5, 1e-3)
    return True


def install_abort_on_error(communicator):
    """Make an uncaught exception on this rank print its traceback, then end the job: the
    other ranks would otherwise wait in their next collective until the timeout."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        communicator.abort(f'stopped by the {kind.__name__} above; ending the other processes')
    sys.excepthook = hook
