"""Filter visualisation: the input a filter responds to most, found by gradient ascent."""
import numpy as np

from minidl.autograd import Tensor, frozen
from minidl.backends import to_device
from minidl.viz.features import activation_model
from minidl.viz.figures import finish, new_figure


def deprocess_image(x):
    """A float image -> uint8 for display: centred, scaled to std 0.1 around 0.5, clipped."""
    x = np.asarray(x, np.float64)
    x = (x - x.mean()) / (x.std() + 1e-5) * 0.1 + 0.5
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def filter_pattern(model, layer, filter_index, steps=40, step=None, value_range=(0, 255),
                   seed=None, deprocess=True):
    """The input that makes filter ``filter_index`` of ``layer`` (a name or Layer) respond
    most, by gradient ascent on its mean response. The response is taken before the layer's
    activation: where a ReLU keeps the filter silent it passes no gradient, and the ascent
    would never leave its starting noise.

    Starts from grey noise in the middle of ``value_range`` (the range of the inputs the model
    was trained on) and takes ``steps`` steps of size ``step`` (default: 1/255 of the range)
    along the gradient divided by its RMS. Returns the uint8 image of
    :func:`deprocess_image`, or the raw input (1, H, W, C) with ``deprocess=False``.
    """
    probe = activation_model(model, [layer])
    low, high = value_range
    step = (high - low) / 255 if step is None else step
    rng = np.random.default_rng(seed)
    x = (low + high) / 2 + (high - low) * 0.08 * (rng.random((1,) + model.input_shape[1:]) - 0.5)
    x = x.astype(np.float32)
    with frozen(model.weights):  # a backward pass then computes the input's gradient only
        for _ in range(steps):
            image = Tensor(to_device(x, model.device), requires_grad=True)
            probe.call_logits(image)[..., filter_index].mean().backward()
            gradient = to_device(image.grad, 'cpu')
            x += step * gradient / (np.sqrt(np.mean(gradient ** 2)) + 1e-5)
    return deprocess_image(x[0]) if deprocess else x


def plot_filter_patterns(model, layer, filters=16, images_per_row=8, path=None, **ascent):
    """A grid of :func:`filter_pattern` images for the first ``filters`` filters of ``layer``
    (or for the given list of filter indices); ``ascent`` goes to filter_pattern."""
    indices = list(range(filters)) if isinstance(filters, int) else list(filters)
    rows = -(-len(indices) // images_per_row)
    fig = new_figure(1.5 * images_per_row, 1.5 * rows + 0.5)
    axes = fig.subplots(rows, images_per_row, squeeze=False)
    for ax in axes.ravel():
        ax.axis('off')
    for ax, index in zip(axes.ravel(), indices):
        pattern = filter_pattern(model, layer, index, **ascent)
        ax.imshow(pattern[:, :, 0] if pattern.shape[2] == 1 else pattern,
                  cmap='gray' if pattern.shape[2] == 1 else None)
        ax.set_title(str(index), fontsize=8)
    name = layer if isinstance(layer, str) else layer.name
    fig.suptitle(f'patterns that {name}\'s filters respond to')
    return finish(fig, path)
