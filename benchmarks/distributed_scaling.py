"""Data-parallel training over MPI: one epoch of the lessons' MNIST convnet on 1 and 2 processes.

For each process count P the script starts ``mpiexec -n P`` on itself, every process with one
thread (``OMP_NUM_THREADS=1``, ``NUMBA_NUM_THREADS=1``, ``distributed.init(threads=1)``), so
that P processes use P cores. Each rank builds the example's convnet (93,322 parameters),
compiles it with RMSprop(1e-3) and trains one epoch of ``fit(..., distributed=True)`` over
all 60,000 MNIST training images (none held out: the epoch times training alone),
``--batch-size`` images per process and step. Rank 0 writes the job's figures to a temporary
JSON file that this process reads.

The warm-up: before the timed epoch, each job runs a distributed ``fit`` over its first two
global batches, which compiles (or loads from Numba's cache) every kernel a step uses and
makes the gradient buffer; the timed ``fit`` then starts on every rank at once, after a
collective. Its time includes ``fit``'s own set-up (the check that the ranks' models agree
and the broadcast of rank 0's weights), a few milliseconds.

Reported per P: the epoch's seconds (the slowest rank's), steps, examples per second, the
speed-up over P=1, and from ``distributed.communicator().stats`` the all-reduce calls per step
(the metrics' and the gradients', and one per epoch for the stop flag), their milliseconds per
step (the ranks' mean, waits for a slower rank included) and the share of the epoch they
take, the bytes each rank contributes per step, and the bytes a ring all-reduce sends per
rank, ``2 (P - 1) / P`` times those. For comparison, the median time of the gradients'
all-reduce alone, timed back to back after the epoch, shows how much of the all-reduce time
is transfer and how much waiting. Last, the epoch's training accuracy: ``batch_size`` is each
process's, so P=2 steps half as often, on a global batch twice as large (weak scaling), and
one epoch of it trains a little less.

    python benchmarks/distributed_scaling.py [--processes 1 2] [--batch-size 64] [--subset N]
                                             [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'examples'))
import mnist_convnet  # noqa: E402 - the example defines the model and the data
from minidl.distributed import mpiexec  # noqa: E402


def run_job(processes, batch_size, subset):
    """The figures rank 0 of an ``mpiexec -n processes`` run of this script wrote."""
    launcher = mpiexec()
    if launcher is None:
        raise SystemExit("distributed_scaling: no mpiexec beside this Python nor on PATH; pip "
                         "install 'minidl[distributed]' brings MPICH's")
    environment = dict(os.environ, OMP_NUM_THREADS='1', NUMBA_NUM_THREADS='1',
                       PYTHONPATH=os.pathsep.join(filter(None, [
                           str(ROOT), os.environ.get('PYTHONPATH')])))
    with tempfile.TemporaryDirectory(prefix='minidl-scaling-') as folder:
        out = Path(folder) / 'rank0.json'
        subprocess.run([launcher, '-n', str(processes), sys.executable, __file__,
                        '--rank-out', str(out), '--batch-size', str(batch_size),
                        *(['--subset', str(subset)] if subset else [])],
                       check=True, env=environment)
        return json.loads(out.read_text())


def rank_epoch(batch_size, subset, out):
    """On every rank of the job: warm up, train one timed epoch, and have rank 0 write the
    figures (see the module docstring) to ``out``."""
    from minidl import distributed, optimizers, random
    comm = distributed.init(threads=1)
    random.seed(0)
    (x_train, y_train), _ = mnist_convnet.load(subset)
    model = mnist_convnet.build_model()
    model.compile(optimizers.RMSprop(learning_rate=1e-3), 'categorical_crossentropy', ['acc'])
    warm = 2 * batch_size * comm.size
    model.fit(x_train[:warm], y_train[:warm], batch_size=batch_size, verbose=0,
              distributed=True)
    comm.any(False, 'the start of the timed epoch')  # every rank starts the clock together
    before = comm.stats.get('allreduce', (0, 0.0, 0))
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=1, verbose=0,
                        distributed=True)
    seconds = time.perf_counter() - start
    calls, allreduce_s, nbytes = (a - b for a, b in zip(comm.stats['allreduce'], before))
    ranks = comm.gather_values({'seconds': seconds, 'allreduce_s': allreduce_s},
                               'the epoch times')
    gradient_bytes = sum(w.data.nbytes for w in model.trainable_weights)
    alone_s = allreduce_alone_s(comm, gradient_bytes)
    if comm.rank != 0:
        return
    steps = history.params['steps']
    result = {'processes': comm.size, 'batch_size': batch_size, 'examples': len(x_train),
              'seconds': max(rank['seconds'] for rank in ranks), 'steps': steps,
              'allreduce_calls': calls, 'allreduce_bytes': nbytes,
              'allreduce_s_per_rank': [rank['allreduce_s'] for rank in ranks],
              'gradient_bytes': gradient_bytes, 'allreduce_alone_ms': 1000 * alone_s,
              'loss': history.history['loss'][-1], 'acc': history.history['acc'][-1]}
    Path(out).write_text(json.dumps(result))


def allreduce_alone_s(comm, nbytes, repeat=50):
    """The median seconds of ``repeat`` all-reduces of an ``nbytes`` float32 buffer, back to
    back on ranks that start together: the transfer itself, without a wait for a slower rank
    (the median, since a neighbour on the machine can stall any one call)."""
    import numpy as np
    buffer = np.zeros(nbytes // 4, np.float32)
    for _ in range(5):  # MPI sets up its buffers for this size
        comm.allreduce(buffer, 'the timing buffer')
    comm.any(False, 'the start of the all-reduce timing')
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        comm.allreduce(buffer, 'the timing buffer')
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def figures(job, baseline_s):
    """A job's per-step figures, from what its rank 0 wrote: ``baseline_s`` is the P=1
    epoch's seconds (None: no speed-up)."""
    steps, processes = job['steps'], job['processes']
    allreduce_s = sum(job['allreduce_s_per_rank']) / processes  # the ranks' mean
    per_step = job['allreduce_bytes'] / steps
    return dict(job, examples_per_s=job['examples'] / job['seconds'],
                speedup=baseline_s / job['seconds'] if baseline_s else None,
                allreduce_calls_per_step=job['allreduce_calls'] / steps,
                allreduce_ms_per_step=1000 * allreduce_s / steps,
                allreduce_bytes_per_step=per_step,
                ring_bytes_per_step=2 * (processes - 1) / processes * per_step,
                allreduce_fraction=allreduce_s / job['seconds'])


# The table's columns: a header and how a row shows under it.
COLUMNS = [
    ('processes', lambda row: f'{row["processes"]}'),
    ('epoch', lambda row: f'{row["seconds"]:.1f} s'),
    ('steps', lambda row: f'{row["steps"]}'),
    ('examples/s', lambda row: f'{row["examples_per_s"]:,.0f}'),
    ('speed-up', lambda row: f'{row["speedup"]:.2f}x' if row['speedup'] else '-'),
    ('all-reduces per step', lambda row: f'{row["allreduce_calls_per_step"]:.2f}'),
    ('in all-reduce per step', lambda row: f'{row["allreduce_ms_per_step"]:.2f} ms'),
    ('gradient all-reduce alone', lambda row: f'{row["allreduce_alone_ms"]:.2f} ms'),
    ('bytes per step, each rank', lambda row: f'{row["allreduce_bytes_per_step"]:,.0f}'),
    ('ring bytes sent per step, each rank', lambda row: f'{row["ring_bytes_per_step"]:,.0f}'),
    ('epoch in all-reduce', lambda row: f'{100 * row["allreduce_fraction"]:.1f}%'),
    ('training acc', lambda row: f'{row["acc"]:.4f}'),
]


def table(rows):
    """The rows as a Markdown table, as docs/benchmarks.md shows them."""
    lines = ['| ' + ' | '.join(header for header, _ in COLUMNS) + ' |',
             '|' + '---:|' * len(COLUMNS)]
    lines += ['| ' + ' | '.join(show(row) for _, show in COLUMNS) + ' |' for row in rows]
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--processes', type=int, nargs='+', default=[1, 2],
                        help='the process counts to time, one mpiexec job each (default: 1 2)')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per process and gradient step (default: %(default)s)')
    parser.add_argument('--subset', type=int, default=None,
                        help='train on the first N images only, for a quick reading (default: '
                             'all 60,000)')
    parser.add_argument('--json', help='also write the results to this JSON file (default: '
                                       'none)')
    parser.add_argument('--rank-out',
                        help='run as one rank of an mpiexec job and have rank 0 write its '
                             'figures to this file, used internally (default: start one job '
                             'per --processes)')
    args = parser.parse_args(argv)
    if args.rank_out:
        rank_epoch(args.batch_size, args.subset, args.rank_out)
        return None
    jobs = [run_job(processes, args.batch_size, args.subset) for processes in args.processes]
    baseline_s = next((job['seconds'] for job in jobs if job['processes'] == 1), None)
    rows = [figures(job, baseline_s) for job in jobs]
    print(f'MNIST convnet, {rows[0]["examples"]:,} training images, batch {args.batch_size} per '
          f'process, 1 thread per process, RMSprop; one epoch after a two-batch warm-up\n')
    print(table(rows))
    print('\nAll-reduce figures are per rank (its own time, including waits for the others); a '
          'ring all-reduce sends 2(P-1)/P times the buffer per rank.')
    if args.json:
        Path(args.json).write_text(json.dumps({'rows': rows}, indent=1))
    return rows


if __name__ == '__main__':
    main()
