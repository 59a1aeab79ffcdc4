"""Image files on disk: finding them in class folders, decoding them with Pillow.

The layout is Keras's: one subfolder per class, images anywhere below it::

    train/
        cats/cat.0.jpg, cat.1.jpg, ...
        dogs/dog.0.jpg, ...

Whatever a file holds (grayscale, palette, RGBA, 16-bit), :func:`load_img` returns it in the
colour mode asked for, at the size asked for, so every array of a batch has the same shape.
Options are keyword-only: Keras's legacy second positional parameters (``grayscale``,
``data_format``) do not exist here, and a positional value must not land on the wrong one.
"""
import numbers
import os

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.tif', '.tiff')
COLOR_MODES = {'grayscale': 'L', 'rgb': 'RGB', 'rgba': 'RGBA'}
CHANNELS = {'grayscale': 1, 'rgb': 3, 'rgba': 4}
INTERPOLATIONS = {'nearest': Image.Resampling.NEAREST, 'bilinear': Image.Resampling.BILINEAR,
                  'bicubic': Image.Resampling.BICUBIC, 'lanczos': Image.Resampling.LANCZOS,
                  'box': Image.Resampling.BOX, 'hamming': Image.Resampling.HAMMING}
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
"""What Pillow raises for a file that is not a readable image (unknown format, truncated
data, broken chunks, absurd dimensions)."""

_SIXTEEN_BIT_MODES = ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N')


def find_class_images(directory, classes=None, follow_links=False):
    """The image files of each class folder: ``[(class_name, [relative paths]), ...]``.

    Classes are the sorted subfolder names unless ``classes`` lists them (in the order that
    gives their indices). Files are searched recursively below each class folder, by extension
    (case-insensitive), in sorted order, so the listing is the same on every machine.
    Raises FileNotFoundError for a missing directory or class folder, and ValueError when
    there are no class folders or no images in them, saying what was searched.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        what = 'is not a directory' if os.path.exists(directory) else 'does not exist'
        raise FileNotFoundError(f'image directory {directory!r} {what}')
    if classes is None:
        classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
        if not classes:
            raise ValueError(f'no class subfolders in {directory!r}: expected one subfolder per '
                             f'class holding its images, e.g. {os.path.join(directory, "cats")}')
    found = [(name, _images_below(directory, name, follow_links)) for name in classes]
    if not any(files for _, files in found):
        raise ValueError(f'no images in {directory!r}: searched the class subfolders '
                         f'{list(classes)} for files ending in {", ".join(IMAGE_EXTENSIONS)}')
    return found


def _images_below(directory, class_name, follow_links):
    """Sorted paths, relative to ``directory``, of the image files below one class folder."""
    folder = os.path.join(directory, class_name)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'class folder {folder!r} does not exist (classes={class_name!r} '
                                f'was asked for)')
    files = []
    for root, names in sorted(_walk(folder, follow_links)):
        files.extend(os.path.relpath(os.path.join(root, name), directory)
                     for name in sorted(names) if name.lower().endswith(IMAGE_EXTENSIONS))
    return files


def _walk(folder, follow_links):
    """Yield ``(path, file names)`` for ``folder`` and each folder below it.

    With ``follow_links``, linked folders are entered too, but each real folder (device and
    inode) only once: a link back up the tree, or a loop of links, can neither repeat images
    nor make the walk endless. A link to another folder (a sibling class) is still followed
    once, as Keras does. Unreadable folders are skipped, as ``os.walk`` skips them.
    """
    seen, pending = set(), [folder]
    while pending:
        path = pending.pop()
        try:
            info = os.stat(path)
            entries = list(os.scandir(path))
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        pending += [entry.path for entry in entries if entry.is_dir(follow_symlinks=follow_links)]
        yield path, [entry.name for entry in entries if entry.is_file()]


def load_img(path, *, color_mode='rgb', target_size=None, interpolation='nearest'):
    """Decode an image file into a PIL image in ``color_mode``, resized to ``target_size``.

    color_mode: 'grayscale', 'rgb' or 'rgba'. Palette images with a transparent colour become
    RGBA first, so their transparency survives into 'rgba'; 16-bit samples are scaled to 8
    bits (65535 -> 255) rather than clipped. target_size: ``(height, width)``, or None to keep
    the file's size; smaller images are scaled up. The whole file is decoded here, so a
    truncated or corrupt file raises one of :data:`DECODE_ERRORS` now, not later.
    """
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {tuple(COLOR_MODES)}, got {color_mode!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {tuple(INTERPOLATIONS)}, '
                         f'got {interpolation!r}')
    if target_size is not None:
        target_size = check_target_size(target_size)
    with Image.open(path) as img:
        img.load()
    img = _convert(img, COLOR_MODES[color_mode])
    if target_size is not None and img.size != (target_size[1], target_size[0]):
        img = img.resize((target_size[1], target_size[0]), INTERPOLATIONS[interpolation])
    return img


def check_target_size(size, name='target_size'):
    """``size`` as a ``(height, width)`` pair of positive ints, else a ValueError naming it
    (a zero size would otherwise surface as every image failing to decode)."""
    try:
        pair = tuple(size)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool)
                                 and d >= 1 for d in pair):
        raise ValueError(f'{name} must be (height, width), two integers >= 1, got {size!r}')
    return tuple(int(d) for d in pair)


def _convert(img, mode):
    if img.mode in _SIXTEEN_BIT_MODES:
        eight_bit = np.clip(np.round(np.asarray(img, dtype=np.float64) / 257), 0, 255)
        img = Image.fromarray(eight_bit.astype(np.uint8))
    if img.mode == 'P' and 'transparency' in img.info:
        img = img.convert('RGBA')
    return img if img.mode == mode else img.convert(mode)


def img_to_array(img, *, dtype='float32'):
    """A PIL image as an ``(H, W, C)`` array (C = 1 for grayscale), values 0..255."""
    array = np.asarray(img, dtype=dtype)
    return array[:, :, None] if array.ndim == 2 else array


def array_to_img(x, *, scale=True):
    """An ``(H, W, C)`` array (C = 1, 3 or 4) as a PIL image, e.g. to show an augmented batch.

    scale: stretch the values to span 0..255 first (right for arrays in [0, 1] or
    standardised ones); otherwise values are taken as 0..255. Either way they are rounded and
    clipped to 8 bits.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] not in (1, 3, 4):
        raise ValueError(f'array_to_img expects an (H, W, C) array with C = 1, 3 or 4, '
                         f'got shape {x.shape}')
    if scale:
        x = x - x.min()
        x = x * (255 / x.max()) if x.max() > 0 else x
    pixels = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels[:, :, 0] if x.shape[2] == 1 else pixels)
