"""Keras 3's preprocessing layers, which run inside a model (Keras 3's ``layers/preprocessing``).

Rescaling, Resizing and CenterCrop act always and are differentiable. The augmentation layers
RandomFlip, RandomRotation, RandomZoom, RandomTranslation and RandomContrast change images only
in training and are the identity at inference, as in Keras, so ``predict`` and ``evaluate``
see the images unchanged (called on their own, they augment unless ``training=False``)::

    augment = Sequential([layers.RandomFlip('horizontal'), layers.RandomRotation(0.1),
                          layers.RandomZoom(0.2)])

Each augmentation layer draws its parameters with ``get_random_transformation(shape)`` and
applies them with ``transform_images(images, transformation)``; the dicts use Keras's keys
(``angle``, ``height_zoom``, ``translations``, ``flips``, ``contrast_factor``), so the same
parameters give Keras's images. The warps read outside the image as Keras 3 does (each tap
extended by ``fill_mode``; see :func:`minidl.preprocessing.affine.resample` with ``grid``).
"""
import math
import numbers

import numpy as np

import minidl.functions as F
from minidl import random
from minidl.autograd import Tensor, is_grad_enabled
from minidl.backends import get_array_module, to_device
from minidl.layers import arguments
from minidl.layers.base import Layer
from minidl.preprocessing.affine import FILL_MODES, resample

_INTERPOLATIONS = ('bilinear', 'nearest')


class Rescaling(Layer):
    """``x * scale + offset`` (``scale=1/255`` maps 0..255 to 0..1), in training and at
    inference; any input shape."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = _number(self, 'scale', scale), _number(self, 'offset', offset)

    def call(self, x, training=False):
        return x * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), 'scale': self.scale, 'offset': self.offset}


class Resizing(Layer):
    """Resize ``(N, H, W, C)`` images to ``(N, height, width, C)``, as Keras 3 does with
    half-pixel centres: output pixel ``d`` reads input ``(d + 0.5) * H / height - 0.5``.

    interpolation: 'bilinear' or 'nearest'. crop_to_aspect_ratio: first cut the largest
    centred box of the target's aspect ratio (no distortion, the borders are lost);
    pad_to_aspect_ratio: first pad both sides with ``fill_value`` instead. Differentiable:
    each output is a fixed weighted sum of inputs, done as two matrix products.
    """

    expected_ndim = 4

    def __init__(self, height, width, interpolation='bilinear', crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode='constant', fill_value=0.0,
                 antialias=False, **kwargs):
        super().__init__(**kwargs)
        self.height = arguments.count(self, 'height', height)
        self.width = arguments.count(self, 'width', width)
        self.interpolation = _choice(self, 'interpolation', interpolation, _INTERPOLATIONS)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError(f'{self.name} (Resizing): only one of crop_to_aspect_ratio and '
                             f'pad_to_aspect_ratio can be True')
        _choice(self, 'fill_mode', fill_mode, ('constant',))
        if antialias:
            raise ValueError(f'{self.name} (Resizing): antialias=True is not supported '
                             f'(Keras 3 defaults to False, which minidl computes)')
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value = fill_mode, _number(self, 'fill_value', fill_value)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def call(self, x, training=False):
        height, width = x.shape[1:3]
        if self.crop_to_aspect_ratio:
            x = _centre_box(x, self.height, self.width)
        elif self.pad_to_aspect_ratio:
            top = (max(height, width * self.height // self.width) - height) // 2
            left = (max(width, height * self.width // self.height) - width) // 2
            x = F.pad(x, ((0, 0), (top, top), (left, left), (0, 0)), value=self.fill_value)
        return resize(x, self.height, self.width, self.interpolation)

    def get_config(self):
        return {**super().get_config(), 'height': self.height, 'width': self.width,
                'interpolation': self.interpolation,
                'crop_to_aspect_ratio': self.crop_to_aspect_ratio,
                'pad_to_aspect_ratio': self.pad_to_aspect_ratio, 'fill_mode': self.fill_mode,
                'fill_value': self.fill_value, 'antialias': False}


class CenterCrop(Layer):
    """The centred ``(height, width)`` part of ``(N, H, W, C)`` images (the extra row or
    column of an odd difference is cut at the bottom/right). An image smaller than that is,
    as in Keras, cut to the target's aspect ratio and resized (bilinear) instead."""

    expected_ndim = 4

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height = arguments.count(self, 'height', height)
        self.width = arguments.count(self, 'width', width)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def call(self, x, training=False):
        height, width = x.shape[1:3]
        if height >= self.height and width >= self.width:
            top, left = (height - self.height) // 2, (width - self.width) // 2
            return x[:, top:top + self.height, left:left + self.width]
        return resize(_centre_box(x, self.height, self.width), self.height, self.width,
                      'bilinear')

    def get_config(self):
        return {**super().get_config(), 'height': self.height, 'width': self.width}


def resize(x, height, width, interpolation='bilinear'):
    """``(N, H, W, C)`` -> ``(N, height, width, C)`` as Keras 3 (half-pixel centres):
    ``rows @ x @ cols^T`` with the interpolation matrices of :func:`_interpolation_matrix`."""
    n, h, w, c = x.shape
    rows = _interpolation_matrix(h, height, interpolation, x.dtype, get_array_module(x.data))
    cols = _interpolation_matrix(w, width, interpolation, x.dtype, get_array_module(x.data))
    x = (Tensor(rows) @ x.reshape(n, h, w * c)).reshape(n * height, w, c)
    return (Tensor(cols) @ x).reshape(n, height, width, c)


def _interpolation_matrix(size, out, interpolation, dtype, xp):
    """The ``(out, size)`` matrix whose row ``d`` holds the weights output pixel ``d`` gives
    the input pixels: PyTorch's ``interpolate`` (Keras 3's torch backend), bilinear without
    aligned corners (source clamped at 0) or 'nearest-exact', the source computed in the
    images' precision as PyTorch does (it decides which pixel a nearest tie reads)."""
    real = np.float32 if np.dtype(dtype) == np.float32 else np.float64
    weights = np.zeros((out, size))
    centres = np.arange(out, dtype=real) + real(0.5)
    scale = real(size) / real(out)
    if interpolation == 'nearest':
        nearest = np.minimum(np.floor(centres * scale).astype(int), size - 1)
        weights[np.arange(out), nearest] = 1
    else:
        source = np.maximum(centres * scale - real(0.5), 0)
        first = source.astype(int)
        upper = source - first
        np.add.at(weights, (np.arange(out), first), 1 - upper)
        np.add.at(weights, (np.arange(out), np.minimum(first + 1, size - 1)), upper)
    return xp.asarray(weights.astype(dtype))


def _centre_box(x, height, width):
    """The largest centred part of ``x`` with the aspect ratio of ``height x width`` (Keras's
    ``smart_resize`` box)."""
    h, w = x.shape[1:3]
    box_h = max(min(h, int(w * height / width)), 1)
    box_w = max(min(w, int(h * width / height)), 1)
    top, left = (h - box_h) // 2, (w - box_w) // 2
    return x[:, top:top + box_h, left:left + box_w]


# ------------------------------------------------------------------------------ augmentation


class _Augmentation(Layer):
    """An augmentation layer: in training, new random parameters for every batch
    (``get_random_transformation``) applied by ``transform_images``; the identity otherwise.

    seed: an int for the layer's own repeatable stream; by default it draws from
    ``minidl.random`` (so ``minidl.random.seed(n)`` makes it repeatable).
    """

    expected_ndim = 4

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = None if seed is None else arguments.integer(self, 'seed', seed)
        self._own = None if seed is None else np.random.default_rng(seed)

    def _rng(self):
        return self._own if self._own is not None else random.generator()

    def __call__(self, x, training=None):
        """As in Keras 3, a layer called on its own, or in a model called on its own, augments
        unless told ``training=False`` (how lessons look at augmented images: ``training``
        None means "not said"); ``fit`` augments, ``predict`` and ``evaluate`` do not."""
        return super().__call__(x, True if training is None else training)

    def call(self, x, training=False):
        if not training:
            return x
        return self.transform_images(x, self.get_random_transformation(x.shape))

    def get_config(self):
        return {**super().get_config(), 'seed': self.seed}


class RandomFlip(_Augmentation):
    """Flip each image with probability 1/2: mode 'horizontal' (left-right), 'vertical' or
    'horizontal_and_vertical' (as in Keras, one draw per image decides both flips)."""

    MODES = ('horizontal', 'vertical', 'horizontal_and_vertical')

    def __init__(self, mode='horizontal_and_vertical', seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.mode = _choice(self, 'mode', mode, self.MODES)

    def get_random_transformation(self, shape):
        """``{'flips': (N, 1, 1, 1) bools}``."""
        return {'flips': self._rng().uniform(size=(shape[0], 1, 1, 1)) <= 0.5}

    def transform_images(self, images, transformation):
        images = _as_tensor(images)
        flipped = images
        if self.mode != 'vertical':
            flipped = flipped[:, :, ::-1]
        if self.mode != 'horizontal':
            flipped = flipped[:, ::-1]
        chosen = np.asarray(transformation['flips'], images.dtype)
        chosen = to_device(chosen, images.device)
        return images * (1 - chosen) + flipped * chosen

    def get_config(self):
        return {**super().get_config(), 'mode': self.mode}


class RandomContrast(_Augmentation):
    """``(x - mean) * f + mean`` per image and channel (the mean over height and width),
    clipped to ``value_range``, with ``f`` uniform in ``[1 - lower, 1 + upper]``.

    factor: ``(lower, upper)``, each in [0, 1]; a number ``f`` means ``(0, f)`` as in Keras
    3.15, whose ``RandomContrast(0.2)`` raises the contrast by up to 20% and never lowers it.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor(self, 'factor', factor, (0.0, 1.0))
        if np.ndim(value_range) != 1 or len(value_range) != 2 or \
                not value_range[0] < value_range[1]:
            raise ValueError(f'{self.name} (RandomContrast): value_range must be a pair '
                             f'(low, high) with low < high, got {value_range!r}')
        self.value_range = tuple(float(v) for v in value_range)

    def get_random_transformation(self, shape):
        """``{'contrast_factor': (N, 1, 1, 1) floats}``."""
        lower, upper = self.factor
        return {'contrast_factor': self._rng().uniform(1 - lower, 1 + upper,
                                                       (shape[0], 1, 1, 1))}

    def transform_images(self, images, transformation):
        images = _as_tensor(images)
        factor = to_device(np.asarray(transformation['contrast_factor'], images.dtype),
                           images.device)
        mean = images.mean(axis=(1, 2), keepdims=True)
        return F.clip((images - mean) * factor + mean, *self.value_range)

    def get_config(self):
        return {**super().get_config(), 'factor': list(self.factor),
                'value_range': list(self.value_range)}


class _Warp(_Augmentation):
    """An affine augmentation: one output-to-input matrix per image, one resampling (see
    :mod:`minidl.preprocessing.affine`). It passes no gradient to its input: like Keras's
    augmentation it belongs at the input of a model, before any trainable layer."""

    def __init__(self, fill_mode='reflect', interpolation='bilinear', seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.fill_mode = _choice(self, 'fill_mode', fill_mode, FILL_MODES)
        self.interpolation = _choice(self, 'interpolation', interpolation, _INTERPOLATIONS)
        self.fill_value = _number(self, 'fill_value', fill_value)

    def transform_images(self, images, transformation):
        images = _as_tensor(images)
        if images.requires_grad and is_grad_enabled():
            raise ValueError(f'{self.name} ({type(self).__name__}) passes no gradient to its '
                             f'input, which needs one here: put augmentation layers at the '
                             f'input of the model, before the layers that learn')
        height, width = images.shape[1:3]
        matrices = self._matrices(transformation, height, width)
        order = 1 if self.interpolation == 'bilinear' else 0
        warped = resample(to_device(images.data, 'cpu'), matrices, self.fill_mode,
                          self.fill_value, order, grid=True)
        return Tensor(to_device(warped, images.device))

    def get_config(self):
        return {**super().get_config(), 'fill_mode': self.fill_mode,
                'interpolation': self.interpolation, 'fill_value': self.fill_value}


class RandomRotation(_Warp):
    """Rotate each image about its centre ``((H-1)/2, (W-1)/2)`` by an angle uniform in
    ``[lower, upper]`` turns: factor ``0.1`` means up to 36° either way (counter-clockwise
    for positive angles as displayed), ``(-0.1, 0.3)`` from -36° to 108°."""

    def __init__(self, factor, fill_mode='reflect', interpolation='bilinear', seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _factor(self, 'factor', factor, (-1.0, 1.0))

    def get_random_transformation(self, shape):
        """``{'angle': (N,) degrees}``."""
        lower, upper = self.factor
        return {'angle': self._rng().uniform(lower * 360, upper * 360, shape[0])}

    def _matrices(self, transformation, height, width):
        angle = np.deg2rad(np.asarray(transformation['angle'], np.float64).reshape(-1))
        cos, sin = np.cos(angle), np.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # Keras's column = a0 col + a1 row + a2, row = b0 col + b1 row + b2, in (row, col).
        return _matrix([cos, sin, cy - cx * sin - cy * cos], [-sin, cos, cx - cx * cos + cy * sin])

    def get_config(self):
        return {**super().get_config(), 'factor': list(self.factor)}


class RandomZoom(_Warp):
    """Zoom each image about its centre: each axis reads ``1 + u`` times as far from the
    centre, ``u`` uniform in ``[lower, upper]`` (a positive factor zooms *out*, as in Keras
    3). height_factor: a number ``f`` (``[-f, f]``) or ``(lower, upper)``, each in (-1, 1];
    width_factor: the same for columns, or None to zoom both axes by the same amount."""

    def __init__(self, height_factor, width_factor=None, fill_mode='reflect',
                 interpolation='bilinear', seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _factor(self, 'height_factor', height_factor, (-1.0, 1.0),
                                     open_low=True, symmetric=True)
        self.width_factor = None if width_factor is None else _factor(
            self, 'width_factor', width_factor, (-1.0, 1.0), open_low=True, symmetric=True)

    def get_random_transformation(self, shape):
        """``{'height_zoom': (N, 1), 'width_zoom': (N, 1)}``: the scale of each axis."""
        rng, size = self._rng(), (shape[0], 1)
        height_zoom = rng.uniform(1 + self.height_factor[0], 1 + self.height_factor[1], size)
        width_zoom = height_zoom if self.width_factor is None else rng.uniform(
            1 + self.width_factor[0], 1 + self.width_factor[1], size)
        return {'height_zoom': height_zoom, 'width_zoom': width_zoom}

    def _matrices(self, transformation, height, width):
        zy = np.asarray(transformation['height_zoom'], np.float64).reshape(-1)
        zx = np.asarray(transformation['width_zoom'], np.float64).reshape(-1)
        zeros = np.zeros_like(zy)
        return _matrix([zy, zeros, (height - 1) / 2 * (1 - zy)],
                       [zeros, zx, (width - 1) / 2 * (1 - zx)])

    def get_config(self):
        return {**super().get_config(), 'height_factor': list(self.height_factor),
                'width_factor': None if self.width_factor is None else list(self.width_factor)}


class RandomTranslation(_Warp):
    """Move each image by a fraction of its size, uniform in ``[lower, upper]`` per axis
    (positive: down / right). height_factor, width_factor: a number ``f`` (``[-f, f]``) or
    ``(lower, upper)``, each in [-1, 1]."""

    def __init__(self, height_factor, width_factor, fill_mode='reflect',
                 interpolation='bilinear', seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _factor(self, 'height_factor', height_factor, (-1.0, 1.0),
                                     symmetric=True)
        self.width_factor = _factor(self, 'width_factor', width_factor, (-1.0, 1.0),
                                    symmetric=True)

    def get_random_transformation(self, shape):
        """``{'translations': (N, 2)}``: the shift in pixels, columns first, as Keras."""
        rng, n = self._rng(), shape[0]
        rows = rng.uniform(*self.height_factor, n) * shape[1]
        cols = rng.uniform(*self.width_factor, n) * shape[2]
        return {'translations': np.stack([cols, rows], axis=1)}

    def _matrices(self, transformation, height, width):
        shifts = np.asarray(transformation['translations'], np.float64).reshape(-1, 2)
        ones, zeros = np.ones(len(shifts)), np.zeros(len(shifts))
        return _matrix([ones, zeros, -shifts[:, 1]], [zeros, ones, -shifts[:, 0]])

    def get_config(self):
        return {**super().get_config(), 'height_factor': list(self.height_factor),
                'width_factor': list(self.width_factor)}


def _matrix(row, col):
    """``(N, 3, 3)`` output-to-input matrices from the coefficients (each ``(N,)`` or a
    number) of the source row and source column."""
    n = max(np.size(v) for v in row + col)
    parts = [np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in row + col]
    out = np.zeros((n, 3, 3))
    out[:, 0], out[:, 1] = np.stack(parts[:3], 1), np.stack(parts[3:], 1)
    out[:, 2, 2] = 1
    return out


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, np.float32))


def _number(owner, name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not math.isfinite(value):
        raise ValueError(f'{owner.name} ({type(owner).__name__}): {name} must be a finite '
                         f'number, got {value!r}')
    return float(value)


def _choice(owner, name, value, choices):
    if value not in choices:
        raise ValueError(f'{owner.name} ({type(owner).__name__}): {name} must be one of '
                         f'{choices}, got {value!r}')
    return value


def _factor(owner, name, factor, bounds, open_low=False, symmetric=False):
    """Keras 3's factor argument as ``(lower, upper)``: a pair (sorted), or a number ``f``
    meaning ``(-f, f)`` clipped to ``bounds`` (so ``(0, f)`` for bounds starting at 0).
    ``symmetric``: every value must lie in ``bounds`` (open at the bottom if ``open_low``),
    as Keras checks zoom and translation; otherwise the pair only has to overlap them."""
    low, high = bounds
    pair = isinstance(factor, (tuple, list))
    values = list(factor) if pair else [factor]
    if (pair and len(values) != 2) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        values = None
    elif symmetric:
        if any(v > high or v < low or (open_low and v == low) for v in values):
            values = None
    elif pair and (values[0] > high or values[1] < low):
        values = None
    elif not pair and not low <= values[0] <= high:
        values = None
    if values is None:
        raise ValueError(f'{owner.name} ({type(owner).__name__}): {name} must be a number or '
                         f'a pair of numbers in [{low:g}, {high:g}], got {factor!r}')
    if pair:
        return tuple(sorted(float(v) for v in values))
    return max(-abs(float(factor)), low), abs(float(factor))
