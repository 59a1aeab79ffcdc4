"""The all-reduce of buffers in GPU memory, by NCCL through CuPy (``cupy.cuda.nccl``).

MPI carries what NCCL needs to start: rank 0 makes the communicator's unique id and the
:class:`~minidl.distributed.communicator.Communicator` broadcasts it; every rank then joins
the NCCL communicator of ``size`` GPUs. An all-reduce runs on the current CUDA stream, after the
kernels that wrote the buffer, and the host polls an event recorded behind it, as the MPI
collectives are polled, so that a rank whose peers never join ends the job instead of hanging.

Under the CUDA simulator the same code runs against its stand-in for ``cupy.cuda.nccl``
(:mod:`minidl.backends.cuda_simulator.nccl`), which carries the bytes over MPI.
"""
import importlib

import numpy as np

from minidl.backends import cupy_module
from minidl.distributed.communicator import poll

# NumPy dtype -> the name of its NCCL datatype constant
_DATATYPES = {'int8': 'NCCL_INT8', 'uint8': 'NCCL_UINT8', 'int32': 'NCCL_INT32',
              'uint32': 'NCCL_UINT32', 'int64': 'NCCL_INT64', 'uint64': 'NCCL_UINT64',
              'float16': 'NCCL_FLOAT16', 'float32': 'NCCL_FLOAT32', 'float64': 'NCCL_FLOAT64'}


def nccl_module(cupy):
    """``cupy.cuda.nccl``, which ``import cupy`` leaves unloaded, or a RuntimeError saying
    how to get NCCL."""
    nccl = getattr(cupy.cuda, 'nccl', None) or importlib.import_module('cupy.cuda.nccl')
    if not getattr(nccl, 'available', False):
        raise RuntimeError('minidl.distributed: CuPy cannot load NCCL, which the all-reduce of '
                           'GPU arrays needs: pip install nvidia-nccl-cu12 (or train with '
                           "device='cpu', whose all-reduce is MPI's)")
    return nccl


class NcclRing:
    """This rank's NCCL communicator over every rank of ``communicator`` (made collectively:
    every rank constructs one at the same point, at its first GPU all-reduce)."""

    def __init__(self, communicator):
        self.communicator = communicator
        self.cupy = cupy_module()
        self.nccl = nccl_module(self.cupy)
        uid = list(self.nccl.get_unique_id()) if communicator.rank == 0 else None
        uid = communicator.broadcast_value(uid, 'the NCCL unique id')
        self.comm = self.nccl.NcclCommunicator(communicator.size, tuple(uid), communicator.rank)

    def allreduce(self, buffer, what, deadline):
        """Sum ``buffer`` (one C-contiguous CuPy array) over every rank, in place; past the
        ``time.perf_counter()`` ``deadline``, end the job with a message naming ``what``."""
        datatype = self.datatype(buffer, what)
        stream = self.cupy.cuda.get_current_stream()
        pointer = buffer.__cuda_array_interface__['data'][0]
        self.comm.allReduce(pointer, pointer, buffer.size, datatype, self.nccl.NCCL_SUM,
                            stream.ptr)
        finished = self.cupy.cuda.Event(disable_timing=True)
        finished.record(stream)
        try:
            if not poll(lambda: self._done(finished), deadline):
                self.comm.abort()
                self.communicator.abort_waiting(f'the NCCL all-reduce of {what}')
        except self.nccl.NcclError as error:
            self.comm.abort()
            self.communicator.abort(f'NCCL failed in the all-reduce of {what}: {error}')
        return buffer

    def _done(self, event):
        """Whether ``event`` is done; raises the error NCCL met in flight, if any (a peer that
        is gone), rather than leaving the wait to the timeout."""
        self.comm.check_async_error()
        return event.done

    def datatype(self, buffer, what):
        """The NCCL datatype of ``buffer``'s dtype; a TypeError or ValueError naming ``what``
        for a buffer NCCL cannot sum in place."""
        name = _DATATYPES.get(np.dtype(buffer.dtype).name)
        if name is None:
            raise TypeError(f'minidl.distributed: NCCL cannot all-reduce {what} of dtype '
                            f'{buffer.dtype}; it sums {", ".join(_DATATYPES)}')
        if not buffer.flags.c_contiguous:
            raise ValueError(f'minidl.distributed: the all-reduce of {what} needs one '
                             f'contiguous buffer, got shape {buffer.shape} with strides '
                             f'{buffer.strides}')
        return getattr(self.nccl, name)
