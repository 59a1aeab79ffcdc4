"""The first training steps of the lessons' MNIST convnet in a new process, cold and warm.

A new process gets minidl's Numba kernels either by compiling them (cold: Numba's cache is
empty, as on the first run after a clone, or after an edit of ``numba_cpu.py``) or by loading
them from the cache that ``cache=True`` keeps on disk (warm: every later run). Each case runs
in a process of its own, first with an empty temporary cache directory and then with the one
the first process filled; each times

* the first training step (one batch), which compiles or loads every kernel a step needs;
* the second step, the steady state, for comparison;
* the whole process, from its start (importing NumPy, Numba and minidl) to its end.

    python benchmarks/first_step.py [--batch-size 64]
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'examples'))
import mnist_convnet  # noqa: E402 - the example defines the model and the data
from _separate_process import run_json  # noqa: E402

from minidl import optimizers, random  # noqa: E402


def kernel_sources():
    """(compiled, loaded): how many of the kernels (their jitted ``_name`` functions, helpers
    compiled into them not counted) Numba compiled, and loaded from its cache, here."""
    from minidl.backends import kernels, numba_cpu
    loops = {loop for name in kernels.KERNELS for loop in numba_cpu.jitted(name)}
    stats = [loop.stats for loop in loops]
    return (sum(len(stat.cache_misses) for stat in stats),
            sum(len(stat.cache_hits) for stat in stats))


def two_steps(batch_size):
    """Seconds of the first and of the second training step of a new model, batch_size each."""
    random.seed(0)
    (x_train, y_train), _ = mnist_convnet.load(batch_size * 2)
    model = mnist_convnet.build_model()
    model.compile(optimizers.RMSprop(learning_rate=1e-3), 'categorical_crossentropy', ['acc'])
    seconds = []
    for step in range(2):
        batch = slice(step * batch_size, (step + 1) * batch_size)
        start = time.perf_counter()
        model.fit(x_train[batch], y_train[batch], batch_size=batch_size, verbose=0)
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per training step (default: %(default)s)')
    parser.add_argument('--steps-only', action='store_true',
                        help='time the two steps in this process and print them as JSON, used '
                             'internally (default: run a cold and a warm process)')
    args = parser.parse_args(argv)
    if args.steps_only:
        first, second = two_steps(args.batch_size)
        compiled, loaded = kernel_sources()
        print(json.dumps({'first_s': first, 'second_s': second, 'compiled': compiled,
                          'loaded': loaded}))
        return None
    results = {}
    with tempfile.TemporaryDirectory(prefix='minidl-numba-') as cache:
        for case in ('cold', 'warm'):
            start = time.perf_counter()
            results[case] = run_json(__file__, '--steps-only', '--batch-size', args.batch_size,
                                     env=dict(os.environ, NUMBA_CACHE_DIR=cache))
            results[case]['process_s'] = time.perf_counter() - start
    print(f'batch {args.batch_size}: {"":5s} {"first step":>10s} {"second step":>11s} '
          f'{"process":>8s}  kernels')
    for case, result in results.items():
        print(f'{"":9s}{case:5s} {result["first_s"]:9.2f}s {result["second_s"]:10.3f}s '
              f'{result["process_s"]:7.1f}s  {result["compiled"]} compiled, '
              f'{result["loaded"]} loaded from the cache')
    return results


if __name__ == '__main__':
    main()
