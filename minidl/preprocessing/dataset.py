"""``image_dataset_from_directory``: the newer Keras API for a folder of class subfolders.

Unlike the endless ``flow_from_directory`` iterator, the dataset is finite and re-iterable:
each ``for images, labels in dataset`` loop is one epoch, reshuffled, with the next batches
decoded on a background thread while the loop body runs.
"""
from minidl.preprocessing.iterators import DirectoryIterator, batch_size_of
from minidl.preprocessing.prefetch import Prefetcher

LABEL_MODES = {'int': 'sparse', 'categorical': 'categorical', 'binary': 'binary', None: None}


class ImageDataset:
    """Batches ``(images, labels)`` of one epoch per iteration; ``len()`` batches per epoch.

    images: float32 ``(batch, H, W, C)`` with values 0..255 (not rescaled, as in Keras).
    labels by label_mode: 'int' int32 ``(batch,)``; 'categorical' one-hot float32
    ``(batch, K)``; 'binary' float32 ``(batch, 1)``; None: images alone.
    Attributes: ``class_names`` (index order) and ``file_paths``.
    """

    def __init__(self, batches, label_mode):
        self._batches, self.label_mode = batches, label_mode
        self.class_names = list(batches.class_indices)
        self.file_paths = batches.filepaths
        self._epochs = 0

    def __len__(self):
        return len(self._batches)

    def __iter__(self):
        epoch, steps = self._epochs, len(self)
        self._epochs += 1
        with Prefetcher(self.batch_at, start=epoch * steps, stop=(epoch + 1) * steps,
                        depth=self.prefetch, workers=self.workers) as batches:
            for batch in batches:
                if batch_size_of(batch):
                    yield batch

    def batch_at(self, step):
        """Batch ``step % len(self)`` of epoch ``step // len(self)``."""
        batch = self._batches.batch_at(step)
        return (batch[0], batch[1][:, None]) if self.label_mode == 'binary' else batch

    prefetch = property(lambda self: self._batches.prefetch)
    workers = property(lambda self: self._batches.workers)

    @property
    def seed(self):
        """The seed of the shuffles (see :attr:`Iterator.seed`)."""
        return self._batches.seed

    @seed.setter
    def seed(self, value):
        self._batches.seed = value

    @property
    def position(self):
        """The first step of the next epoch: ``epochs iterated * len(self)``."""
        return self._epochs * len(self)

    @position.setter
    def position(self, step):
        self._epochs = -(-int(step) // len(self))


def image_dataset_from_directory(directory, labels='inferred', label_mode='int', class_names=None,
                                 color_mode='rgb', batch_size=32, image_size=(256, 256),
                                 shuffle=True, seed=None, validation_split=None, subset=None,
                                 interpolation='bilinear', follow_links=False):
    """An :class:`ImageDataset` of the images in ``directory``'s class subfolders.

    Classes are the sorted subfolder names, or ``class_names`` in the order given.
    image_size: ``(height, width)`` every image is resized to. validation_split and subset
    ('training' or 'validation') pick a part of every class: its first ``validation_split``
    files (sorted by name) are the validation ones. This split does not depend on the shuffle,
    so unlike Keras no seed is needed to keep the two parts apart; ``seed`` fixes the order of
    the batches. Unreadable files are handled as in
    :class:`~minidl.preprocessing.iterators.DirectoryIterator`.
    """
    if labels != 'inferred':
        raise ValueError(f"labels={labels!r} is not supported: labels are inferred from the class "
                         f"subfolders (labels='inferred'); use label_mode=None for images alone")
    if label_mode not in LABEL_MODES:
        raise ValueError(f'label_mode must be one of {tuple(LABEL_MODES)}, got {label_mode!r}')
    batches = DirectoryIterator(directory, None, target_size=image_size, color_mode=color_mode,
                                classes=class_names, class_mode=LABEL_MODES[label_mode],
                                batch_size=batch_size, shuffle=shuffle, seed=seed,
                                interpolation=interpolation, follow_links=follow_links,
                                subset=subset, validation_split=validation_split or 0.0)
    return ImageDataset(batches, label_mode)
