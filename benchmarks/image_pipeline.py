"""Images per second through flow_from_directory at 150×150: decoding, augmentation, prefetch.

Writes a temporary folder of 300×300 JPEGs in two classes (smooth random colour fields with
noise, so they compress like photos), then times:

* the affine warp alone (one resampling of a 150×150×3 batch, the cats-vs-dogs augmentation);
* decode + resize, and decode + resize + augmentation, without and with prefetch threads;
* a simulated training loop that sleeps ``--compute-ms`` per batch: without prefetch a step
  waits for decoding, with prefetch decoding hides behind the compute.

    python benchmarks/image_pipeline.py [--images 400] [--batch-size 32] [--compute-ms 0]

``--compute-ms 0`` (the default) picks a compute time equal to the measured decoding time per
batch, the case where hiding one behind the other matters most.
"""
import argparse
import os
import tempfile
import time
import warnings

import numpy as np
from PIL import Image

from minidl.preprocessing.affine import resample, transform_matrix
from minidl.preprocessing.image import ImageDataGenerator

AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                    shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
TARGET = (150, 150)


def write_jpegs(directory, count, size=300, seed=0):
    """``count`` JPEGs of ``size``×``size`` split over the class folders 'a' and 'b'."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = os.path.join(directory, 'ab'[i % 2])
        os.makedirs(folder, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), np.float32)
        noisy = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(os.path.join(folder, f'{i}.jpg'), quality=90)


def images_per_second(iterator, batches, compute_s=0.0):
    """Throughput of ``batches`` batches from an iterator, sleeping ``compute_s`` after each."""
    next(iterator)  # warm-up: thread start, Numba compilation or cache load
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(iterator)[0])
        time.sleep(compute_s)
    return seen / (time.perf_counter() - start)


def time_warp(batch_size, repeats=5):
    """Images per second of the affine warp alone on 150×150×3 float32 images."""
    gen = ImageDataGenerator(**AUGMENTATION)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, *TARGET, 3)).astype(np.float32)
    matrices = np.stack([transform_matrix(gen.get_random_transform(x.shape[1:], seed=i), *TARGET)
                         for i in range(batch_size)])
    resample(x, matrices)  # compile or load the kernel
    start = time.perf_counter()
    for _ in range(repeats):
        resample(x, matrices)
    return repeats * batch_size / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=400,
                        help='JPEG files written and read (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='images per batch (default: %(default)s)')
    parser.add_argument('--compute-ms', type=float, default=0.0,
                        help='simulated training step per batch, 0 to match the decoding time '
                             '(default: %(default)s)')
    args = parser.parse_args(argv)
    batches = max(args.images // args.batch_size, 1)
    warnings.simplefilter('error')  # no file of ours may be skipped

    with tempfile.TemporaryDirectory() as directory:
        write_jpegs(directory, args.images)
        print(f'{args.images} JPEGs of 300x300 -> {TARGET[0]}x{TARGET[1]}, '
              f'batch size {args.batch_size}, {os.cpu_count()} CPUs')
        print(f'{"affine warp alone":<44}{time_warp(args.batch_size):8.0f} images/s')

        def flow(augment, **kwargs):
            gen = ImageDataGenerator(rescale=1 / 255, **(AUGMENTATION if augment else {}))
            return gen.flow_from_directory(directory, target_size=TARGET, class_mode='binary',
                                           batch_size=args.batch_size, seed=0, **kwargs)

        rows = [('decode+resize, no prefetch', False, dict(prefetch=0)),
                ('decode+resize+augment, no prefetch', True, dict(prefetch=0)),
                ('decode+resize+augment, prefetch 1 worker', True, dict(prefetch=2, workers=1)),
                ('decode+resize+augment, prefetch 2 workers', True, dict(prefetch=4, workers=2))]
        rates = {}
        for label, augment, kwargs in rows:
            with flow(augment, **kwargs) as it:
                rates[label] = images_per_second(it, batches)
            print(f'{label:<44}{rates[label]:8.0f} images/s')

        compute_ms = args.compute_ms or 1e3 * args.batch_size / rates[rows[1][0]]
        print(f'\nsimulated training step of {compute_ms:.0f} ms per batch '
              f'(compute alone: {1e3 * args.batch_size / compute_ms:.0f} images/s)')
        for label, kwargs in [('without prefetch', dict(prefetch=0)),
                              ('with prefetch', dict(prefetch=2))]:
            with flow(True, **kwargs) as it:
                rate = images_per_second(it, batches, compute_ms / 1e3)
            print(f'{"  decode+augment+step, " + label:<44}{rate:8.0f} images/s')


if __name__ == '__main__':
    main()
