"""Keras's image preprocessing: ``ImageDataGenerator`` and the image file helpers.

Ported Keras code only changes its import::

    from minidl.preprocessing.image import ImageDataGenerator, load_img, img_to_array

    train = ImageDataGenerator(rescale=1/255, rotation_range=40, width_shift_range=0.2,
                               height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                               horizontal_flip=True).flow_from_directory(
        'train', target_size=(150, 150), batch_size=20, class_mode='binary')
    x, y = next(train)          # x: (20, 150, 150, 3) float32, y: (20,) float32

Each image goes through the steps in Keras's order: decode and resize; random augmentation on
its raw 0..255 values (one affine warp for rotation, shifts, shear and zoom, then channel shift,
the flips and brightness); ``standardize`` (``preprocessing_function``, ``rescale``, sample-wise
then feature-wise normalisation).
"""
import warnings

import numpy as np
from PIL import Image, ImageEnhance

from minidl import random
from minidl.preprocessing.affine import FILL_MODES, resample, transform_matrix
from minidl.preprocessing.files import array_to_img, img_to_array, load_img
from minidl.preprocessing.iterators import DirectoryIterator, Iterator, NumpyArrayIterator

__all__ = ['ImageDataGenerator', 'load_img', 'img_to_array', 'array_to_img', 'Iterator',
           'NumpyArrayIterator', 'DirectoryIterator']

_EPSILON = 1e-6
ZCA_MAX_FEATURES = 16384  # values per image for zca_whitening: a 1 GB float32 matrix


class ImageDataGenerator:
    """Random augmentation and normalisation of images, batch by batch (Keras's arguments).

    Geometric augmentation, all drawn independently per image:

    * rotation_range: degrees; the angle is uniform in ``[-r, r]``.
    * width_shift_range, height_shift_range: a float below 1 is a fraction of the width/height
      (shift uniform in ``[-f, f]`` times the size); a float of 1 or more is pixels; an int
      ``n`` gives whole pixels in ``(-n, n)``, drawn as Keras draws them (``0 .. n-1`` times
      a random sign, so no shift is twice as likely as any other); a list gives one of its
      values, either sign.
    * shear_range: degrees (Keras's convention: not the shear factor).
    * zoom_range: ``z`` means ``[1 - z, 1 + z]``, or give ``[lo, hi]``; rows and columns are
      zoomed independently. As in Keras a value below 1 zooms *in* (enlarges the content).
    * horizontal_flip, vertical_flip: each flips half of the images.
    * fill_mode: how points outside the image are filled: 'nearest', 'constant' (with
      ``cval``), 'reflect' or 'wrap'. interpolation_order: 1 bilinear, 0 nearest neighbour.

    Rotation, shifts, shear and zoom compose into one affine matrix per image, applied in a
    single resampling (see :mod:`minidl.preprocessing.affine`), about Keras's centre and with
    scipy's fill modes, so that given the same parameters the images are Keras's.

    Intensity augmentation: channel_shift_range adds one offset in ``[-r, r]`` to every
    channel, clipped to the image's own value range (as Keras); brightness_range ``[lo, hi]``
    multiplies by a factor from that range, as Keras does it: through an 8-bit PIL image, so
    the values are first stretched to span 0..255 (an image of values 10..200 comes back
    spanning 0..255 times the factor) and come back whole numbers.

    Normalisation (``standardize``): preprocessing_function (one ``(H, W, C)`` image in, same
    shape out), rescale (a factor, e.g. ``1/255``), samplewise_center /
    samplewise_std_normalization (each image to mean 0 / std 1), featurewise_center /
    featurewise_std_normalization (per-channel mean and std of the data given to ``fit``),
    zca_whitening (decorrelates all the values of an image, with a matrix ``fit`` computes;
    for small images, and it turns featurewise_center on, as in Keras).
    Iterators run all of this on their prefetch threads, so a preprocessing_function must be
    safe to call from a thread (NumPy code is).

    validation_split: fraction held out; choose the part with ``subset='training'`` or
    ``'validation'`` in ``flow`` / ``flow_from_directory``.
    """

    def __init__(self, *, featurewise_center=False, samplewise_center=False,
                 featurewise_std_normalization=False, samplewise_std_normalization=False,
                 zca_whitening=False, zca_epsilon=1e-6, rotation_range=0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None,
                 shear_range=0.0, zoom_range=0.0, channel_shift_range=0.0,
                 fill_mode='nearest', cval=0.0, horizontal_flip=False, vertical_flip=False,
                 rescale=None, preprocessing_function=None, validation_split=0.0,
                 interpolation_order=1):
        if fill_mode not in FILL_MODES:
            raise ValueError(f'fill_mode must be one of {FILL_MODES}, got {fill_mode!r}')
        if interpolation_order not in (0, 1):
            raise ValueError(f'interpolation_order must be 0 (nearest) or 1 (bilinear), '
                             f'got {interpolation_order!r}')
        if not 0 <= validation_split < 1:
            raise ValueError(f'validation_split must be in [0, 1), got {validation_split!r}')
        self.featurewise_center = featurewise_center
        self.samplewise_center = samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.rotation_range = rotation_range
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.brightness_range = None if brightness_range is None else _pair(
            'brightness_range', brightness_range)
        self.shear_range = shear_range
        self.zoom_range = (_pair('zoom_range', zoom_range) if np.ndim(zoom_range)
                           else (1 - zoom_range, 1 + zoom_range))
        self.channel_shift_range = channel_shift_range
        self.fill_mode, self.cval = fill_mode, cval
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.rescale, self.preprocessing_function = rescale, preprocessing_function
        self.validation_split = validation_split
        self.interpolation_order = interpolation_order
        self.zca_whitening, self.zca_epsilon = zca_whitening, zca_epsilon
        if zca_whitening and not featurewise_center:
            warnings.warn('ImageDataGenerator: zca_whitening turns featurewise_center on '
                          '(whitening needs centred data), as in Keras', stacklevel=2)
            self.featurewise_center = True
        self.mean = self.std = self.principal_components = None

    # ----------------------------------------------------------------- iterators

    def flow(self, x, y=None, batch_size=32, shuffle=True, *, seed=None, subset=None,
             save_to_dir=None, save_prefix='', save_format='png', prefetch=2, workers=1):
        """Endless augmented batches from arrays: ``(x, y)``, or ``x`` when y is None.

        x: ``(N, H, W, C)`` images; y: ``N`` targets. save_to_dir: also write every image of
        every batch there, as ``{save_prefix}_{index}_{number}.{save_format}``. prefetch,
        workers: how many batches the background threads prepare ahead, and how many threads
        (``prefetch=0``: none). See :class:`NumpyArrayIterator`.
        """
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                  subset=subset, validation_split=self.validation_split,
                                  prefetch=prefetch, workers=workers, save_to_dir=save_to_dir,
                                  save_prefix=save_prefix, save_format=save_format)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode='rgb',
                            classes=None, class_mode='categorical', batch_size=32, shuffle=True,
                            seed=None, *, interpolation='nearest', follow_links=False,
                            subset=None, save_to_dir=None, save_prefix='', save_format='png',
                            prefetch=2, workers=1):
        """Endless augmented batches decoded from one subfolder per class.

        target_size: ``(height, width)`` every image is resized to; color_mode: 'rgb',
        'grayscale' or 'rgba'; interpolation: the Pillow resampling filter for resizing.
        Prints "Found N images belonging to K classes." as Keras does. See
        :class:`DirectoryIterator` for the labels of each class_mode and for how unreadable
        files are handled, and :meth:`flow` for save_to_dir, prefetch and workers.
        """
        return DirectoryIterator(directory, self, target_size=target_size, color_mode=color_mode,
                                 classes=classes, class_mode=class_mode, batch_size=batch_size,
                                 shuffle=shuffle, seed=seed, interpolation=interpolation,
                                 follow_links=follow_links, subset=subset,
                                 validation_split=self.validation_split, prefetch=prefetch,
                                 workers=workers, save_to_dir=save_to_dir,
                                 save_prefix=save_prefix, save_format=save_format)

    # ----------------------------------------------------------------- augmentation

    def get_random_transform(self, img_shape, seed=None):
        """Random parameters for one image of shape ``(H, W, C)``, as a Keras dict.

        Keys: theta, shear (degrees); tx, ty (row and column offsets in pixels); zx, zy (row
        and column zoom); flip_horizontal, flip_vertical; channel_shift_intensity and
        brightness (None when not drawn). seed: an int for a repeatable draw; by default the
        draw comes from ``minidl.random``.
        """
        rng = random.generator() if seed is None else np.random.default_rng(seed)
        return self._random_params(rng, img_shape[0], img_shape[1])

    def apply_transform(self, x, transform_parameters):
        """Apply a parameter dict (from ``get_random_transform`` or hand-written) to one
        ``(H, W, C)`` image; missing keys mean no change. Returns a new float32 image."""
        return self._apply(np.asarray(x, np.float32)[None], [transform_parameters])[0]

    def random_transform(self, x, seed=None):
        """One ``(H, W, C)`` image, randomly augmented (not standardised)."""
        return self.apply_transform(x, self.get_random_transform(np.shape(x), seed))

    def random_transform_batch(self, x, rng):
        """A ``(N, H, W, C)`` batch, each image augmented with its own parameters from ``rng``."""
        return self._apply(x, [self._random_params(rng, x.shape[1], x.shape[2]) for _ in x])

    def _random_params(self, rng, height, width):
        def uniform(spread):
            return rng.uniform(-spread, spread) if spread else 0.0

        lo, hi = self.zoom_range
        zx, zy = map(float, rng.uniform(lo, hi, 2)) if (lo, hi) != (1, 1) else (1.0, 1.0)
        return {
            'theta': uniform(self.rotation_range),
            'tx': _random_shift(rng, self.height_shift_range, height),
            'ty': _random_shift(rng, self.width_shift_range, width),
            'shear': uniform(self.shear_range),
            'zx': zx, 'zy': zy,
            'flip_horizontal': bool(self.horizontal_flip and rng.random() < 0.5),
            'flip_vertical': bool(self.vertical_flip and rng.random() < 0.5),
            'channel_shift_intensity': (uniform(self.channel_shift_range)
                                        if self.channel_shift_range else None),
            'brightness': (rng.uniform(*self.brightness_range)
                           if self.brightness_range is not None else None),
        }

    def _apply(self, x, params):
        """Augment a float ``(N, H, W, C)`` batch, one parameter dict per image, in Keras's
        order: the affine warp, channel shift, the flips, brightness."""
        height, width = x.shape[1:3]
        matrices = np.stack([transform_matrix(p, height, width) for p in params])
        x = resample(x, matrices, self.fill_mode, self.cval, self.interpolation_order)
        for i, p in enumerate(params):
            image = x[i]
            if p.get('channel_shift_intensity') is not None:
                image = np.clip(image + p['channel_shift_intensity'], image.min(), image.max())
            if p.get('flip_horizontal'):
                image = image[:, ::-1]
            if p.get('flip_vertical'):
                image = image[::-1]
            if p.get('brightness') is not None:
                image = _brightness(image, p['brightness'])
            x[i] = image
        return x

    # ----------------------------------------------------------------- normalisation

    def standardize(self, x):
        """Normalise one ``(H, W, C)`` image or a ``(N, H, W, C)`` batch (x is not modified).

        Feature-wise statistics must come from ``fit`` first (a ValueError says so otherwise).
        """
        x = np.asarray(x, np.float32)
        batch = x if x.ndim == 4 else x[None]
        batch = self._prepare(batch)
        if self.featurewise_center:
            batch = batch - self._fitted('mean', 'featurewise_center')
        if self.featurewise_std_normalization:
            batch = batch / (self._fitted('std', 'featurewise_std_normalization') + _EPSILON)
        if self.zca_whitening:
            whiten = self._fitted('principal_components', 'zca_whitening')
            batch = (batch.reshape(len(batch), -1) @ whiten).reshape(batch.shape)
        return batch if x.ndim == 4 else batch[0]

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Measure the per-channel mean and std used by the feature-wise options, and the
        whitening matrix of ``zca_whitening``.

        x: ``(N, H, W, C)`` sample data, raw like the images the generator will see. The
        statistics are taken after ``preprocessing_function``, ``rescale`` and the sample-wise
        steps — the stage where ``standardize`` applies them — so ``rescale=1/255`` with raw
        0..255 data is right. (Keras measures before rescaling, a classic source of wrong
        normalisation.) augment: measure on ``rounds`` randomly augmented copies of x.
        """
        x = np.asarray(x, np.float32)
        if x.ndim != 4:
            raise ValueError(f'fit expects images of shape (N, H, W, C), got shape {x.shape}')
        if augment:
            rng = random.generator() if seed is None else np.random.default_rng(seed)
            x = np.concatenate([self.random_transform_batch(x, rng) for _ in range(rounds)])
        x = self._prepare(x)
        self.mean = x.mean(axis=(0, 1, 2)).reshape(1, 1, -1)
        self.std = x.std(axis=(0, 1, 2)).reshape(1, 1, -1)
        if self.zca_whitening:
            self.principal_components = self._zca_matrix(x)
        return self

    def _zca_matrix(self, x):
        """The (D, D) ZCA whitening matrix of images x, D = H*W*C values per image.

        With the covariance ``S = U diag(s) U^T`` of the centred (and, if asked, scaled) data,
        ``U diag(1 / sqrt(s + zca_epsilon)) U^T`` decorrelates the values and gives each unit
        variance, while staying as close as possible to the original image (Bell & Sejnowski,
        1997). It is D x D, so it suits small images: 32x32x3 gives a 37 MB matrix.
        """
        features = x[0].size
        if features > ZCA_MAX_FEATURES:
            raise ValueError(f'zca_whitening needs a {features} x {features} matrix for images of '
                             f'shape {x.shape[1:]} ({4 * features ** 2 / 2**30:.1f} GB); it is '
                             f'meant for images of at most {ZCA_MAX_FEATURES} values, such as '
                             f'32x32x3')
        centred = x - self.mean  # the data as standardize hands it to the whitening
        if self.featurewise_std_normalization:
            centred = centred / (self.std + _EPSILON)
        flat = centred.reshape(len(x), -1).astype(np.float64)
        u, s, _ = np.linalg.svd(flat.T @ flat / len(flat))
        return ((u / np.sqrt(s + self.zca_epsilon)) @ u.T).astype(np.float32)

    def _prepare(self, batch):
        """The data-independent part of ``standardize``, on a ``(N, H, W, C)`` batch."""
        if self.preprocessing_function is not None:
            batch = np.stack([np.asarray(self.preprocessing_function(image), np.float32)
                              for image in batch])
        if self.rescale:
            batch = batch * np.float32(self.rescale)
        if self.samplewise_center:
            batch = batch - batch.mean(axis=(1, 2, 3), keepdims=True)
        if self.samplewise_std_normalization:
            batch = batch / (batch.std(axis=(1, 2, 3), keepdims=True) + _EPSILON)
        return batch

    def _fitted(self, name, option):
        value = getattr(self, name)
        if value is None:
            raise ValueError(f'{option}=True needs statistics of the training data: call '
                             f'fit(x_train) on this ImageDataGenerator first')
        return value


def _pair(name, value):
    if np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f'{name} must be a float or a pair [lower, upper], got {value!r}')
    return float(value[0]), float(value[1])


def _random_shift(rng, spec, size):
    """One random shift in pixels for a Keras width/height_shift_range ``spec``.

    As Keras draws it: an int ``n`` or a list gives a value (``0 .. n-1``, or one of the list)
    times a random sign, so 0 comes twice as often as any other value; a float is uniform in
    ``[-spec, spec]``. Values below 1 are fractions of the size.
    """
    if not np.any(spec):
        return 0.0
    if isinstance(spec, (int, np.integer)) or np.ndim(spec):
        shift = rng.choice(spec) * rng.choice([-1, 1])
    else:
        shift = rng.uniform(-spec, spec)
    return float(shift * size if np.max(spec) < 1 else shift)


def _brightness(image, factor):
    """Keras's brightness change of one ``(H, W, C)`` image, through PIL as Keras does it: the
    values stretched to span 0..255 and cut to 8 bits (``array_to_img``), scaled by
    ``ImageEnhance.Brightness`` (which clips to 0..255 and truncates), and back to float32."""
    if image.shape[-1] not in (1, 3, 4):
        raise ValueError(f'ImageDataGenerator: brightness_range needs images with 1, 3 or 4 '
                         f'channels (it goes through PIL, as in Keras), got shape {image.shape}')
    x = image.astype(np.float32) - image.min()
    top = x.max()
    if top != 0:
        x /= top
    x *= 255
    pixels = x.astype(np.uint8)
    picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels)
    return img_to_array(ImageEnhance.Brightness(picture).enhance(factor))
