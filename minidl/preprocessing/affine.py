"""The geometry of augmentation: one affine matrix per image, one resampling per batch.

Rotation, shift, shear, zoom and the flips all compose into a single 3×3 matrix ``M`` that maps
an *output* pixel ``(row, col, 1)`` to the *input* point it is read from (inverse mapping, as in
``scipy.ndimage.affine_transform``, which Keras used). Inverse mapping is what makes the output
hole-free: every output pixel asks "where do I come from?", the answer is a point between four
input pixels, and bilinear interpolation blends them. Points that fall outside the image read
from the image extended by ``fill_mode``::

    'nearest'   a a a a | a b c d | d d d d     (edge pixels repeated)
    'reflect'   d c b a | a b c d | d c b a     (mirror, edge pixel included)
    'wrap'      a b c d | a b c d | a b c d     (periodic tiling)
    'constant'  k k k k | a b c d | k k k k     (k = cval)

Composing first and resampling once matters: each resampling blurs, so rotating then zooming
then shearing as three passes would blur three times, and cost three times as much.

Conventions follow Keras: coordinates are ``(row, col)``; ``tx`` is the row (vertical) offset
and ``ty`` the column (horizontal) one; ``zx`` scales rows and ``zy`` columns; angles are in
degrees; the transform is centred on the image centre ``((H-1)/2, (W-1)/2)``. Because ``M``
maps output to input, ``tx = 3`` reads each pixel from 3 rows *below*, so the content moves
3 rows *up*; ``zx = 0.5`` reads from half the distance, so the content looks twice as tall;
``theta = 90`` turns the content a quarter turn clockwise as the image is displayed (rows
going down).
"""
import numba
import numpy as np

FILL_MODES = ('nearest', 'constant', 'reflect', 'wrap')
_CONSTANT, _REFLECT, _WRAP = (FILL_MODES.index(mode) for mode in ('constant', 'reflect', 'wrap'))


def transform_matrix(params, height, width):
    """The 3×3 output-to-input matrix for one image of size ``(height, width)``.

    ``params`` holds Keras's keys (``theta``, ``tx``, ``ty``, ``shear``, ``zx``, ``zy``,
    ``flip_horizontal``, ``flip_vertical``); missing keys mean "no change". The Keras order is
    kept: rotation, shift, shear and zoom about the centre, then the flips of the result.
    """
    theta = np.deg2rad(params.get('theta', 0))
    shear = np.deg2rad(params.get('shear', 0))
    rotate = np.array([[np.cos(theta), -np.sin(theta), 0],
                       [np.sin(theta), np.cos(theta), 0],
                       [0, 0, 1]])
    shift = np.array([[1, 0, params.get('tx', 0)],
                      [0, 1, params.get('ty', 0)],
                      [0, 0, 1]])
    slant = np.array([[1, -np.sin(shear), 0],
                      [0, np.cos(shear), 0],
                      [0, 0, 1]])
    zoom = np.diag([params.get('zx', 1), params.get('zy', 1), 1])
    centre_r, centre_c = (height - 1) / 2, (width - 1) / 2
    to_centre = _translation(-centre_r, -centre_c)
    from_centre = _translation(centre_r, centre_c)
    flip = np.diag([-1.0 if params.get('flip_vertical') else 1.0,
                    -1.0 if params.get('flip_horizontal') else 1.0, 1.0])
    # Output pixel -> flipped about the centre -> through the affine part about the centre.
    affine = rotate @ shift @ slant @ zoom
    return from_centre @ affine @ flip @ to_centre


def _translation(rows, cols):
    return np.array([[1.0, 0, rows], [0, 1.0, cols], [0, 0, 1]])


def resample(images, matrices, fill_mode='nearest', cval=0.0, order=1):
    """Warp each image of a batch by its own matrix.

    images: ``(N, H, W, C)`` floats; matrices: ``(N, 3, 3)`` from :func:`transform_matrix`.
    order: 1 for bilinear interpolation (Keras's default), 0 for nearest neighbour.
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
        _warp(images, matrices, moving, FILL_MODES.index(fill_mode),
              images.dtype.type(cval), order, out)
    return out


def _warp(images, matrices, which, mode, cval, order, out):
    """For each output pixel of the images ``which``: inverse-map, then blend the nearest taps.

    Bilinear (order 1) blends the four pixels around the source point, each weighted by how
    close it is; nearest (order 0) rounds the source point first, which leaves all the weight
    on one tap. A tap outside the image reads the pixel ``fill_mode`` folds it onto, or, in
    'constant' mode, gives its weight to ``cval``. Serial by design: it releases the GIL, so
    the prefetch threads run it beside training, and Numba's parallel thread pool must not be
    entered from two threads at once.
    """
    height, width, channels = images.shape[1:]
    for i in which:
        m, image = matrices[i], images[i]
        for row in range(height):
            for col in range(width):
                src_r = m[0, 0] * row + m[0, 1] * col + m[0, 2]
                src_c = m[1, 0] * row + m[1, 1] * col + m[1, 2]
                if order == 0:
                    src_r, src_c = np.floor(src_r + 0.5), np.floor(src_c + 0.5)
                r0, c0 = int(np.floor(src_r)), int(np.floor(src_c))
                fr, fc = src_r - r0, src_c - c0
                w00, w01 = (1 - fr) * (1 - fc), (1 - fr) * fc
                w10, w11 = fr * (1 - fc), fr * fc
                w_cval = 0.0
                if mode == _CONSTANT:  # taps outside the image hand their weight to cval
                    w00 *= _inside(r0, c0, height, width)
                    w01 *= _inside(r0, c0 + 1, height, width)
                    w10 *= _inside(r0 + 1, c0, height, width)
                    w11 *= _inside(r0 + 1, c0 + 1, height, width)
                    w_cval = 1 - (w00 + w01 + w10 + w11)
                ra, rb = _fold(r0, height, mode), _fold(r0 + 1, height, mode)
                ca, cb = _fold(c0, width, mode), _fold(c0 + 1, width, mode)
                for ch in range(channels):
                    out[i, row, col, ch] = (w00 * image[ra, ca, ch] + w01 * image[ra, cb, ch]
                                            + w10 * image[rb, ca, ch] + w11 * image[rb, cb, ch]
                                            + w_cval * cval)


def _inside(row, col, height, width):
    return 1.0 if 0 <= row < height and 0 <= col < width else 0.0


def _fold(index, size, mode):
    """Bring an index from anywhere on the extended image back into ``[0, size)``.

    'constant' folds like 'nearest': its outside taps carry no weight, any index will do.
    """
    if 0 <= index < size:
        return index
    if mode == _REFLECT:
        index = index % (2 * size)
        return min(index, 2 * size - 1 - index)
    if mode == _WRAP:
        return index % size
    return min(max(index, 0), size - 1)


_inside = numba.njit(_inside, inline='always')
_fold = numba.njit(_fold, inline='always')
_warp = numba.njit(_warp, nogil=True, cache=True)
