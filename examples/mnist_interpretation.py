"""Look inside the lessons' MNIST convnet: feature maps, filter patterns and Grad-CAM.

Uses the model that ``examples/mnist_convnet.py`` saves (``runs/mnist_convnet/model.h5``);
without it, trains the same net for one epoch first (about 15 s on two cores). Writes into
``--out``:

* ``feature_maps.png``: every channel of every convolution and pooling layer for one test
  digit: edges and strokes first, then more abstract parts;
* ``filters_<layer>.png``: for the second and third convolutions, the input pattern each of
  their first 16 filters responds to most (gradient ascent from grey noise). The first
  convolution is linear in its input, so the best input for one of its filters is just that
  3x3 kernel repeated everywhere: there is nothing more to find by ascent;
* ``grad_cam.png``: for eight test digits, where the evidence for the predicted class lies,
  as seen by the second convolution (the last one's 3x3 maps are too coarse to show much).

    python examples/mnist_interpretation.py [--model runs/mnist_convnet/model.h5]
                                            [--out runs/mnist_interpretation] [--subset N]
"""
import argparse
from pathlib import Path

from matplotlib.figure import Figure

import mnist_convnet
from minidl import models, optimizers, random, viz


def trained_model(path, subset):
    """The saved model at ``path``, or the lessons' net trained for one epoch."""
    if path.exists():
        print(f'loaded {path}')
        return models.load_model(path)
    print(f'no {path}: training the net for one epoch first')
    (x_train, y_train), _ = mnist_convnet.load(subset)
    model = mnist_convnet.build_model()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=0.001),
                  loss='categorical_crossentropy', metrics=['acc'])
    model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
    return model


def plot_grad_cams(model, images, layer, path):
    """Each digit beside its Grad-CAM overlay, titled with the predicted class."""
    fig = Figure(figsize=(2 * len(images), 4.4))
    axes = fig.subplots(2, len(images), squeeze=False)
    predictions = model.predict(images).argmax(axis=1)
    for column, (digit, predicted) in enumerate(zip(images, predictions)):
        heatmap = viz.grad_cam(model, digit, layer, int(predicted))
        axes[0, column].imshow(digit[:, :, 0], cmap='gray')
        axes[0, column].set_title(f'predicted {predicted}')
        axes[1, column].imshow(viz.overlay_heatmap(digit * 255, heatmap, alpha=0.5))
        for ax in axes[:, column]:
            ax.axis('off')
    fig.suptitle(f'Grad-CAM on {layer}')
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', type=Path, default=Path('runs/mnist_convnet/model.h5'),
                        help='the model to look into, as mnist_convnet.py saves it; trained '
                             'for one epoch here when the file is missing (default: %(default)s)')
    parser.add_argument('--out', type=Path, default=Path('runs/mnist_interpretation'),
                        help='folder for the figures (default: %(default)s)')
    parser.add_argument('--subset', type=int, default=None,
                        help='train on the first N images only, when there is no saved model '
                             '(default: all 60,000)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the training and of the noise the filter patterns grow '
                             'from (default: %(default)s)')
    args = parser.parse_args(argv)

    random.seed(args.seed)
    model = trained_model(args.model, args.subset)
    _, (x_test, _) = mnist_convnet.load(args.subset)
    args.out.mkdir(parents=True, exist_ok=True)
    convolutions = [layer.name for layer in model.layers if type(layer).__name__ == 'Conv2D']

    viz.plot_feature_maps(model, x_test[0], path=args.out / 'feature_maps.png')
    for name in convolutions[1:]:
        viz.plot_filter_patterns(model, name, filters=16, value_range=(0, 1), seed=args.seed,
                                 path=args.out / f'filters_{name}.png')
    plot_grad_cams(model, x_test[:8], convolutions[1], args.out / 'grad_cam.png')
    written = sorted(path.name for path in args.out.iterdir())
    print(f'wrote {", ".join(written)} into {args.out}')
    return written


if __name__ == '__main__':
    main()
