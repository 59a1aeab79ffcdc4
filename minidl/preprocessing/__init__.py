"""Feeding images to a model: augmentation, iterators over arrays and folders, datasets.

``minidl.preprocessing.image`` is Keras's module of the same name (``ImageDataGenerator``,
``load_img``, ``img_to_array``, ``array_to_img``); ``image_dataset_from_directory`` is the newer
Keras entry point. Inside: ``affine`` (the transform matrices and the resampling kernel),
``files`` (listing class folders, decoding with Pillow), ``iterators`` (the batch streams),
``prefetch`` (background threads), ``dataset``. ``minidl.preprocessing.sequence`` is Keras's
``preprocessing.sequence`` (``pad_sequences``).
"""
from minidl.preprocessing import image, sequence
from minidl.preprocessing.dataset import ImageDataset, image_dataset_from_directory

__all__ = ['image', 'image_dataset_from_directory', 'ImageDataset', 'sequence']
