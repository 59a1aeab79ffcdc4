"""Data-parallel training over many processes: MPI (mpi4py) between them, NCCL for GPUs.

Launch the same script on every process and ask ``fit`` to share the work::

    mpiexec -n 2 python examples/mnist_convnet.py --distributed

    from minidl import distributed
    distributed.init()                                  # MPI starts; once per process
    model.fit(x_train, y_train, batch_size=32, epochs=5, validation_data=(x_val, y_val),
              distributed=True)                         # every rank passes all the data
    if distributed.is_main():
        model.save('model.h5')

**Why a ``fit`` argument rather than an optimizer wrapper** (Horovod's
``DistributedOptimizer``): averaging the gradients is only one part of the job. The loop
must also deal the examples out (:mod:`~minidl.distributed.sharding`), agree on every
epoch's shuffle, add up the validation metrics, stop every rank together, and let only rank
0 print and write files. Those parts live in the loop, so one switch there does them all,
and the optimizer stays what it is (:mod:`~minidl.distributed.data_parallel` holds the step).
``evaluate(..., distributed=True)`` evaluates rank 0's model on shards and adds up the sums.

What happens, in order:

* the first ``fit`` checks that every rank built the same model (the weights' shapes and
  dtypes, which are trainable) with the same data size and arguments, and raises a
  ValueError naming the first difference; then it broadcasts rank 0's weights and optimizer
  state;
* each step all-reduces the gradients of all trainable weights, packed into one flat buffer
  per dtype, before the same update on every rank. ``batch_size`` is each rank's, so 2 ranks
  of 32 step like 1 process of 64 (scale the learning rate yourself if you change the global
  batch);
* BatchNormalization's statistics stay each rank's own (Horovod's default), unless the layer
  has ``synchronized=True`` (Keras 3's argument): then the mean and variance, and their
  gradients, are the global batch's;
* rank 0 prints the progress bar and alone runs the callbacks that write files
  (ModelCheckpoint, CSVLogger); every rank runs the others with the global logs, so
  EarlyStopping or ReduceLROnPlateau decide alike everywhere;
* a rank that raises, dies or stops ends the job: an uncaught exception aborts it at once,
  and a collective that waits ``timeout`` seconds (300 by default, or
  ``MINIDL_DISTRIBUTED_TIMEOUT``) aborts it with a message naming what it waited for.

``init`` also divides the machine's cores among the processes on it (Numba's threads and,
with threadpoolctl, the BLAS's), since 2 processes each running 2 threads on 2 cores would
fight over them, and gives each process its own GPU when there are several.

DESIGN.md names a module ``minidl/distributed.py``; it is a package because MPI, NCCL, the
sharding of the data and the training step are four separate concerns.
"""
import os
import shutil
import sys
from pathlib import Path

from minidl.distributed.communicator import TIMEOUT_ENV, Communicator, install_abort_on_error
from minidl.distributed.data_parallel import DataParallel, active

__all__ = ['init', 'communicator', 'rank', 'size', 'local_rank', 'is_main', 'mpiexec',
           'DataParallel', 'active', 'TIMEOUT_ENV']

_state = {'communicator': None}


def init(timeout=None, threads=None):
    """Start MPI (if mpi4py has not) and return the job's :class:`Communicator`; later calls
    return the same one.

    timeout: seconds any collective may wait before the job is ended (default 300, or the
    ``MINIDL_DISTRIBUTED_TIMEOUT`` environment variable). threads: CPU threads per process
    (default: this machine's cores divided by the processes on it, unless
    ``NUMBA_NUM_THREADS`` or ``OMP_NUM_THREADS`` says otherwise).
    """
    if _state['communicator'] is None:
        comm = Communicator(timeout)
        if comm.size > 1:
            install_abort_on_error(comm)
        _share_cores(comm, threads)
        _pick_gpu(comm)
        _state['communicator'] = comm
    return _state['communicator']


def communicator():
    """The job's :class:`Communicator` (starting MPI if :func:`init` was not called)."""
    return init()


def rank():
    """This process's number in the job, 0 to ``size() - 1``."""
    return init().rank


def size():
    """How many processes the job has."""
    return init().size


def local_rank():
    """This process's number among those on its machine."""
    return init().local_rank


def is_main():
    """True on rank 0, the process that prints and writes files."""
    return rank() == 0


def mpiexec():
    """The path of the mpiexec beside this Python (a virtual environment's, from the MPICH
    wheel), else the one on PATH, else None: what starts a job from a test or a script."""
    beside = Path(sys.executable).parent / 'mpiexec'
    return str(beside) if beside.exists() else shutil.which('mpiexec')


def _share_cores(comm, threads):
    if threads is None:
        if os.environ.get('NUMBA_NUM_THREADS') or os.environ.get('OMP_NUM_THREADS'):
            return
        threads = max(1, len(os.sched_getaffinity(0)) // comm.local_size)
    import numba
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _state['blas_limits'] = threadpool_limits(threads, user_api='blas')


def _pick_gpu(comm):
    """With several GPUs on a machine, local rank ``i`` uses GPU ``i % count``."""
    from minidl.backends import gpu_available
    if not gpu_available():
        return
    from minidl.backends import cupy_module
    cupy = cupy_module()
    count = cupy.cuda.runtime.getDeviceCount()
    if count > 1:
        cupy.cuda.Device(comm.local_rank % count).use()
