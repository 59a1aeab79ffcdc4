"""Transfer learning end to end, offline: pretrain, save, reload, freeze, extract, fine-tune.

The lessons reuse VGG16's ImageNet weights on 2,000 photos of cats and dogs. Without a weight
file the same flow runs here on MNIST, which ships with minidl:

0. pretrain a small network of VGG16's block pattern (3x3 'same' convolutions, 2x2 pools,
   fewer filters) on the digits 0-4, and save its convolutions with ``save_weights`` in
   Keras's h5 layout;
1. rebuild the base and reload the file through the loader ``VGG16(weights=path)`` uses,
   freeze it, run ``conv_base.predict`` once over 1,000 images of the digits 5-9 it never saw,
   and train a Dense classifier on those features;
2. stack the frozen base and a new classifier and train them on augmented images;
3. unfreeze the last block and fine-tune it with a small learning rate (RMSprop 1e-5);

and, for comparison, train the same network from scratch on the same 1,000 images with the
same augmentation. Validation uses 1,000 more training images of the digits 5-9 and the test
all the test images of those digits, once per stage. The script prints each stage's accuracy
next to the from-scratch one, and writes ``results.json``, ``curves.png`` (smoothed training
and validation accuracy of each stage) and ``base.h5`` (the pretrained base) into ``--out``.

With a real VGG16 or MobileNet weight file (``--weights PATH``, e.g. Keras's
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``) the same stages run on a folder of
photos (``--data DIR`` with ``train/``, ``validation/`` and optionally ``test/``, one
subfolder per class, as the lessons' cats-vs-dogs folders are); there is no pretraining then.

    python examples/transfer_learning.py [--out runs/transfer_learning] [--epochs 30]
    python examples/transfer_learning.py --weights PATH --data DIR [--image-size 150]
"""
import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from minidl import layers, models, optimizers, random, viz
from minidl.applications import MobileNet, vgg16
from minidl.datasets import mnist
from minidl.preprocessing.image import ImageDataGenerator, img_to_array, load_img
from minidl.utils import to_categorical

SMALL_BLOCKS = ((16, 2), (32, 2), (64, 3))   # VGG16's pattern, 28x28 -> 3x3x64
DIGIT_AUGMENTATION = dict(rotation_range=10, width_shift_range=0.1, height_shift_range=0.1,
                          zoom_range=0.1)     # no flips: a flipped digit is another symbol
PHOTO_AUGMENTATION = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                          shear_range=0.2, zoom_range=0.2, horizontal_flip=True)


def small_vgg(input_shape=(28, 28, 1)):
    """The convolution blocks of :data:`SMALL_BLOCKS` as a functional Model named like a
    VGG16 base, so that its weight file is laid out as Keras's VGG16 files are."""
    inputs = layers.Input(shape=input_shape)
    return models.Model(inputs, vgg16.conv_blocks(inputs, SMALL_BLOCKS), name='vgg_small')


def classifier(classes, name):
    """The Dense head the lessons put on a convolutional base: 256 ReLU units, dropout."""
    return models.Sequential([layers.Flatten(), layers.Dense(256, activation='relu'),
                              layers.Dropout(0.5), layers.Dense(classes, activation='softmax')],
                             name=name)


def compile_model(model, learning_rate):
    model.compile(optimizer=optimizers.RMSprop(learning_rate=learning_rate),
                  loss='categorical_crossentropy', metrics=['acc'])
    return model


def digits(x, y, wanted):
    """The images (N, 28, 28, 1) in [0, 1] of the digits in ``wanted``, labels one-hot over
    them (digit ``wanted[k]`` is class k)."""
    keep = np.isin(y, wanted)
    x = (x[keep].reshape(-1, 28, 28, 1) / 255).astype(np.float32)
    return x, to_categorical(np.searchsorted(wanted, y[keep]), len(wanted))


def mnist_task(args):
    """Pretrain the small base on the digits 0-4 and save it; return the loaded weight file
    and the digits 5-9 split into train / validation / test, as the lessons split their
    cats and dogs."""
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    pretrain_x, pretrain_y = digits(x_train, y_train, [0, 1, 2, 3, 4])
    pretrain_x, pretrain_y = pretrain_x[:args.pretrain_images], pretrain_y[:args.pretrain_images]
    base = small_vgg()
    net = compile_model(models.Sequential([base, classifier(5, 'digits_0_4')]), 1e-3)
    net.fit(pretrain_x, pretrain_y, epochs=args.pretrain_epochs, batch_size=64,
            verbose=args.verbose)
    first = slice(args.test_images)
    test_x, test_y = digits(x_test[first], y_test[first], [0, 1, 2, 3, 4])
    _, accuracy = net.evaluate(test_x, test_y, verbose=0)
    print(f'pretrained on {len(pretrain_x)} images of the digits 0-4: test accuracy '
          f'{accuracy:.4f} on their {len(test_x)} test images')
    weights = args.out / 'base.h5'
    base.save_weights(weights)
    x, y = digits(x_train, y_train, [5, 6, 7, 8, 9])
    n = args.images
    split = {'train': (x[:n], y[:n]), 'validation': (x[n:2 * n], y[n:2 * n]),
             'test': digits(x_test[first], y_test[first], [5, 6, 7, 8, 9])}
    return weights, split, small_vgg, DIGIT_AUGMENTATION


def load_folder(folder, size):
    """Every image in ``folder``'s class subfolders as (N, size, size, 3) in [0, 1], with
    one-hot labels in the sorted order of the subfolder names."""
    classes = sorted(path.name for path in folder.iterdir() if path.is_dir())
    if len(classes) < 2:
        raise ValueError(f'{folder} must hold one subfolder per class (two at least), '
                         f'found {classes}')
    files = [(path, label) for label, name in enumerate(classes)
             for path in sorted((folder / name).iterdir()) if path.is_file()]
    x = np.stack([img_to_array(load_img(path, target_size=(size, size))) / 255
                  for path, _ in files]).astype(np.float32)
    return x, to_categorical([label for _, label in files], len(classes))


def folder_task(args):
    """The lessons' flow on a photo folder with the weight file ``--weights`` (VGG16, or
    MobileNet when the file name says so)."""
    if args.data is None:
        raise ValueError('--weights needs --data DIR, a folder with train/ and validation/ '
                         'subfolders of class folders')
    split = {part: load_folder(args.data / part, args.image_size)
             for part in ('train', 'validation', 'test') if (args.data / part).is_dir()}
    split.setdefault('test', split['validation'])
    shape = (args.image_size, args.image_size, 3)
    if 'mobilenet' in args.weights.name.lower():
        def base():
            return MobileNet(input_shape=shape, alpha=args.alpha, include_top=False,
                             weights=None)
    else:
        def base():
            return vgg16.VGG16(include_top=False, input_shape=shape)
    return args.weights, split, base, PHOTO_AUGMENTATION


def last_block(base):
    """The name of the first layer of the base's last block: VGG's ``block<k>_conv1``, or
    MobileNet's last depthwise convolution."""
    return [layer.name for layer in base.layers
            if re.fullmatch(r'block\d+_conv1|conv_dw_\d+', layer.name)][-1]


def unfreeze_from(base, name):
    """Make ``base`` trainable from the layer ``name`` on, as the lessons fine-tune block5."""
    base.trainable = True
    reached = False
    for layer in base.layers:
        reached = reached or layer.name == name
        layer.trainable = reached


def augmented(split, augmentation, batch_size):
    """Endless augmented batches of the training images."""
    return ImageDataGenerator(**augmentation).flow(*split['train'], batch_size=batch_size,
                                                   seed=0)


def fit_augmented(model, split, augmentation, epochs, args):
    x, _ = split['train']
    return model.fit(augmented(split, augmentation, args.batch_size), epochs=epochs,
                     steps_per_epoch=-(-len(x) // args.batch_size),
                     validation_data=split['validation'], verbose=args.verbose)


def stage(name, model, history, split, test=None):
    """One row of the table: the stage's last validation and its test accuracy."""
    test_x, test_y = test or split['test']
    _, accuracy = model.evaluate(test_x, test_y, verbose=0)
    return {'stage': name, 'epochs': len(history.history['acc']),
            'val_acc': history.history['val_acc'][-1], 'test_acc': accuracy,
            'history': {key: [float(v) for v in values]
                        for key, values in history.history.items()}}


def run_stages(weights, split, build_base, augmentation, args):
    """The three transfer stages and the from-scratch run; their rows, in that order."""
    classes = split['train'][1].shape[1]
    rows = []

    random.seed(args.seed)
    scratch = compile_model(models.Sequential([build_base(), classifier(classes, 'head')]),
                            args.scratch_lr)
    history = fit_augmented(scratch, split, augmentation, 2 * args.epochs, args)
    rows.append(stage('from scratch, augmented', scratch, history, split))

    random.seed(args.seed)
    conv_base = build_base()
    vgg16.load_weight_file(conv_base, weights, strict=False)
    conv_base.trainable = False
    features = {part: (conv_base.predict(x, batch_size=args.batch_size), y)
                for part, (x, y) in split.items()}
    head = compile_model(classifier(classes, 'features_head'), args.head_lr)
    history = head.fit(*features['train'], epochs=args.epochs, batch_size=args.batch_size,
                       validation_data=features['validation'], verbose=args.verbose)
    rows.append(stage('1. features + Dense head', head, history, split, features['test']))

    model = compile_model(models.Sequential([conv_base, classifier(classes, 'head')]),
                          args.head_lr)
    model.summary()
    history = fit_augmented(model, split, augmentation, args.epochs, args)
    rows.append(stage('2. frozen base + head, augmented', model, history, split))

    unfreeze_from(conv_base, last_block(conv_base))
    compile_model(model, 1e-5)
    print(f'fine-tuning from {last_block(conv_base)}: '
          f'{sum(w.size for w in model.trainable_weights):,} trainable parameters')
    history = fit_augmented(model, split, augmentation, args.epochs, args)
    rows.append(stage('3. last block fine-tuned', model, history, split))
    return rows


def table(rows):
    """The stages' accuracies, the from-scratch row first, as aligned text."""
    lines = [f'{"stage":34} {"epochs":>6} {"val acc":>8} {"test acc":>8}']
    lines += [f'{row["stage"]:34} {row["epochs"]:6d} {row["val_acc"]:8.4f} '
              f'{row["test_acc"]:8.4f}' for row in rows]
    return '\n'.join(lines)


def plot_curves(rows, path, factor=0.8):
    """One panel per stage: training and validation accuracy per epoch, faint as measured
    and solid smoothed by :func:`minidl.viz.smooth_curve`."""
    fig = Figure(figsize=(4 * len(rows), 3.4))
    for ax, row in zip(fig.subplots(1, len(rows), sharey=True), rows):
        for key, color, label in (('acc', 'C0', 'training'), ('val_acc', 'C1', 'validation')):
            values = row['history'][key]
            epochs = range(1, len(values) + 1)
            ax.plot(epochs, values, '.', color=color, alpha=0.35)
            ax.plot(epochs, viz.smooth_curve(values, factor), '-', color=color, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(row['stage'], fontsize=10)
        ax.set_xlabel('epoch')
    fig.axes[0].set_ylabel(f'accuracy (smoothed, {factor})')
    fig.axes[0].legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path('runs/transfer_learning'),
                        help='folder for base.h5, results.json and curves.png '
                             '(default: %(default)s)')
    parser.add_argument('--images', type=int, default=1000,
                        help='training images of the digits 5-9, and as many for validation '
                             '(default: %(default)s)')
    parser.add_argument('--pretrain-images', type=int, default=None,
                        help='images of the digits 0-4 to pretrain on (default: all)')
    parser.add_argument('--test-images', type=int, default=None,
                        help='test on the digits among the first N test images (default: '
                             'all 10,000)')
    parser.add_argument('--pretrain-epochs', type=int, default=2,
                        help='(default: %(default)s)')
    parser.add_argument('--epochs', type=int, default=30,
                        help='epochs of each transfer stage; the from-scratch run gets twice '
                             'as many, the epochs of stages 2 and 3 together '
                             '(default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=20, help='(default: %(default)s)')
    parser.add_argument('--head-lr', type=float, default=1e-4,
                        help='RMSprop learning rate of stages 1 and 2 (default: %(default)s)')
    parser.add_argument('--scratch-lr', type=float, default=1e-3,
                        help='RMSprop learning rate from scratch (default: %(default)s)')
    parser.add_argument('--weights', type=Path, default=None,
                        help='a VGG16 or MobileNet weight file without its top: run the '
                             'lessons\' flow on --data instead of MNIST (default: none, MNIST)')
    parser.add_argument('--data', type=Path, default=None,
                        help='with --weights: a folder with train/, validation/ (and test/) '
                             'class subfolders (default: none)')
    parser.add_argument('--image-size', type=int, default=150,
                        help='with --weights: images are resized to this square '
                             '(default: %(default)s)')
    parser.add_argument('--alpha', type=float, default=1.0,
                        help='with a MobileNet file: its width multiplier (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='(default: %(default)s)')
    parser.add_argument('--verbose', type=int, default=2, help='fit\'s verbosity '
                        '(default: %(default)s, one line per epoch)')
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    task = folder_task(args) if args.weights else mnist_task(args)
    rows = run_stages(*task, args)
    print(table(rows))
    (args.out / 'results.json').write_text(json.dumps(
        {'command': 'python examples/transfer_learning.py ' + ' '.join(argv),
         'stages': rows}, indent=1))
    plot_curves(rows, args.out / 'curves.png')
    print(f'wrote results.json and curves.png into {args.out}')
    return rows


if __name__ == '__main__':
    main()
