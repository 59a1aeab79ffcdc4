"""The affine warp: each transform checked on a synthetic image whose right answer is known."""
import numpy as np
import pytest

from minidl.preprocessing.affine import FILL_MODES, resample, transform_matrix


def dot_image(height, width, row, col, channels=1):
    """A black ``(1, H, W, C)`` batch with one white pixel."""
    x = np.zeros((1, height, width, channels), np.float32)
    x[0, row, col] = 1.0
    return x


def warp(x, fill_mode='nearest', cval=0.0, order=1, **params):
    matrix = transform_matrix(params, x.shape[1], x.shape[2])
    return resample(x, matrix[None], fill_mode, cval, order)


def dot_position(x):
    (position,) = np.argwhere(np.isclose(x[0, ..., 0], 1.0))
    return tuple(position)


def test_shift_moves_a_dot_by_the_offsets():
    # Inverse mapping, as Keras: tx/ty say where each pixel reads from, so content moves by -tx/-ty.
    shifted = warp(dot_image(9, 11, 4, 5), fill_mode='constant', tx=2, ty=-3)
    assert dot_position(shifted) == (2, 8)
    assert shifted.sum() == pytest.approx(1.0)


def test_rotation_by_90_degrees_maps_a_known_pixel():
    rotated = warp(dot_image(5, 5, 0, 4), theta=90)
    assert dot_position(rotated) == (4, 4)  # top-right corner to bottom-right corner
    assert rotated.sum() == pytest.approx(1.0)


def test_rotation_by_180_degrees_is_both_flips():
    x = np.random.default_rng(0).random((1, 6, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(warp(x, theta=180), x[:, ::-1, ::-1], atol=1e-5)
    np.testing.assert_array_equal(warp(x, flip_horizontal=True, flip_vertical=True),
                                  x[:, ::-1, ::-1])


@pytest.mark.parametrize('key, expected', [('flip_horizontal', lambda x: x[:, :, ::-1]),
                                           ('flip_vertical', lambda x: x[:, ::-1])])
def test_flips_mirror_the_image(key, expected):
    x = np.random.default_rng(1).random((1, 4, 5, 2)).astype(np.float32)
    np.testing.assert_array_equal(warp(x, **{key: True}), expected(x))


def test_flip_follows_the_affine_part_as_in_keras():
    # Keras shifts first, then flips the result: the dot moves right by 2, then is mirrored.
    x = dot_image(1, 9, 0, 4)
    assert dot_position(warp(x, fill_mode='constant', ty=-2, flip_horizontal=True)) == (0, 2)


def test_zoom_below_one_enlarges_the_content_about_the_centre():
    x = np.zeros((1, 9, 9, 1), np.float32)
    x[0, 3:6, 3:6] = 1.0  # a 3x3 square in the middle
    zoomed = warp(x, zx=1 / 3, zy=1 / 3, order=0)
    np.testing.assert_array_equal(zoomed[0, ..., 0], np.ones((9, 9)))
    shrunk = warp(x, fill_mode='constant', zx=3, zy=3, order=0)
    assert shrunk[0, 4, 4, 0] == 1 and shrunk.sum() == 1


def test_shear_slants_a_horizontal_line():
    # Keras's shear reads row ``r - sin(s) * c`` (about the centre); zy = 1/cos(s) undoes the
    # column scaling, so at 45 degrees the line climbs one row per column.
    x = np.zeros((1, 5, 9, 1), np.float32)
    x[0, 2, :] = 1.0
    sheared = warp(x, fill_mode='constant', shear=45, zy=1 / np.cos(np.pi / 4))
    cols = [int(np.argmax(sheared[0, row, :, 0])) for row in range(5)]
    assert cols == [2, 3, 4, 5, 6]


def test_half_pixel_shift_averages_neighbours_bilinearly():
    x = np.array([0.0, 10.0, 20.0, 30.0], np.float32).reshape(1, 1, 4, 1)
    np.testing.assert_allclose(warp(x, ty=0.5)[0, 0, :, 0], [5, 15, 25, 30])
    np.testing.assert_allclose(warp(x, ty=0.5, order=0)[0, 0, :, 0], [10, 20, 30, 30])


@pytest.mark.parametrize('fill_mode, expected', [
    ('nearest', [1, 1, 1, 2, 3]),
    ('constant', [9, 9, 1, 2, 3]),
    ('reflect', [2, 1, 1, 2, 3]),
    ('wrap', [4, 5, 1, 2, 3]),
])
def test_fill_modes_extend_the_image_past_its_edge(fill_mode, expected):
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5, 1)
    shifted = warp(x, fill_mode=fill_mode, cval=9.0, ty=-2)
    np.testing.assert_allclose(shifted[0, 0, :, 0], expected)


def test_constant_fill_blends_into_cval_at_a_fractional_edge():
    x = np.full((1, 1, 3, 1), 4.0, np.float32)
    np.testing.assert_allclose(warp(x, fill_mode='constant', ty=0.25)[0, 0, :, 0], [4, 4, 3])


def test_identity_leaves_images_untouched_and_copies_them():
    x = np.random.default_rng(2).random((3, 4, 4, 3)).astype(np.float32)
    out = resample(x, np.stack([np.eye(3)] * 3))
    np.testing.assert_array_equal(out, x)
    assert out is not x and out.dtype == x.dtype


def test_each_image_of_a_batch_gets_its_own_matrix():
    x = np.concatenate([dot_image(5, 5, 2, 2)] * 2)
    matrices = np.stack([transform_matrix({'ty': 1}, 5, 5), transform_matrix({'ty': -1}, 5, 5)])
    out = resample(x, matrices, 'constant')
    assert dot_position(out[:1]) == (2, 1) and dot_position(out[1:]) == (2, 3)


def test_bad_fill_mode_or_order_is_a_clear_error():
    x, m = dot_image(3, 3, 1, 1), np.eye(3)[None]
    with pytest.raises(ValueError, match='fill_mode must be one of'):
        resample(x, m, 'mirror')
    with pytest.raises(ValueError, match='interpolation order'):
        resample(x, m, order=3)
    assert set(FILL_MODES) == {'nearest', 'constant', 'reflect', 'wrap'}
