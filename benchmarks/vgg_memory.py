"""Peak memory of one VGG16 forward + backward, and the size of the conv column tiles.

Builds ``VGG16(include_top=False)`` on 150x150x3 inputs (the lessons' transfer-learning
setting), runs a forward pass and the backward pass of the sum of its output on a batch, and
prints

* the peak of the arrays alive at once (NumPy reports its allocations to ``tracemalloc``),
  next to the size of the activations the graph must keep for backward;
* the peak resident set of the process (``getrusage``), which also counts the interpreter,
  the libraries and the allocator's slack;
* the largest column matrix any convolution built, against the CPU's ``conv.COLUMN_TILING``:
  columns up to ``keep`` bytes, or up to ``kernel_reads`` times the layer's kernel, are built
  whole and kept for backward, larger ones are built in tiles of about ``tile`` bytes (blocks
  1-4 at batch 8 are).

    python benchmarks/vgg_memory.py [--batch-size 8] [--size 150]
"""
import argparse
import resource
import time
import tracemalloc

import numpy as np

from minidl import Tensor, random
from minidl.applications import VGG16
from minidl.backends import kernels
from minidl.functions import conv

MB = 2**20


def largest_columns():
    """Wrap ``kernels.im2col`` so that it records the largest column matrix it returns."""
    im2col, largest = kernels.im2col, [0]

    def recording(*args, **kwargs):
        cols = im2col(*args, **kwargs)
        largest[0] = max(largest[0], cols.nbytes)
        return cols
    kernels.im2col = recording
    return largest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch-size', type=int, default=8,
                        help='images in the batch (default: %(default)s)')
    parser.add_argument('--size', type=int, default=150,
                        help='height and width of the input images (default: %(default)s)')
    args = parser.parse_args(argv)

    random.seed(0)
    model = VGG16(include_top=False, input_shape=(args.size, args.size, 3))
    x = Tensor(np.random.default_rng(0).random((args.batch_size, args.size, args.size, 3),
                                               dtype=np.float32))
    largest = largest_columns()
    weights = sum(w.data.nbytes for w in model.weights)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    start = time.perf_counter()
    model(x, training=True).sum().backward()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    activations = sum(4 * args.batch_size * np.prod(layer.output_shape[1:])
                      for layer in model.layers[1:])
    print(f'VGG16 (no top), {args.size}x{args.size}x3, batch {args.batch_size}: forward + '
          f'backward in {seconds:.1f} s')
    print(f'  weights (float32)                   {weights / MB:8.1f} MB')
    print(f'  layer outputs (float32, all layers) {activations / MB:8.1f} MB')
    print(f'  peak of live arrays (tracemalloc)   {peak / MB:8.1f} MB')
    print(f'  peak RSS of the process             {rss_peak:8.1f} MB '
          f'({rss_before:.1f} MB before the pass)')
    keep, tile, kernel_reads = conv.COLUMN_TILING['cpu']
    kernel = max(w.data.nbytes for w in model.weights if w.data.ndim == 4)
    bound = max(keep, tile, kernel_reads * kernel)
    verdict = 'within' if largest[0] <= bound else 'OVER'
    print(f'  largest column matrix               {largest[0] / MB:8.1f} MB '
          f'({verdict} the tiling: kept up to {keep / MB:.0f} MB or {kernel_reads} kernels, '
          f'{bound / MB:.0f} MB here; tiles of {tile / MB:.0f} MB)')


if __name__ == '__main__':
    main()
