"""One training epoch of the lessons' MNIST convnet in minidl and in its peers, same batch size.

Every framework trains the same architecture (93,322 parameters) with RMSprop(1e-3) on the
60,000 MNIST training images: minidl, PyTorch (eager) and Keras 3 on TensorFlow, each peer
when it is importable and in a process of its own (see ``_separate_process.py``). The script
prints each epoch time, minidl's time over the fastest peer's, and minidl's test accuracy;
then where a minidl training step spends its time (``_step_anatomy.py``): the GEMMs, with the
GFLOP/s they reach in the step and NumPy alone on the same shapes, each kernel family, and the
Python/autograd overhead that is left.

    python benchmarks/mnist_epoch.py [--device cpu|gpu] [--batch-size 64] [--subset N]
                                     [--json FILE]
"""
import argparse
import json
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'examples'))
import mnist_convnet  # noqa: E402 - the example defines the model and the data
from _peers import (SECONDS, add_output_arguments, available_peers, blas_line,  # noqa: E402
                    peer_seconds)
from _step_anatomy import StepAnatomy, gemm_flops, numpy_gemm_seconds  # noqa: E402

from minidl import optimizers, random  # noqa: E402


def minidl_epoch(data, batch_size, device):
    """Seconds for one epoch of minidl, the test accuracy after it, and the model."""
    (x_train, y_train), (x_test, y_test) = data
    model = mnist_convnet.build_model()
    model.compile(optimizers.RMSprop(learning_rate=1e-3), 'categorical_crossentropy', ['acc'])
    model.to(device)
    model.fit(x_train[:batch_size * 2], y_train[:batch_size * 2], batch_size=batch_size,
              verbose=0)  # compiles the kernels, so the epoch below is steady state
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return seconds, model.evaluate(x_test, y_test, batch_size=256, verbose=0)[1], model


def step_anatomy(model, data, batch_size, steps=100):
    """{part: ms per step} over ``steps`` training steps, and the GEMMs' GFLOP/s in the step
    and in NumPy alone on the same shapes."""
    (x_train, y_train), _ = data
    count = min(len(x_train), batch_size * steps)
    with StepAnatomy() as anatomy:
        start = time.perf_counter()
        model.fit(x_train[:count], y_train[:count], batch_size=batch_size, verbose=0)
        total = time.perf_counter() - start
    steps = -(-count // batch_size)
    parts = {part: 1000 * s / steps for part, s in anatomy.seconds.items()}
    parts['Python and autograd (the rest)'] = 1000 * total / steps - sum(parts.values())
    gemms = anatomy.gemms[:len(anatomy.gemms) // steps]  # every step runs the same products
    in_step = gemm_flops(anatomy.gemms) / anatomy.seconds['GEMM (BLAS)'] / 1e9
    alone = gemm_flops(gemms) / numpy_gemm_seconds(gemms) / 1e9
    return 1000 * total / steps, parts, in_step, alone


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cpu', 'gpu'), default='cpu',
                        help='where the epoch runs (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per gradient step (default: %(default)s)')
    parser.add_argument('--subset', type=int, default=None,
                        help='train on the first N images only, for a quick reading (default: '
                             'all 60,000)')
    add_output_arguments(parser)
    args = parser.parse_args(argv)

    random.seed(0)
    data = mnist_convnet.load(args.subset)
    if args.peer:
        (x_train, y_train), _ = data
        seconds, version = SECONDS[args.peer]('mnist', x_train, y_train, args.batch_size,
                                              args.device)
        print(json.dumps({'seconds': seconds, 'version': version}))
        return
    blas = blas_line()
    if args.device == 'cpu':
        print(blas)
    seconds, accuracy, model = minidl_epoch(data, args.batch_size, args.device)
    print(f'minidl  epoch: {seconds:7.2f} s   test accuracy {accuracy:.4f}')
    if args.device == 'gpu':
        from minidl.backends import cupy_module
        pool_mb = cupy_module().get_default_memory_pool().total_bytes() / 2**20
        print(f'minidl  peak GPU memory (CuPy pool): {pool_mb:.0f} MB')
    result = {'device': args.device, 'blas': blas, 'batch_size': args.batch_size,
              'minidl_s': seconds,
              'minidl_test_accuracy': accuracy, 'examples': len(data[0][0]), 'peers': {}}
    for peer in available_peers():
        timed = peer_seconds(__file__, peer, '--device', args.device, '--batch-size',
                             args.batch_size, *(['--subset', args.subset] if args.subset else []))
        result['peers'][peer] = timed
        print(f'{peer:7} epoch: {timed["seconds"]:7.2f} s   ({timed["version"]}, in its own '
              f'process)')
    if result['peers']:
        fastest = min(result['peers'], key=lambda p: result['peers'][p]['seconds'])
        result['ratio_to_fastest_peer'] = seconds / result['peers'][fastest]['seconds']
        print(f'ratio minidl / fastest peer ({fastest}): {result["ratio_to_fastest_peer"]:.2f}')
    else:
        print('no peer installed (torch, tensorflow + keras): no comparison')
    if args.device == 'cpu':
        step, parts, in_step, alone = step_anatomy(model, data, args.batch_size)
        print(f'\nminidl training step: {step:.2f} ms (timers on)')
        for part, ms in sorted(parts.items(), key=lambda item: -item[1]):
            print(f'  {part:32} {ms:6.2f} ms  {100 * ms / step:4.0f}%')
        print(f'  GEMMs reach {in_step:.0f} GFLOP/s in the step; NumPy alone on the same shapes '
              f'{alone:.0f} GFLOP/s')
        result.update(step_ms=step, step_parts_ms=parts, gemm_gflops_in_step=in_step,
                      gemm_gflops_numpy_alone=alone)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
