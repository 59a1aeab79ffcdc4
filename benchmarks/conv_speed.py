"""Time convolution forward+backward in minidl (each kernel set) and in PyTorch, same run.

Rows are the convolutions of the lessons: the MNIST net at batch 64, the 150x150 cats-and-dogs
net at batch 20 and VGG16 blocks 1, 3 and 5 at batch 8 on 150x150 inputs. Each cell is the
median of ``--repeat`` runs after a warm-up; GFLOP/s counts the 3 GEMM-sized products of a
training step (forward, input gradient, weight gradient). The "gemm floor" column times those
three products alone on ready-made operands: no im2col convolution can be faster than that on
the same BLAS. PyTorch runs in a process of its own (see ``_separate_process.py``).

    python benchmarks/conv_speed.py --device cpu|gpu [--json FILE] [--repeat 5] [--rounds 1]
                                    [--quick]
"""
import argparse
import importlib.util
import json
import platform
import statistics
import time

import numpy as np

import minidl
import minidl.functions as F
from minidl.backends import cupy_module, kernels
from _peers import blas_line
from _separate_process import run_json

# name, batch, (H, W, Cin), (kh, kw), Cout, padding
ROWS = [
    ('mnist conv1', 64, (28, 28, 1), (3, 3), 32, 'valid'),
    ('mnist conv2', 64, (13, 13, 32), (3, 3), 64, 'valid'),
    ('mnist conv3', 64, (5, 5, 64), (3, 3), 64, 'valid'),
    ('cats conv1', 20, (150, 150, 3), (3, 3), 32, 'valid'),
    ('cats conv2', 20, (74, 74, 32), (3, 3), 64, 'valid'),
    ('cats conv3', 20, (36, 36, 64), (3, 3), 128, 'valid'),
    ('cats conv4', 20, (17, 17, 128), (3, 3), 128, 'valid'),
    ('vgg block1_conv2', 8, (150, 150, 64), (3, 3), 64, 'same'),
    ('vgg block3_conv1', 8, (37, 37, 128), (3, 3), 256, 'same'),
    ('vgg block5_conv1', 8, (9, 9, 512), (3, 3), 512, 'same'),
]


def gemm_shape(batch, shape, ksize, cout, padding):
    """(rows, depth, filters) of the column matrix product ``cols @ W`` of a stride-1 row."""
    h, w, cin = shape
    oh, ow = (h, w) if padding == 'same' else (h - ksize[0] + 1, w - ksize[1] + 1)
    return batch * oh * ow, ksize[0] * ksize[1] * cin, cout


def flops(*row):
    rows, depth, filters = gemm_shape(*row)
    return 3 * 2 * rows * depth * filters


def median_ms(step, repeat, sync=lambda: None):
    step()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def minidl_step(xp, batch, shape, ksize, cout, padding):
    """One conv forward + backward (input, weight and bias gradients) on minidl."""
    rng = np.random.default_rng(0)
    x = minidl.Tensor(xp.asarray(rng.standard_normal((batch,) + shape, dtype=np.float32)),
                      requires_grad=True)
    W = minidl.Tensor(xp.asarray(rng.standard_normal(ksize + (shape[2], cout),
                                                     dtype=np.float32) * 0.1),
                      requires_grad=True)
    b = minidl.Tensor(xp.zeros(cout, np.float32), requires_grad=True)

    def step():
        y = F.conv2d(x, W, b, padding=padding)
        y.backward(xp.ones(y.shape, np.float32))
    return step


def gemm_floor_step(xp, *row):
    """The step's three BLAS products alone: ``cols @ W``, ``cols^T @ dY`` and ``dY @ W^T``."""
    rows, depth, filters = gemm_shape(*row)
    rng = np.random.default_rng(0)
    cols, W, gy = (xp.asarray(rng.standard_normal(s, dtype=np.float32))
                   for s in ((rows, depth), (depth, filters), (rows, filters)))

    def step():
        cols @ W, cols.T @ gy, gy @ W.T
    return step


def torch_step(torch, device, batch, shape, ksize, cout, padding):
    """The same convolution in PyTorch (NCHW, cuDNN on the GPU)."""
    h, w, cin = shape
    x = torch.randn(batch, cin, h, w, device=device, requires_grad=True)
    conv = torch.nn.Conv2d(cin, cout, ksize, padding=padding).to(device)

    def step():
        y = conv(x)
        y.backward(torch.ones_like(y))
    return step


def torch_times(rows, device, repeat):
    """{'version', 'ms': {layer: ms}}: every row timed in PyTorch; this process must not load
    minidl's kernels (see ``_separate_process.py``)."""
    import torch
    torch_device = 'cuda' if device == 'gpu' else 'cpu'
    sync = torch.cuda.synchronize if device == 'gpu' else (lambda: None)
    return {'version': torch.__version__,
            'ms': {name: median_ms(torch_step(torch, torch_device, batch, shape, ksize, cout,
                                              padding), repeat, sync)
                   for name, batch, shape, ksize, cout, padding in rows}}


def minidl_times(rows, xp, sync, variants, repeat):
    """{layer: {label: ms}} for each minidl kernel set and the gemm floor, plus the layer's
    peak of CuPy's memory pool on the GPU ('gpu pool MB')."""
    times = {}
    for name, *row in rows:
        if xp is not np:
            xp.get_default_memory_pool().free_all_blocks()
        times[name] = {}
        for label, impl in variants:
            if impl is not None:
                kernels.set_cpu_kernels(impl)
            times[name][label] = median_ms(minidl_step(xp, *row), repeat, sync)
        kernels.set_cpu_kernels(None)
        times[name]['gemm floor'] = median_ms(gemm_floor_step(xp, *row), repeat, sync)
        if xp is not np:  # the pool keeps every block it ever needed: its peak
            times[name]['gpu pool MB'] = xp.get_default_memory_pool().total_bytes() / 2**20
    return times


def ratio_cell(ratios):
    """The median of per-round ratios, with their range when there are several rounds."""
    text = f'{statistics.median(ratios):.2f}'
    return text if len(ratios) == 1 else f'{text} ({min(ratios):.2f}-{max(ratios):.2f})'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cpu', 'gpu'), default='cpu',
                        help='where the convolutions run (default: %(default)s)')
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed runs per cell, after a warm-up; the cell is their median '
                             '(default: %(default)s)')
    parser.add_argument('--rounds', type=int, default=1,
                        help='time the whole table this many times, PyTorch and minidl in turn; '
                             'cells are medians over rounds, ratios show their range '
                             '(default: %(default)s)')
    parser.add_argument('--json', help='also write the results to this JSON file (default: '
                                       'none)')
    parser.add_argument('--quick', action='store_true',
                        help='the MNIST rows only (default: every row)')
    parser.add_argument('--torch-only', action='store_true',
                        help='time PyTorch alone and print its ms per row as JSON, used '
                             'internally (default: time minidl, then PyTorch in a process of '
                             'its own)')
    args = parser.parse_args(argv)
    rows = ROWS[:3] if args.quick else ROWS
    if args.torch_only:
        print(json.dumps(torch_times(rows, args.device, args.repeat)))
        return

    if args.device == 'gpu':
        xp = cupy_module()
        sync = xp.cuda.Device().synchronize
        variants = [('minidl cuda', None)]
        device_name = xp.cuda.runtime.getDeviceProperties(0)['name'].decode()
    else:
        xp, sync = np, (lambda: None)
        variants = [('minidl reference', 'reference'), ('minidl numba', 'numba')]
        device_name = f'{platform.processor() or platform.machine()}, ' \
                      f'{__import__("os").cpu_count()} cores'
    has_torch = importlib.util.find_spec('torch') is not None
    rounds, version = [], None
    for number in range(args.rounds):
        times = minidl_times(rows, xp, sync, variants, args.repeat)
        if has_torch:
            peer = run_json(__file__, '--torch-only', '--device', args.device, '--repeat',
                            args.repeat, *(['--quick'] if args.quick else []))
            version = peer['version']
            for name, ms in peer['ms'].items():
                times[name]['torch'] = ms
        rounds.append(times)
        if args.rounds > 1:
            print(f'round {number + 1} of {args.rounds} done', flush=True)

    peer = f'torch {version} in its own process' if has_torch else 'torch not installed'
    print(f'conv forward+backward, {args.device} ({device_name}), median of {args.repeat}'
          f'{f" in each of {args.rounds} rounds" if args.rounds > 1 else ""}, {peer}')
    blas = blas_line()
    if args.device == 'cpu':
        print(blas)
    ours = [name for name, _ in variants] + ['gemm floor']
    names = ours + (['torch'] if has_torch else [])
    width = 10 if args.rounds == 1 else 17
    print(f'{"layer":18} {"batch":>5} {"input":>14} {"k":>5} {"out":>4}' +
          ''.join(f' {n + " ms":>18} {"GF/s":>6}' for n in names) +
          (' ' + ' '.join(f'{"x " + n.split()[-1]:>{width}}' for n in ours) if has_torch else ''))
    results = []
    for name, batch, shape, ksize, cout, padding in rows:
        per_round = {label: [times[name][label] for times in rounds]
                     for label in rounds[0][name]}
        row = {'layer': name, 'batch': batch, 'input': shape, 'kernel': ksize, 'filters': cout,
               'padding': padding, 'ms_rounds': per_round,
               'ms': {label: statistics.median(v) for label, v in per_round.items()}}
        work = flops(batch, shape, ksize, cout, padding)
        cells = ''.join(f' {row["ms"][n]:18.2f} {work / row["ms"][n] / 1e6:6.1f}' for n in names)
        ratios = ' ' + ' '.join(
            f'{ratio_cell([a / b for a, b in zip(per_round[n], per_round["torch"])]):>{width}}'
            for n in ours) if has_torch else ''
        memory = f'  peak GPU pool {max(per_round["gpu pool MB"]):.0f} MB' \
            if 'gpu pool MB' in per_round else ''
        print(f'{name:18} {batch:5} {str(shape):>14} {ksize[0]}x{ksize[1]:<3} {cout:4}'
              f'{cells}{ratios}{memory}')
        results.append(row)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'device': args.device, 'device_name': device_name, 'blas': blas,
                       'rounds': args.rounds,
                       'rows': results}, f, indent=1)


if __name__ == '__main__':
    main()
