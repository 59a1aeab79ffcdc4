"""The geometry of augmentation: one affine matrix per image, one resampling per batch.

Rotation, shift, shear and zoom compose into a single 3×3 matrix ``M`` that maps an *output*
pixel ``(row, col, 1)`` to the *input* point it is read from (inverse mapping, as in
``scipy.ndimage.affine_transform``, which Keras calls). Inverse mapping is what makes the
output hole-free: every output pixel asks "where do I come from?", the answer is a point
between four input pixels, and bilinear interpolation blends them. Composing first and
resampling once matters: each resampling blurs, so rotating then zooming then shearing as
three passes would blur three times, and cost three times as much.

Points outside the image are read as scipy does for the ``fill_mode`` Keras passes it (the
image ``a b c d``, continued to the left and to the right)::

    'nearest'   a a a a | a b c d | d d d d     (the point is clamped to the edge)
    'reflect'   d c b a | a b c d | d c b a     (mirrored about the outer pixel edges)
    'wrap'      b c d(a)| a b c d |(d)b c d     (period W - 1: the last and first columns
                                                 are one column, a scipy quirk Keras keeps)
    'constant'  k k k k | a b c d | k k k k     (k = cval for any point past the outer
                                                 pixel centres, with no blending into k)

Conventions follow Keras (keras-preprocessing 1.1.2, the ImageDataGenerator of the lessons):
coordinates are ``(row, col)``; ``tx`` is the row (vertical) offset and ``ty`` the column
(horizontal) one; ``zx`` scales rows and ``zy`` columns; angles are in degrees. Keras turns
about the point ``(H/2 + 0.5, W/2 + 0.5)``, one pixel below and right of the true centre
``((H-1)/2, (W-1)/2)``, so its 180° rotation is both flips moved by two pixels; we keep that
centre so the same parameters give Keras's images (tf-keras 2.x later moved it to the true
centre). Because ``M`` maps output to input, ``tx = 3`` reads each pixel from 3 rows *below*,
so the content moves 3 rows *up*; ``zx = 0.5`` reads from half the distance, so the content
looks twice as tall; ``theta = 90`` turns the content a quarter turn clockwise as the image is
displayed (rows going down). Flips are not part of ``M``: Keras mirrors the warped array.
"""
import numba
import numpy as np

FILL_MODES = ('nearest', 'constant', 'reflect', 'wrap')
_NEAREST, _CONSTANT, _REFLECT, _WRAP = range(len(FILL_MODES))


def transform_matrix(params, height, width):
    """The 3×3 output-to-input matrix for one image of size ``(height, width)``.

    ``params`` holds Keras's keys (``theta``, ``tx``, ``ty``, ``shear``, ``zx``, ``zy``);
    missing keys mean "no change", and no change at all gives the identity. The Keras order is
    kept: rotation, shift, shear, then zoom, about Keras's centre, multiplied in the order
    Keras multiplies them, so the matrix is Keras's to the last bit.
    """
    theta = np.deg2rad(params.get('theta', 0))
    shear = np.deg2rad(params.get('shear', 0))
    tx, ty = params.get('tx', 0), params.get('ty', 0)
    zx, zy = params.get('zx', 1), params.get('zy', 1)
    parts = []
    if theta != 0:
        parts.append([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0]])
    if tx != 0 or ty != 0:
        parts.append([[1, 0, tx], [0, 1, ty]])
    if shear != 0:
        parts.append([[1, -np.sin(shear), 0], [0, np.cos(shear), 0]])
    if zx != 1 or zy != 1:
        parts.append([[zx, 0, 0], [0, zy, 0]])
    if not parts:
        return np.eye(3)
    matrix = _affine(parts[0])
    for part in parts[1:]:
        matrix = matrix @ _affine(part)
    centre_r, centre_c = height / 2 + 0.5, width / 2 + 0.5
    return _translation(centre_r, centre_c) @ matrix @ _translation(-centre_r, -centre_c)


def _affine(rows):
    return np.array(rows + [[0, 0, 1]], dtype=np.float64)


def _translation(rows, cols):
    return np.array([[1.0, 0, rows], [0, 1.0, cols], [0, 0, 1]])


def resample(images, matrices, fill_mode='nearest', cval=0.0, order=1, grid=False):
    """Warp each image of a batch by its own matrix.

    images: ``(N, H, W, C)`` floats; matrices: ``(N, 3, 3)`` from :func:`transform_matrix`.
    order: 1 for bilinear interpolation (Keras's default), 0 for nearest neighbour.
    grid: read outside the image as Keras 3's preprocessing layers do (scipy's ``grid-*``
    modes) instead of as ImageDataGenerator does: each *tap* outside the image is extended by
    ``fill_mode`` (so 'constant' blends into ``cval`` and 'wrap' has period W), and nearest
    neighbour rounds halves to even.
    Returns a new ``(N, H, W, C)`` array of the images' dtype. Images whose matrix is the
    identity are copied untouched, so a generator with no geometric augmentation costs nothing.
    """
    if fill_mode not in FILL_MODES:
        raise ValueError(f'fill_mode must be one of {FILL_MODES}, got {fill_mode!r}')
    if order not in (0, 1):
        raise ValueError(f'interpolation order must be 0 (nearest) or 1 (bilinear), got {order!r}')
    images = np.ascontiguousarray(images)
    matrices = np.asarray(matrices, dtype=np.float64)
    out = images.copy()
    moving = np.flatnonzero(~np.all(matrices == np.eye(3), axis=(1, 2)))
    if moving.size:
        _warp(images, matrices, moving, FILL_MODES.index(fill_mode), float(cval), order,
              bool(grid), out)
    return out


def _warp(images, matrices, which, mode, cval, order, grid, out):
    """For each output pixel of the images ``which``: inverse-map, then blend the nearest taps.

    Each axis is sampled on its own (:func:`_taps`): the two pixels around the source point,
    the weight of the second, and whether each lies on the image; bilinear (order 1) weights
    them by how close they are, nearest (order 0) puts all the weight on the closer one. A tap
    off a 'constant' image reads ``cval``. Serial by design: it releases the GIL, so the
    prefetch threads run it beside training, and Numba's parallel thread pool must not be
    entered from two threads at once.
    """
    height, width, channels = images.shape[1:]
    for i in which:
        m, image = matrices[i], images[i]
        for row in range(height):
            for col in range(width):
                # The offset first, as scipy sums: points on an edge stay on its side.
                ra, rb, fr, ra_in, rb_in = _taps(m[0, 2] + m[0, 0] * row + m[0, 1] * col,
                                                 height, mode, order, grid)
                ca, cb, fc, ca_in, cb_in = _taps(m[1, 2] + m[1, 0] * row + m[1, 1] * col,
                                                 width, mode, order, grid)
                if not (ra_in or rb_in) or not (ca_in or cb_in):
                    out[i, row, col, :] = cval
                    continue
                w00, w01 = (1 - fr) * (1 - fc), (1 - fr) * fc
                w10, w11 = fr * (1 - fc), fr * fc
                for ch in range(channels):
                    out[i, row, col, ch] = (
                        w00 * (image[ra, ca, ch] if ra_in and ca_in else cval)
                        + w01 * (image[ra, cb, ch] if ra_in and cb_in else cval)
                        + w10 * (image[rb, ca, ch] if rb_in and ca_in else cval)
                        + w11 * (image[rb, cb, ch] if rb_in and cb_in else cval))


def _taps(x, size, mode, order, grid):
    """Sample one axis of ``size`` pixels at coordinate ``x``: ``(first, second, weight of the
    second, first on the image, second on the image)``; a tap is off the image only in
    'constant' mode."""
    if grid:
        first = int(np.rint(x)) if order == 0 else int(np.floor(x))
        weight = 0.0 if order == 0 else x - first
        second = first if order == 0 else first + 1
        return (_fold(first, size, mode), _fold(second, size, mode), weight,
                mode != _CONSTANT or 0 <= first < size, mode != _CONSTANT or 0 <= second < size)
    if mode == _CONSTANT and not 0 <= x <= size - 1:
        return 0, 0, 0.0, False, False
    x = _extend(x, size, mode)
    if order == 0:
        nearest = min(max(int(np.floor(x + 0.5)), 0), size - 1)
        return nearest, nearest, 0.0, True, True
    first = int(np.floor(x))
    return max(first, 0), min(first + 1, size - 1), x - first, True, True


def _extend(x, size, mode):
    """Bring a coordinate outside ``[0, size - 1]`` back onto the image as scipy.ndimage
    extends it for ``mode`` (its ``map_coordinate``, operation for operation, so that points
    on an edge, and ties of nearest-neighbour rounding, fall on the same side).

    'reflect' mirrors about the outer pixel edges, ``-0.5`` and ``size - 0.5`` (the result can
    lie up to a pixel past the outer centre, where both taps are the edge pixel); 'wrap'
    repeats with period ``size - 1``.
    """
    if 0 <= x <= size - 1:
        return x
    if mode == _NEAREST or size == 1:
        return 0.0 if x < 0 or size == 1 else size - 1.0
    if mode == _REFLECT:
        period = 2 * size
        if x < 0:
            if x < -period:
                x = period * int(-x / period) + x
            return x + period if x < -size else -x - 1
        x -= period * int(x / period)
        return period - x - 1 if x >= size else x
    period = size - 1  # wrap
    if x < 0:
        return x + period * (int(-x / period) + 1)
    return x - period * int(x / period)


def _fold(index, size, mode):
    """A tap index from anywhere on the extended image (Keras 3's reading) back into
    ``[0, size)``: mirrored with the edge pixel repeated, periodic, or clamped."""
    if mode == _REFLECT:
        index = index % (2 * size)
        return min(index, 2 * size - 1 - index)
    if mode == _WRAP:
        return index % size
    return min(max(index, 0), size - 1)


_extend = numba.njit(_extend, inline='always')
_fold = numba.njit(_fold, inline='always')
_taps = numba.njit(_taps, inline='always')
_warp = numba.njit(_warp, nogil=True, cache=True)
