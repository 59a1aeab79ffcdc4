"""First-call JIT cost versus steady-state time of every Numba kernel.

A Numba kernel is compiled the first time it meets a dtype (or loaded from the on-disk cache
that ``cache=True`` keeps), so its first call is slow and says nothing about its speed. For
each kernel, on a shape from the lessons' convnets (the cats-and-dogs net at 150×150, a
Dense(512) head, an IMDB-sized embedding), this prints

* the first call, and whether it compiled or loaded from the cache;
* the steady state: the median of ``--repeat`` later calls;
* the NumPy reference's median on the same arguments, and the speed-up over it.

    python benchmarks/kernels_jit.py [--dtype float32] [--repeat 7] [--cold]

``--cold`` compiles into a fresh, temporary cache directory, so that the first call shows the
full compilation cost even where a cache exists.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from minidl.backends import reference


def cases(dtype):
    """(kernel name, argument description, argument tuple) for every kernel."""
    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    conv = dict(ksize=(3, 3), stride=(1, 1), pad=((0, 0), (0, 0)), dilation=(1, 1))
    pool = dict(ksize=(2, 2), stride=(2, 2), pad=((0, 0), (0, 0)))
    x_conv, x_pool, acts = normal(32, 74, 74, 32), normal(32, 72, 72, 64), normal(32, 36, 36, 64)
    cols = reference.im2col(x_conv, **conv)
    pooled, argmax = reference.maxpool2d_forward(x_pool, **pool)
    features = normal(32, 49, 512)
    _, winners = reference.global_maxpool_forward(features)
    logits, labels = normal(128, 1000), rng.integers(0, 1000, 128)
    _, probs = reference.softmax_xent_forward(logits, labels)
    ids = rng.integers(0, 10000, (32, 500))
    weights = [normal(6272, 512) for _ in range(2)]
    squares = [np.abs(normal(6272, 512)) for _ in range(2)]
    return [
        ('im2col', 'x (32, 74, 74, 32), 3x3', (x_conv, *conv.values())),
        ('col2im', 'cols (32, 72, 72, 3, 3, 32)', (cols, x_conv.shape, *conv.values())),
        ('maxpool2d_forward', 'x (32, 72, 72, 64), 2x2', (x_pool, *pool.values())),
        ('maxpool2d_backward', 'dy (32, 36, 36, 64), 2x2',
         (pooled, argmax, x_pool.shape, *pool.values())),
        ('avgpool2d_forward', 'x (32, 72, 72, 64), 2x2', (x_pool, *pool.values())),
        ('avgpool2d_backward', 'dy (32, 36, 36, 64), 2x2',
         (pooled, x_pool.shape, *pool.values())),
        ('global_maxpool_forward', 'x (32, 49, 512)', (features,)),
        ('global_maxpool_backward', 'dy (32, 512)', (features[:, 0], winners, 49)),
        ('bias_act_forward', 'x (32, 36, 36, 64), relu', (acts, normal(64), 'relu')),
        ('bias_act_backward', 'dy (32, 36, 36, 64), relu', (acts, np.abs(acts), 'relu')),
        ('dropout_mask', 'shape (32, 36, 36, 64)', (acts.shape, 0.5, 1, 2, dtype)),
        ('softmax_xent_forward', 'logits (128, 1000)', (logits, labels)),
        ('softmax_xent_backward', 'probs (128, 1000)', (probs, labels, normal(128))),
        ('embedding_backward', 'ids (32, 500), D 32', (ids, normal(32, 500, 32), 10000)),
        ('sgd_update', 'param (6272, 512), momentum',
         (weights[0], weights[1], normal(6272, 512), 1e-3, 0.9, False)),
        ('rmsprop_update', 'param (6272, 512)',
         (weights[0], weights[1], squares[0], None, None, 1e-3, 0.9, 0.0, 1e-7)),
        ('adam_update', 'param (6272, 512)',
         (weights[0], weights[1], normal(6272, 512), squares[1], None, 1e-3, 0.9, 0.999, 1e-7,
          1)),
        ('adagrad_update', 'param (6272, 512)', (weights[0], weights[1], squares[0], 1e-3, 1e-7)),
        ('adadelta_update', 'param (6272, 512)',
         (weights[0], weights[1], squares[0], squares[1], 1.0, 0.95, 1e-7)),
        ('adamax_update', 'param (6272, 512)',
         (weights[0], weights[1], normal(6272, 512), squares[1], 1e-3, 0.9, 0.999, 1e-7, 1)),
        ('nadam_update', 'param (6272, 512)',
         (weights[0], weights[1], normal(6272, 512), squares[1], 1e-3, 0.9, 0.999, 1e-7, 1,
          0.9 * (1 - 0.5 * 0.96))),
    ]


def timed(fn, args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def median_time(fn, args, repeat):
    return statistics.median(timed(fn, args) for _ in range(repeat))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dtype', default='float32', choices=('float32', 'float64'),
                        help='dtype of every argument (default: %(default)s)')
    parser.add_argument('--repeat', type=int, default=7,
                        help='steady-state calls; the median is shown (default: %(default)s)')
    parser.add_argument('--cold', action='store_true',
                        help="compile into an empty temporary cache directory (default: use "
                             "Numba's cache, compiling only what it lacks)")
    args = parser.parse_args(argv)
    if args.cold:  # before Numba is imported: it reads the variable once
        os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp(prefix='minidl-numba-')
    import numba

    from minidl.backends import numba_cpu

    print(f'Numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads, '
          f'{args.dtype}, steady state = median of {args.repeat} calls')
    print(f'{"kernel":24s} {"arguments":30s} {"first call":>10s} {"from":>8s} '
          f'{"steady":>9s} {"reference":>10s} {"speed-up":>8s}')
    total_first = 0.0
    for name, description, call_args in cases(np.dtype(args.dtype)):
        fast, slow = getattr(numba_cpu, name), getattr(reference, name)
        first = timed(fast, call_args)
        loaded = sum(sum(loop.stats.cache_hits.values()) for loop in numba_cpu.jitted(name))
        source = 'cache' if loaded else 'compile'
        steady = median_time(fast, call_args, args.repeat)
        baseline = median_time(slow, call_args, args.repeat)
        total_first += first
        print(f'{name:24s} {description:30s} {first * 1e3:8.0f}ms {source:>8s} '
              f'{steady * 1e3:7.2f}ms {baseline * 1e3:8.2f}ms {baseline / steady:7.1f}x')
    print(f'first calls in all: {total_first:.1f} s')


if __name__ == '__main__':
    main()
