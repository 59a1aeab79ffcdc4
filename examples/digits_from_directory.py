"""Train a small convnet on MNIST digits read from folders of PNG files, with augmentation.

The cats-vs-dogs workflow of the lessons on data everyone has: real MNIST digits are written as
PNG files into one folder per class (``train/0 ... train/9``, ``validation/0 ...``), then a
convnet learns from ``flow_from_directory`` batches that are randomly rotated, shifted and
zoomed on the fly, and is validated on un-augmented batches.

    python examples/digits_from_directory.py [--epochs 5] [--per-class 300]
                                             [--workdir DIR] [--batch-size 32] [--seed 0]

Without ``--workdir`` the PNG files go to a temporary folder that is removed at the end.
"""
import argparse
import os
import tempfile

import numpy as np
from PIL import Image

import mnist_convnet  # the sibling example: python puts examples/ on the path

from minidl import optimizers, random
from minidl.datasets import mnist
from minidl.preprocessing.image import ImageDataGenerator


def write_digits(folder, images, labels, per_class):
    """Save the first ``per_class`` images of each digit as ``folder/<digit>/<index>.png``."""
    for digit in range(10):
        os.makedirs(os.path.join(folder, str(digit)), exist_ok=True)
        for index in np.flatnonzero(labels == digit)[:per_class]:
            Image.fromarray(images[index]).save(os.path.join(folder, str(digit), f'{index}.png'))


def build_model():
    """The lessons' MNIST convnet (shared with mnist_convnet.py), compiled for 10 classes."""
    model = mnist_convnet.build_model()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=1e-3),
                  loss='categorical_crossentropy', metrics=['acc'])
    return model


def run(workdir, epochs, per_class, batch_size, verbose=1):
    """Write the digit folders under ``workdir``, train, and return the validation accuracy."""
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    train_dir, validation_dir = (os.path.join(workdir, part) for part in ('train', 'validation'))
    write_digits(train_dir, x_train, y_train, per_class)
    write_digits(validation_dir, x_test, y_test, max(per_class // 5, 1))

    # Augment the training digits only; validation images are just rescaled.
    augmenting = ImageDataGenerator(rescale=1 / 255, rotation_range=10, width_shift_range=0.1,
                                    height_shift_range=0.1, zoom_range=0.1)
    plain = ImageDataGenerator(rescale=1 / 255)
    common = dict(target_size=(28, 28), color_mode='grayscale', batch_size=batch_size)
    with augmenting.flow_from_directory(train_dir, **common) as train, \
            plain.flow_from_directory(validation_dir, shuffle=False, **common) as validation:
        model = build_model()
        model.fit(train, steps_per_epoch=len(train), epochs=epochs,
                  validation_data=validation, validation_steps=len(validation), verbose=verbose)
        loss, accuracy = model.evaluate(validation, steps=len(validation), verbose=0)
    print(f'validation accuracy on {validation.samples} un-augmented digits: {accuracy:.4f} '
          f'(loss {loss:.4f})')
    return accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=5,
                        help='passes over the training folders (default: %(default)s)')
    parser.add_argument('--per-class', type=int, default=300,
                        help='training images per digit, validation images a fifth of that '
                             '(default: %(default)s)')
    parser.add_argument('--workdir', default=None,
                        help='where to write the PNG folders (default: a temporary folder, '
                             'removed at the end)')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='images per gradient step (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the weights, the shuffling and the augmentation '
                             '(default: %(default)s)')
    parser.add_argument('--verbose', type=int, choices=(0, 1, 2), default=1,
                        help='0: silent, 1: a progress bar, 2: one line per epoch '
                             '(default: %(default)s)')
    args = parser.parse_args(argv)

    random.seed(args.seed)
    if args.workdir is not None:
        return run(args.workdir, args.epochs, args.per_class, args.batch_size, args.verbose)
    with tempfile.TemporaryDirectory() as workdir:
        return run(workdir, args.epochs, args.per_class, args.batch_size, args.verbose)


if __name__ == '__main__':
    main()
