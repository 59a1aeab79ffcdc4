"""Endless batch iterators over arrays and over folders of images, as Keras's.

Every batch is a pure function of ``(seed, step)``: step ``k`` is batch ``k % len(it)`` of epoch
``k // len(it)``; the epoch's shuffle and each batch's augmentation draw from random streams
keyed by ``(seed, epoch)`` and ``(seed, epoch, batch)``. That is what lets background threads
prepare batches in any order and still give exactly the batches a plain loop would, and what
makes the same seed give the same augmented batches on every run.
"""
import math
import os
import threading
import warnings

import numpy as np

from minidl import random
from minidl.utils import atomic_write
from minidl.preprocessing.files import (CHANNELS, DECODE_ERRORS, INTERPOLATIONS, array_to_img,
                                        check_target_size, find_class_images, img_to_array,
                                        load_img)
from minidl.preprocessing.prefetch import Prefetcher

CLASS_MODES = ('categorical', 'binary', 'sparse', 'input', None)
SUBSETS = ('training', 'validation')
_PURPOSES = ('order', 'batch')


class Iterator:
    """Batches of ``n`` samples forever, reshuffled each epoch; subclasses load the samples.

    ``len(it)`` is the number of batches per epoch (the last may be short); ``next(it)`` gives
    the next batch, prepared ahead by ``workers`` background threads, at most ``prefetch``
    batches ahead (``prefetch=0``: prepared on the spot, no thread). ``it[i]`` is batch ``i``
    of the current epoch. ``close()`` (or leaving a ``with`` block, or dropping the iterator)
    stops the threads; iterating again restarts them where the stream stood.

    save_to_dir: also write every image of every batch there, as it comes out of augmentation
    and standardisation, named ``{save_prefix}_{sample index}_{random number}.{save_format}``
    like Keras's (the folder is created if needed) -- to look at what augmentation does.
    """

    def __init__(self, n, batch_size, shuffle, seed, prefetch=2, workers=1,
                 image_data_generator=None, save_to_dir=None, save_prefix='',
                 save_format='png'):
        if batch_size < 1:
            raise ValueError(f'batch_size must be at least 1, got {batch_size}')
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self._prefetcher = None
        self.seed = int(random.generator().integers(2**63)) if seed is None else int(seed)
        self.prefetch, self.workers = prefetch, workers
        self.image_data_generator = image_data_generator
        self.save_to_dir, self.save_prefix, self.save_format = save_to_dir, save_prefix, save_format
        if save_to_dir is not None:
            os.makedirs(save_to_dir, exist_ok=True)
        self._step = 0

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    @property
    def seed(self):
        """The seed every shuffle and augmentation derives from; setting it changes the stream
        (data-parallel training gives every process rank 0's)."""
        return self._seed

    @seed.setter
    def seed(self, value):
        self.close()
        self._seed, self._order = int(value), (None, None)

    @property
    def position(self):
        """The step of the endless stream that ``next()`` gives next; setting it moves there."""
        return self._step

    @position.setter
    def position(self, step):
        self.close()
        self._step = int(step)

    @property
    def epoch(self):
        """How many full epochs ``next()`` has gone through."""
        return self._step // len(self)

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self.prefetch and self._prefetcher is None:
                self._prefetcher = Prefetcher(self.batch_at, start=self._step, depth=self.prefetch,
                                              workers=self.workers)
            step, self._step = self._step, self._step + 1
            batch = next(self._prefetcher) if self.prefetch else self.batch_at(step)
            if batch_size_of(batch):  # empty when every file of the batch was unreadable
                return batch

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f'batch index {index} out of range: an epoch has {len(self)} batches')
        return self.batch_at(self.epoch * len(self) + index)

    def reset(self):
        """Go back to the first batch of the first epoch: the stream replays from the start."""
        self.position = 0

    def close(self):
        """Stop and join the prefetch threads (the next ``next()`` starts new ones)."""
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def batch_at(self, step):
        """Batch number ``step`` of the endless stream (a pure function of seed and step)."""
        epoch, index = divmod(step, len(self))
        indices = self._epoch_order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        return self._load(indices, self._rng('batch', epoch, index))

    def _epoch_order(self, epoch):
        cached_epoch, order = self._order
        if cached_epoch != epoch:
            order = (self._rng('order', epoch).permutation(self.n) if self.shuffle
                     else np.arange(self.n))
            self._order = (epoch, order)
        return order

    def _rng(self, purpose, *key):
        """An independent random stream for one purpose ('order' or 'batch') and key."""
        return np.random.default_rng(np.random.SeedSequence(
            self.seed, spawn_key=(_PURPOSES.index(purpose), *key)))

    def _load(self, indices, rng):
        """The batch holding samples ``indices``; ``rng`` drives its augmentation."""
        raise NotImplementedError

    def _augmented(self, x, indices, rng):
        """Random augmentation then standardisation of the float32 images ``x`` of samples
        ``indices``, if there is a generator; saved to ``save_to_dir`` if there is one."""
        generator = self.image_data_generator
        if generator is not None:
            x = generator.standardize(generator.random_transform_batch(x, rng))
        if self.save_to_dir is not None:
            for image, index in zip(x, indices):
                name = f'{self.save_prefix}_{index}_{rng.integers(10**4)}.{self.save_format}'
                with atomic_write(os.path.join(self.save_to_dir, name)) as tmp:
                    array_to_img(image, scale=True).save(tmp)
        return x


def batch_size_of(batch):
    """Number of samples in a batch given as an array or a tuple of arrays."""
    return len(batch[0] if isinstance(batch, tuple) else batch)


def subset_slice(count, validation_split, subset):
    """Which of ``count`` samples belong to ``subset``: the first ``validation_split`` of them
    are the validation samples, the rest the training ones (Keras's rule)."""
    if subset is None:
        return slice(0, count)
    if subset not in SUBSETS:
        raise ValueError(f'subset must be one of {SUBSETS} or None, got {subset!r}')
    if not 0 < validation_split < 1:
        raise ValueError(f'subset={subset!r} needs a validation_split between 0 and 1 (exclusive), '
                         f'got {validation_split!r}')
    cut = int(validation_split * count)
    return slice(0, cut) if subset == 'validation' else slice(cut, count)


class NumpyArrayIterator(Iterator):
    """Batches ``(x, y)`` (or ``x`` when ``y`` is None) from arrays held in memory.

    x: ``(N, H, W, C)`` images of any numeric dtype (kept as given, converted batch by batch to
    float32); y: ``N`` targets of any shape, passed through unchanged. ``saving``:
    save_to_dir, save_prefix and save_format, as for :class:`Iterator`.
    """

    def __init__(self, x, y=None, image_data_generator=None, batch_size=32, shuffle=False,
                 seed=None, subset=None, validation_split=0.0, prefetch=2, workers=1,
                 **saving):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f'flow expects images of shape (N, H, W, C), got an array of shape '
                             f'{x.shape}')
        if y is not None and len(y) != len(x):
            raise ValueError(f'x and y must hold the same number of samples, got {len(x)} '
                             f'images and {len(y)} targets')
        part = subset_slice(len(x), validation_split, subset)
        self.x = x[part]
        self.y = None if y is None else np.asarray(y)[part]
        if len(self.x) == 0:
            raise ValueError(f'the {subset} subset is empty: validation_split={validation_split} '
                             f'of {len(x)} samples')
        super().__init__(len(self.x), batch_size, shuffle, seed, prefetch, workers,
                         image_data_generator, **saving)

    def _load(self, indices, rng):
        x = self._augmented(self.x[indices].astype(np.float32), indices, rng)
        return x if self.y is None else (x, self.y[indices])


class DirectoryIterator(Iterator):
    """Batches of images decoded from class folders, with labels shaped by ``class_mode``.

    Attributes as in Keras: ``class_indices`` (name -> index), ``classes`` (the index of every
    file), ``filenames`` (paths relative to ``directory``, in that order), ``filepaths``,
    ``samples``, ``num_classes``, ``image_shape``.

    Labels: 'categorical' one-hot float32 ``(batch, K)``; 'binary' float32 ``(batch,)`` (two
    classes); 'sparse' int32 class indices ``(batch,)``; 'input' the images themselves (for
    autoencoders); None yields images alone.

    Corrupt files. The listing only looks at names, since opening every file would make a
    large folder slow to index; files are decoded lazily, batch by batch. A file that fails to
    decode (truncated, not an image) is dropped from its batch, together with its label, so
    labels always stay with their images; that batch is one sample shorter. The file is named
    in one warning and skipped in every later epoch. (Substituting another image instead would
    duplicate samples and break the determinism of the stream.)

    ``saving``: save_to_dir, save_prefix and save_format, as for :class:`Iterator`.
    """

    def __init__(self, directory, image_data_generator=None, target_size=(256, 256),
                 color_mode='rgb', classes=None, class_mode='categorical', batch_size=32,
                 shuffle=True, seed=None, interpolation='nearest', follow_links=False,
                 subset=None, validation_split=0.0, prefetch=2, workers=1, **saving):
        if class_mode not in CLASS_MODES:
            raise ValueError(f'class_mode must be one of {CLASS_MODES}, got {class_mode!r}')
        if color_mode not in CHANNELS:
            raise ValueError(f'color_mode must be one of {tuple(CHANNELS)}, got {color_mode!r}')
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of {tuple(INTERPOLATIONS)}, '
                             f'got {interpolation!r}')
        self.target_size, self.color_mode = check_target_size(target_size), color_mode
        found = find_class_images(directory, classes, follow_links)
        self.directory = str(directory)
        self.interpolation, self.class_mode = interpolation, class_mode
        self.image_shape = (*self.target_size, CHANNELS[color_mode])
        self.class_indices = {name: index for index, (name, _) in enumerate(found)}
        self.num_classes = len(found)
        if class_mode == 'binary' and self.num_classes != 2:
            raise ValueError(f"class_mode='binary' needs exactly 2 classes, found "
                             f'{self.num_classes} in {self.directory!r}: '
                             f'{list(self.class_indices)}')
        self.filenames, labels = [], []
        for index, (_, files) in enumerate(found):
            chosen = files[subset_slice(len(files), validation_split, subset)]
            self.filenames += chosen
            labels += [index] * len(chosen)
        self.classes = np.array(labels, dtype=np.int32)
        self.samples = len(self.filenames)
        print(f'Found {self.samples} images belonging to {self.num_classes} classes.')
        if self.samples == 0:
            raise ValueError(f'the {subset} subset of {self.directory!r} is empty: '
                             f'validation_split={validation_split} leaves no image in it')
        self._unreadable = set()
        self._unreadable_lock = threading.Lock()
        super().__init__(self.samples, batch_size, shuffle, seed, prefetch, workers,
                         image_data_generator, **saving)

    @property
    def filepaths(self):
        """Full path of every file, in the order of ``filenames``."""
        return [os.path.join(self.directory, name) for name in self.filenames]

    def _load(self, indices, rng):
        images, kept = [], []
        for i in indices:
            image = self._decode(i)
            if image is not None:
                images.append(image)
                kept.append(i)
        x = (self._augmented(np.stack(images), kept, rng) if images
             else np.zeros((0, *self.image_shape), np.float32))
        labels = self.classes[kept]
        if self.class_mode is None:
            return x
        if self.class_mode == 'input':
            return x, x.copy()
        if self.class_mode == 'categorical':
            return x, np.eye(self.num_classes, dtype=np.float32)[labels]
        return x, labels.astype(np.float32 if self.class_mode == 'binary' else np.int32)

    def _decode(self, i):
        """Image ``i`` as a float32 ``(H, W, C)`` array, or None if its file is unreadable."""
        if i in self._unreadable:
            return None
        path = os.path.join(self.directory, self.filenames[i])
        try:
            return img_to_array(load_img(path, color_mode=self.color_mode,
                                         target_size=self.target_size,
                                         interpolation=self.interpolation))
        except DECODE_ERRORS as error:
            with self._unreadable_lock:
                first_time = i not in self._unreadable
                self._unreadable.add(i)
                all_unreadable = len(self._unreadable) == self.samples
            if all_unreadable:
                raise ValueError(f'none of the {self.samples} images in {self.directory!r} can '
                                 f'be decoded (the last one tried, {path!r}: {error})') from error
            if first_time:
                warnings.warn(f'skipping {path!r}: it cannot be decoded as an image ({error}); '
                              f'it is left out of this and every later batch', stacklevel=1)
            return None
