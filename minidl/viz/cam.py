"""Class activation maps (Grad-CAM, Selvaraju et al. 2017): where in the image the evidence
for a class is, as seen by the last convolutional layer."""
import numpy as np
from matplotlib import colormaps
from PIL import Image

from minidl import backend as K


def grad_cam(model, image, layer, class_index=None):
    """Heatmap (h, w) in [0, 1] over the feature maps of ``layer`` (a name or Layer; usually
    the last convolution) for ``class_index`` (default: the predicted class) of ``image``
    (H, W, C).

    Each channel of the layer's output is weighted by the mean gradient of the class score
    with respect to it (how much that channel matters for the class), the weighted channels
    are summed, and negative evidence is cut (ReLU). The gradient of the top score is the
    predicted class's.
    """
    maps = (model.get_layer(layer) if isinstance(layer, str) else layer).output
    score = K.max(model.output, axis=-1) if class_index is None else \
        model.output[:, class_index]
    channel_weights = K.mean(K.gradients(score, maps)[0], axis=(0, 1, 2))
    evidence = K.function([model.input], K.sum(maps[0] * channel_weights, axis=-1))
    heatmap = np.maximum(evidence([np.asarray(image, np.float32)[None]]), 0)
    return heatmap / heatmap.max() if heatmap.max() > 0 else heatmap


def overlay_heatmap(image, heatmap, alpha=0.4, colormap='jet'):
    """``image`` (H, W, C), values 0..255, with ``heatmap`` resized to it and drawn on top
    in ``colormap`` at opacity ``alpha``: an (H, W, 3) uint8 picture."""
    image = np.asarray(image, np.float32)
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    resized = Image.fromarray(np.uint8(255 * np.asarray(heatmap))).resize(
        (image.shape[1], image.shape[0]), Image.BILINEAR)
    colours = colormaps[colormap](np.asarray(resized) / 255.0)[:, :, :3] * 255
    return np.uint8(np.clip((1 - alpha) * rgb + alpha * colours, 0, 255))
