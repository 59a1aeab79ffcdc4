"""One training epoch of the lessons' MNIST convnet in minidl and in PyTorch, same batch size.

Both train the same architecture (93,322 parameters) with RMSprop(1e-3) on the 60,000 MNIST
training images; the script prints each epoch time, their ratio and minidl's test accuracy.
PyTorch runs in a process of its own (see ``_separate_process.py``).
``--profile`` adds where minidl's time goes (Python overhead, kernels, GEMM).

    python benchmarks/mnist_epoch.py [--device cpu|gpu] [--batch-size 64] [--subset N]
                                     [--profile] [--json FILE]
"""
import argparse
import cProfile
import importlib.util
import json
import pstats
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'examples'))
import mnist_convnet  # noqa: E402 - the example defines the model and the data
from _separate_process import run_json  # noqa: E402

from minidl import optimizers, random  # noqa: E402


def minidl_epoch(data, batch_size, device):
    """Seconds for one epoch of minidl, and the test accuracy after it."""
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


def torch_epoch(torch, data, batch_size, device):
    """Seconds for one epoch of the same network in PyTorch eager mode."""
    nn = torch.nn
    (x_train, y_train), _ = data
    net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    x = torch.from_numpy(x_train.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(y_train.argmax(axis=1))
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

    def epoch(count):
        order = torch.randperm(count)
        for start in range(0, count, batch_size):
            index = order[start:start + batch_size]
            xb, yb = x[index].to(device), y[index].to(device)
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            optimizer.step()
        sync()

    epoch(batch_size * 2)
    start = time.perf_counter()
    epoch(len(x))
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cpu', 'gpu'), default='cpu',
                        help='where the epoch runs (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per gradient step (default: %(default)s)')
    parser.add_argument('--subset', type=int, default=None,
                        help='train on the first N images only, for a quick reading (default: '
                             'all 60,000)')
    parser.add_argument('--profile', action='store_true',
                        help="also print where a hundred of minidl's steps spend their time "
                             '(default: no profile)')
    parser.add_argument('--json', help='also write the results to this JSON file (default: '
                                       'none)')
    parser.add_argument('--torch-only', action='store_true',
                        help='time PyTorch alone and print the result as JSON, used '
                             'internally (default: time minidl, then PyTorch in a process of '
                             'its own)')
    args = parser.parse_args(argv)

    random.seed(0)
    data = mnist_convnet.load(args.subset)
    if args.torch_only:
        import torch
        seconds = torch_epoch(torch, data, args.batch_size,
                              'cuda' if args.device == 'gpu' else 'cpu')
        print(json.dumps({'torch_s': seconds, 'version': torch.__version__,
                          'threads': torch.get_num_threads()}))
        return
    seconds, accuracy, _ = minidl_epoch(data, args.batch_size, args.device)
    print(f'minidl  epoch: {seconds:7.2f} s   test accuracy {accuracy:.4f}')
    if args.device == 'gpu':
        from minidl.backends import cupy_module
        pool_mb = cupy_module().get_default_memory_pool().total_bytes() / 2**20
        print(f'minidl  peak GPU memory (CuPy pool): {pool_mb:.0f} MB')
    result = {'device': args.device, 'batch_size': args.batch_size, 'minidl_s': seconds,
              'minidl_test_accuracy': accuracy, 'examples': len(data[0][0])}
    if importlib.util.find_spec('torch') is None:
        print('torch not installed: no comparison')
    else:
        peer = run_json(__file__, '--torch-only', '--device', args.device, '--batch-size',
                        args.batch_size, *(['--subset', args.subset] if args.subset else []))
        result['torch_s'] = peer['torch_s']
        print(f'torch   epoch: {peer["torch_s"]:7.2f} s   (torch {peer["version"]}, '
              f'{peer["threads"]} threads, in its own process)')
        print(f'ratio minidl / torch: {seconds / peer["torch_s"]:.2f}')
    if args.profile:
        profile_minidl(data, args.batch_size, args.device)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def profile_minidl(data, batch_size, device, batches=100):
    """Print the functions where a hundred training steps spend their time."""
    (x_train, y_train), _ = data
    model = mnist_convnet.build_model()
    model.compile(optimizers.RMSprop(learning_rate=1e-3), 'categorical_crossentropy', ['acc'])
    model.to(device)
    count = batch_size * batches
    model.fit(x_train[:batch_size], y_train[:batch_size], batch_size=batch_size, verbose=0)
    profiler = cProfile.Profile()
    profiler.runcall(model.fit, x_train[:count], y_train[:count], batch_size=batch_size,
                     verbose=0)
    pstats.Stats(profiler).sort_stats('tottime').print_stats(20)


if __name__ == '__main__':
    main()
