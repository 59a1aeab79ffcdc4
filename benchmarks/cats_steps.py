"""Training steps per second of the lessons' cats-and-dogs convnet (150x150x3), minidl and peers.

Conv2D 32-64-128-128 (3x3, relu) each followed by 2x2 max pooling, Flatten, Dropout(0.5),
Dense(512, relu), Dense(1, sigmoid), binary cross-entropy, RMSprop(1e-4), batch 20: the
lessons' cats-and-dogs net as they train it with augmentation. The images are random (the benchmark times the arithmetic, not the data), the
same for every framework. Each peer (PyTorch eager, Keras 3 on TensorFlow) runs when importable,
in a process of its own.

    python benchmarks/cats_steps.py [--steps 30] [--batch-size 20] [--json FILE]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from _peers import (SECONDS, add_output_arguments, available_peers, blas_line, minidl_model,
                    peer_seconds)


def data(steps, batch_size):
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch_size, 150, 150, 3), dtype=np.float32)
    return x, rng.integers(0, 2, (len(x), 1)).astype(np.float32)


def minidl_seconds(x, y, batch_size):
    model = minidl_model('cats')
    model.fit(x[:2 * batch_size], y[:2 * batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, verbose=0)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=30,
                        help='timed training steps, after two warm-up steps (default: '
                             '%(default)s)')
    parser.add_argument('--batch-size', type=int, default=20,
                        help='images per step (default: %(default)s)')
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    x, y = data(args.steps, args.batch_size)
    if args.peer:
        seconds, version = SECONDS[args.peer]('cats', x, y, args.batch_size, 'cpu')
        print(json.dumps({'seconds': seconds, 'version': version}))
        return
    blas = blas_line()
    result = {'steps': args.steps, 'batch_size': args.batch_size, 'blas': blas,
              'steps_per_s': {'minidl': args.steps / minidl_seconds(x, y, args.batch_size)}}
    for peer in available_peers():
        timed = peer_seconds(__file__, peer, '--steps', args.steps, '--batch-size',
                             args.batch_size)
        result['steps_per_s'][peer] = args.steps / timed['seconds']
    print(f'cats-and-dogs convnet, 150x150x3, batch {args.batch_size}, {args.steps} steps')
    print(blas)
    for name, rate in result['steps_per_s'].items():
        print(f'  {name:7} {rate:6.2f} steps/s  {1000 / rate:7.1f} ms per step')
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
