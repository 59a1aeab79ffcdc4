"""Feature maps: what each channel of a convolution or pooling layer computes for one image."""
import numpy as np

from minidl.models import Model
from minidl.viz.figures import finish, new_figure


def activation_model(model, layers=None):
    """A Model from ``model``'s input to the outputs of ``layers`` (names or Layer objects;
    by default every layer that outputs feature maps, i.e. (N, H, W, C) tensors)."""
    if layers is None:
        layers = [layer for layer in model.layers if len(layer.output_shape) == 4]
    chosen = [model.get_layer(layer) if isinstance(layer, str) else layer for layer in layers]
    if not chosen:
        raise ValueError(f'{model.name} has no layer with (N, H, W, C) outputs to show')
    return Model(inputs=model.inputs, outputs=[layer.output for layer in chosen])


def feature_map_grid(maps, images_per_row=16):
    """(H, W, C) maps of one image -> one (rows*H, images_per_row*W) float image, channel by
    channel, each normalised to mean 128 and std 64 and clipped to 0..255 to be visible."""
    h, w, channels = maps.shape
    rows = -(-channels // images_per_row)
    grid = np.zeros((rows * h, images_per_row * w), np.float32)
    for c in range(channels):
        channel = maps[:, :, c] - maps[:, :, c].mean()
        channel = np.clip(channel / (channel.std() + 1e-5) * 64 + 128, 0, 255)
        row, col = divmod(c, images_per_row)
        grid[row * h:(row + 1) * h, col * w:(col + 1) * w] = channel
    return grid


def plot_feature_maps(model, image, layers=None, images_per_row=16, path=None):
    """The feature maps of ``image`` (H, W, C) in ``layers`` (default: every layer with
    feature maps), one panel per layer, one tile per channel."""
    probe = activation_model(model, layers)
    maps = probe.predict(np.asarray(image, np.float32)[None])
    maps = maps if isinstance(maps, list) else [maps]
    grids = [feature_map_grid(m[0], images_per_row) for m in maps]
    fig = new_figure(images_per_row, sum(g.shape[0] / g.shape[1] * images_per_row + 0.5
                                         for g in grids))
    axes = fig.subplots(len(grids), 1, squeeze=False)[:, 0]
    for ax, grid, output in zip(axes, grids, probe.outputs):
        ax.imshow(grid, aspect='auto', cmap='viridis')
        ax.set_title(f'{output.layer.name}: {output.shape[-1]} channels')
        ax.axis('off')
    return finish(fig, path)
