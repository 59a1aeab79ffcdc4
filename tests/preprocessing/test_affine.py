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


def test_rotation_turns_about_keras_centre():
    # Keras's centre is (H/2 + 0.5, W/2 + 0.5): (3, 3) in a 5x5 image, not the middle (2, 2).
    for theta in (90, 180, -37):
        assert warp(dot_image(5, 5, 3, 3), theta=theta)[0, 3, 3, 0] == pytest.approx(1.0)
    rotated = warp(dot_image(5, 5, 2, 4), theta=90)
    assert dot_position(rotated) == (4, 4)  # reads (6 - col, row): the content turns clockwise
    assert dot_position(warp(dot_image(5, 5, 2, 2), theta=180)) == (4, 4)


def test_rotation_by_180_degrees_is_both_flips_moved_by_two_pixels():
    x = np.random.default_rng(0).random((1, 6, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(warp(x, theta=180)[:, 2:, 2:], x[:, ::-1, ::-1][:, :-2, :-2],
                               atol=1e-5)


def test_zoom_below_one_enlarges_the_content_about_keras_centre():
    x = np.zeros((1, 9, 9, 1), np.float32)
    x[0, 4:7, 4:7] = 1.0  # a 3x3 square about Keras's centre (5, 5)
    zoomed = warp(x, zx=1 / 3, zy=1 / 3, order=0)[0, ..., 0]
    np.testing.assert_array_equal(zoomed[1:, 1:], np.ones((8, 8)))
    assert zoomed[0].sum() == zoomed[:, 0].sum() == 0  # they read from outside the square
    shrunk = warp(x, fill_mode='constant', zx=3, zy=3, order=0)
    assert shrunk[0, 5, 5, 0] == 1 and shrunk.sum() == 1


def test_shear_slants_a_horizontal_line():
    # Keras's shear reads row ``r - sin(s) * c`` (about the centre); zy = 1/cos(s) undoes the
    # column scaling, so at 45 degrees the line climbs one row per column.
    x = np.zeros((1, 5, 9, 1), np.float32)
    x[0, 2, :] = 1.0
    sheared = warp(x, fill_mode='constant', shear=45, zy=1 / np.cos(np.pi / 4))
    cols = [int(np.argmax(sheared[0, row, :, 0])) for row in range(5)]
    assert cols == [3, 4, 5, 6, 7]


def test_half_pixel_shift_averages_neighbours_bilinearly():
    x = np.array([0.0, 10.0, 20.0, 30.0], np.float32).reshape(1, 1, 4, 1)
    np.testing.assert_allclose(warp(x, ty=0.5)[0, 0, :, 0], [5, 15, 25, 30])
    np.testing.assert_allclose(warp(x, ty=0.5, order=0)[0, 0, :, 0], [10, 20, 30, 30])


@pytest.mark.parametrize('fill_mode, left, right', [
    ('nearest', [1, 1, 1], [5, 5, 5]),
    ('constant', [9, 9, 9], [9, 9, 9]),
    ('reflect', [3, 2, 1], [5, 4, 3]),  # mirrored about the outer pixel edges
    ('wrap', [2, 3, 4], [2, 3, 4]),  # period 4 (scipy's wrap): column -1 is 3, column 5 is 1
])
def test_fill_modes_extend_the_image_past_its_edge(fill_mode, left, right):
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5, 1)
    np.testing.assert_allclose(warp(x, fill_mode, 9.0, ty=-3)[0, 0, :, 0], left + [1, 2])
    np.testing.assert_allclose(warp(x, fill_mode, 9.0, ty=3)[0, 0, :, 0], [4, 5] + right)


def test_constant_fill_does_not_blend_past_the_last_pixel_centre():
    x = np.full((1, 1, 3, 1), 4.0, np.float32)
    np.testing.assert_allclose(warp(x, fill_mode='constant', ty=0.25)[0, 0, :, 0], [4, 4, 0])


def test_wrap_takes_the_last_column_for_the_first():
    # Period W - 1: half a column past the last is half-way from the first to the second.
    x = np.array([0.0, 10.0, 20.0, 30.0], np.float32).reshape(1, 1, 4, 1)
    np.testing.assert_allclose(warp(x, fill_mode='wrap', ty=0.5)[0, 0, :, 0], [5, 15, 25, 5])


def test_reflect_rounds_ties_in_the_mirrored_image():
    # Nearest neighbour at -1.5 is mirrored to 0.5 first, which rounds up to column 1.
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5, 1)
    np.testing.assert_allclose(warp(x, fill_mode='reflect', ty=-1.5, order=0)[0, 0, :2, 0],
                               [2, 1])


def test_one_pixel_axes_read_their_only_pixel():
    x = np.full((1, 1, 4, 1), 7.0, np.float32)
    for fill_mode in ('nearest', 'reflect', 'wrap'):
        assert np.all(warp(x, fill_mode, tx=0.4, theta=3)[0, 0, 1:3] == 7)
    assert warp(x, 'constant', tx=0.4)[0, 0, 0, 0] == 0


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


@pytest.mark.parametrize('fill_mode, left', [
    ('nearest', [1, 1, 1]), ('constant', [9, 9, 9]), ('reflect', [3, 2, 1]),
    ('wrap', [3, 4, 5])])  # Keras 3 wraps with period W
def test_keras3_reading_extends_each_tap(fill_mode, left):
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5, 1)
    matrix = transform_matrix({'ty': -3}, 1, 5)[None]
    np.testing.assert_allclose(resample(x, matrix, fill_mode, 9.0, grid=True)[0, 0, :, 0],
                               left + [1, 2])


def test_keras3_reading_blends_into_cval_and_rounds_halves_to_even():
    flat = np.full((1, 1, 3, 1), 4.0, np.float32)
    shifted = resample(flat, transform_matrix({'ty': 0.25}, 1, 3)[None], 'constant', grid=True)
    np.testing.assert_allclose(shifted[0, 0, :, 0], [4, 4, 3])
    x = np.array([0.0, 10.0, 20.0, 30.0], np.float32).reshape(1, 1, 4, 1)
    half = resample(x, transform_matrix({'ty': 0.5}, 1, 4)[None], order=0, grid=True)
    np.testing.assert_allclose(half[0, 0, :, 0], [0, 20, 20, 30])
