"""How close each CPU kernel comes to the machine's memory bandwidth, on real training steps.

First the bandwidth: STREAM's copy (``a = b``) and triad (``a = b + s*c``) on arrays far larger
than the caches, with NumPy and with a Numba loop on every thread; the best of these is the
roofline a memory-bound kernel is measured against. Then one training step of each lesson net
(the MNIST convnet at batch 64, the 150x150 cats-and-dogs convnet at batch 20, VGG16's
convolutional base with a small head at batch 8, the IMDB Conv1D net at batch 128) runs with
every kernel call recorded (``_step_anatomy.py``). Each distinct call is replayed and timed
alone, best of ``--repeat`` (the machine's capability: on shared cores a median mixes in the
neighbours). Its bytes are what it must move at least: every array it reads
once, every array it writes once (an optimizer's parameters and slots are read and written).
Average pooling has no lesson net, so it replays the max-pooling windows of the same steps.

    python benchmarks/kernels_roofline.py [--nets mnist,cats,vgg,imdb] [--repeat 9]
                                          [--json FILE]
"""
import argparse
import json
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numba import njit, prange

import minidl.applications
from minidl import layers, losses, models, optimizers, random
from minidl.backends import numba_cpu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import blas_line, minidl_model  # noqa: E402
from _step_anatomy import FAMILIES, StepAnatomy  # noqa: E402

STREAM_BYTES = 2**27  # per array: 128 MB, four times the 32 MB L3


# ---------------------------------------------------------------------------------------------
# The roofline: STREAM copy and triad
# ---------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _copy(a, b):
    for i in prange(a.size):
        a[i] = b[i]


@njit(parallel=True, cache=True)
def _triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def best_seconds(run, repeat):
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def stream(repeat):
    """{test: GB/s}, counting each array read or written once (STREAM's convention)."""
    n = STREAM_BYTES // 4
    a, b, c = (np.full(n, value, np.float32) for value in (0.0, 1.0, 2.0))
    s = np.float32(3.0)
    scratch = np.empty_like(a)

    def numpy_triad():
        np.multiply(c, s, out=scratch)
        np.add(b, scratch, out=a)
    tests = {'copy, NumPy': (lambda: np.copyto(a, b), 2),
             'copy, Numba': (lambda: _copy(a, b), 2),
             'triad, NumPy (two passes)': (numpy_triad, 3),
             'triad, Numba': (lambda: _triad(a, b, c, s), 3)}
    return {name: arrays * STREAM_BYTES / best_seconds(run, repeat) / 1e9
            for name, (run, arrays) in tests.items()}


# ---------------------------------------------------------------------------------------------
# The training steps whose kernel calls are replayed
# ---------------------------------------------------------------------------------------------

def compiled(model, loss):
    model.compile(optimizers.RMSprop(learning_rate=1e-4), loss)
    return model


def vgg_net():
    base = minidl.applications.VGG16(weights=None, include_top=False, input_shape=(150, 150, 3))
    return compiled(models.Sequential([base, layers.Flatten(),
                                       layers.Dense(256, activation='relu'),
                                       layers.Dense(1, activation='sigmoid')]),
                    'binary_crossentropy')


def imdb_net():
    return compiled(models.Sequential([
        layers.Input((500,), dtype='int64'), layers.Embedding(10000, 128),
        layers.Conv1D(32, 7, activation='relu'), layers.MaxPooling1D(5),
        layers.Conv1D(32, 7, activation='relu'), layers.GlobalMaxPooling1D(), layers.Dense(1)]),
        losses.BinaryCrossentropy(from_logits=True))


def _images(batch, shape, classes):
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + shape, dtype=np.float32)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    return x, y


def _binary(batch, x):
    return x, np.random.default_rng(0).integers(0, 2, (batch, 1)).astype(np.float32)


# net -> (title, a compiled model, one batch); the MNIST and cats nets as the peers build them
NETS = OrderedDict(
    mnist=('MNIST convnet, batch 64', lambda: minidl_model('mnist'),
           lambda: _images(64, (28, 28, 1), 10)),
    cats=('cats-and-dogs convnet 150x150, batch 20', lambda: minidl_model('cats'),
          lambda: _binary(20, _images(20, (150, 150, 3), 1)[0])),
    vgg=('VGG16 base + Dense head, 150x150, batch 8', vgg_net,
         lambda: _binary(8, _images(8, (150, 150, 3), 1)[0])),
    imdb=('IMDB Conv1D net, 500 words, batch 128', imdb_net,
          lambda: _binary(128, np.random.default_rng(0).integers(0, 10000, (128, 500)))),
)


def recorded_calls(net):
    """The kernel calls of one training step of ``net`` (after a warm-up step)."""
    _, build, data = NETS[net]
    random.seed(0)
    model = build()
    x, y = data()
    model.train_on_batch(x, y)
    with StepAnatomy(record_calls=True) as anatomy:
        model.train_on_batch(x, y)
    return anatomy.calls


# ---------------------------------------------------------------------------------------------
# Bytes and replay
# ---------------------------------------------------------------------------------------------

IN_PLACE = {name for name, family in FAMILIES.items() if family == 'optimizer'}


def arrays_in(value):
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in arrays_in(v)]
    return []


def bytes_moved(name, args, kwargs, result):
    """Each array argument read once, each result written once; in-place updates write their
    parameter and slot arguments back (every array but the gradient, the second argument)."""
    inputs = arrays_in(list(args) + list(kwargs.values()))
    moved = sum(a.nbytes for a in inputs) + sum(a.nbytes for a in arrays_in(result))
    if name in IN_PLACE:
        moved += sum(a.nbytes for a in inputs if a is not args[1])
    return moved


def describe(name, args, kwargs):
    """The row's label: the kernel and its arrays' shapes (and the window, for windowed ones)."""
    shapes = ' '.join('x'.join(map(str, a.shape)) for a in arrays_in(list(args)[:2]))
    extra = [a for a in list(args)[1:] if isinstance(a, tuple) and not arrays_in(a)]
    return f'{name} {shapes}' + (f' {extra[0]}' if extra and 'pool' in name else '')


def replay(name, args, kwargs, repeat):
    """Best seconds of the call alone; in-place kernels run on copies of their state."""
    function = getattr(numba_cpu, name)
    if name in IN_PLACE:
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    result = function(*args, **kwargs)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), result


def average_pooling_calls(calls):
    """The max-pooling windows of a step, as average pooling would run them."""
    extra = []
    for name, args, kwargs in calls:
        if name == 'maxpool2d_forward':
            extra.append(('avgpool2d_forward', args, kwargs))
        elif name == 'maxpool2d_backward':
            dy, _, x_shape, *window = args
            extra.append(('avgpool2d_backward', (dy, x_shape, *window), kwargs))
    return extra


def rows_of(net, repeat, bandwidth):
    calls = recorded_calls(net)
    calls += average_pooling_calls(calls)
    if net == 'mnist':  # the other optimizers, on the same weights as the step's RMSprop
        calls += other_optimizer_calls([c for c in calls if c[0] == 'rmsprop_update'])
    rows = OrderedDict()
    for name, args, kwargs in calls:
        label = describe(name, args, kwargs)
        if label in rows:
            rows[label]['calls'] += 1
            continue
        seconds, result = replay(name, args, kwargs, repeat)
        moved = bytes_moved(name, args, kwargs, result)
        rows[label] = {'kernel': name, 'family': FAMILIES[name], 'label': label, 'calls': 1,
                       'bytes': moved, 'seconds': seconds, 'GB/s': moved / seconds / 1e9,
                       'roofline %': 100 * moved / seconds / 1e9 / bandwidth}
    return list(rows.values())


def other_optimizer_calls(rmsprop_calls):
    """SGD with momentum and Adam updates of the weights a step's RMSprop updated."""
    extra = []
    for _, (param, grad, *_), _ in rmsprop_calls:
        slots = lambda: np.zeros_like(param)  # noqa: E731
        extra.append(('sgd_update', (param, grad, slots(), 0.01, 0.9, False), {}))
        extra.append(('adam_update', (param, grad, slots(), slots(), None, 1e-3, 0.9, 0.999,
                                      1e-7, 1), {}))
    return extra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nets', default=','.join(NETS),
                        help='comma-separated nets to replay (default: %(default)s)')
    parser.add_argument('--repeat', type=int, default=15,
                        help='timed calls per row, after a warm-up (default: %(default)s)')
    parser.add_argument('--json', help='also write the results to this JSON file (default: '
                                       'none)')
    args = parser.parse_args(argv)
    nets = args.nets.split(',')
    unknown = set(nets) - set(NETS)
    if unknown:
        parser.error(f'unknown nets {sorted(unknown)}; choose from {list(NETS)}')

    bandwidths = stream(max(3, args.repeat // 3))
    roofline = max(bandwidths.values())
    print(f'memory bandwidth, {os.cpu_count()} cores, {STREAM_BYTES // 2**20} MB arrays, best '
          f'of {max(3, args.repeat // 3)}:')
    for name, gbs in bandwidths.items():
        print(f'  {name:28} {gbs:6.1f} GB/s')
    print(f'roofline: {roofline:.1f} GB/s')
    print(f'{blas_line()}\n')
    result = {'bandwidth GB/s': bandwidths, 'roofline GB/s': roofline, 'nets': {}}
    for net in nets:
        rows = rows_of(net, args.repeat, roofline)
        result['nets'][net] = rows
        print(f'{NETS[net][0]}')
        print(f'  {"kernel and arrays":62} {"calls":>5} {"MB":>7} {"us":>8} {"GB/s":>6} '
              f'{"% roof":>6}')
        for row in rows:
            print(f'  {row["label"][:62]:62} {row["calls"]:5} {row["bytes"] / 1e6:7.2f} '
                  f'{row["seconds"] * 1e6:8.1f} {row["GB/s"]:6.1f} {row["roofline %"]:6.0f}')
        below = [row for row in rows if row['roofline %'] < 60]
        print(f'  {len(below)} of {len(rows)} rows below 60% of the roofline\n')
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
