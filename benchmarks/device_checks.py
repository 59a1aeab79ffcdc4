"""Every check that needs a real NVIDIA GPU, as one prepared run for a machine lent for minutes.

Runs in turn, each in its own process with its own time limit, and writes what each printed to
``--out`` (with a summary, ``checks.json``):

1. the GPU tests: ``pytest -m gpu`` and the CUDA parity tests of ``tests/backends``, which
   run on the device when one answers (on the CUDA simulator elsewhere);
2. ``conv_speed.py --device gpu`` (minidl's CUDA kernels and PyTorch with cuDNN, same run);
3. ``mnist_epoch.py --device gpu`` (one MNIST epoch, with PyTorch on the GPU beside it when
   it is installed).

The data-parallel NCCL tests need two GPUs (NCCL refuses two ranks on one); with two or more
they run in step 1. A check that runs out of time is cut and reported, and the next one
starts. Run from the repository root, with ``PYTHONPATH=.``::

    PYTHONPATH=. python benchmarks/device_checks.py --out $OUT [--budget 480]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name, command (run from the repository root), share of the time budget
CHECKS = [
    ('cuda-tests', [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                    'tests/backends/test_cuda.py', 'tests/distributed/test_nccl.py'], 0.4),
    ('gpu-marked-tests', [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-m',
                          'gpu', 'tests'], 0.2),
    ('conv-speed', [sys.executable, 'benchmarks/conv_speed.py', '--device', 'gpu', '--json',
                    '{out}/conv_speed.json'], 0.2),
    ('mnist-epoch', [sys.executable, 'benchmarks/mnist_epoch.py', '--device', 'gpu', '--json',
                     '{out}/mnist_epoch.json'], 0.2),
]


def run(name, command, seconds, out):
    """Run one check for at most ``seconds``; its output goes to ``out/<name>.txt``."""
    command = [part.format(out=out) for part in command]
    start = time.perf_counter()
    with open(out / f'{name}.txt', 'w') as log:
        try:
            code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, 'PYTHONPATH': str(ROOT)},
                                  timeout=seconds).returncode
        except subprocess.TimeoutExpired:
            code = 'timed out'
    return {'check': name, 'command': ' '.join(command), 'exit': code,
            'seconds': round(time.perf_counter() - start, 1), 'limit': round(seconds)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path('runs/device_checks'),
                        help="folder for each check's output and checks.json; on the device "
                             "machine, $OUT (default: %(default)s)")
    parser.add_argument('--budget', type=float, default=480,
                        help='seconds for all the checks together, shared as CHECKS says '
                             '(default: %(default)s)')
    parser.add_argument('--only', nargs='*', default=None,
                        help='run these checks alone, by name (default: all of '
                             f'{", ".join(name for name, _, _ in CHECKS)})')
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = [run(name, command, share * args.budget, args.out.resolve())
               for name, command, share in CHECKS if args.only is None or name in args.only]
    (args.out / 'checks.json').write_text(json.dumps(results, indent=1))
    for result in results:
        print(f'{result["check"]:18s} exit {result["exit"]!s:10s} {result["seconds"]:7.1f} s '
              f'of {result["limit"]} s')
    return results


if __name__ == '__main__':
    main()
