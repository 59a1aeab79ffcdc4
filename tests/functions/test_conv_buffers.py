"""The memory side of convolution: column tiles, the GEMM into the output, bias sums by BLAS."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl
from minidl.backends import kernels
from minidl.functions.activation import sum_rows
from minidl.functions.conv import ColumnTiling, Conv2d


KEEP_ALL = ColumnTiling(keep=2**40, tile=2**40)


def conv_with_gradients(tiling, x, W, b, **conv):
    """Its tiles, whether it kept its columns, its output and (dx, dW, db) of one Conv2d under
    ``tiling``, for a fixed upstream gradient."""
    tensors = [minidl.Tensor(a, requires_grad=True) for a in (x, W, b)]
    fn = Conv2d(tiling=tiling, **conv)
    y = fn(*tensors)
    tiles, kept = fn.tiles, fn.cols is not None  # backward frees the Function's state
    y.backward(np.cos(np.arange(y.size)).reshape(y.shape).astype(x.dtype))
    return tiles, kept, y.data, [t.grad for t in tensors]


@st.composite
def tiled_case(draw):
    k, s, d = (draw(st.integers(1, 3)) for _ in range(3))
    padding = draw(st.sampled_from(['valid', 'same', 1]))
    out = draw(st.integers(1, 5))
    span = d * (k - 1) + 1
    size = out * s if padding == 'same' else (out - 1) * s + span - (2 if padding == 1 else 0)
    unread = 0 if padding == 'same' else draw(st.integers(0, s - 1))  # floored windows
    return dict(n=draw(st.integers(1, 3)), size=max(size + unread, 1), k=k, stride=s,
                dilation=d, padding=padding, groups=draw(st.sampled_from([1, 2])),
                tile_rows=draw(st.integers(1, 12)))


@settings(max_examples=40, deadline=None)
@given(case=tiled_case())
def test_tiles_give_the_same_output_and_gradients_as_whole_columns(case):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((case['n'], case['size'], 4, 2))
    W = rng.standard_normal((case['k'], case['k'], 2 // case['groups'], 4))
    b = rng.standard_normal(4)
    conv = dict(stride=case['stride'], padding=case['padding'], dilation=case['dilation'],
                groups=case['groups'])
    try:
        _, _, y, grads = conv_with_gradients(KEEP_ALL, x, W, b, **conv)
    except ValueError:  # a window larger than this input
        return
    row_bytes = y.shape[2] * case['k'] ** 2 * 2 * x.itemsize
    _, kept, y_t, grads_t = conv_with_gradients(
        ColumnTiling(keep=0, tile=case['tile_rows'] * row_bytes), x, W, b, **conv)
    assert not kept
    np.testing.assert_allclose(y_t, y, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads_t, grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_bands_of_rows_pass_the_gradient_check(check_grad):
    rng = np.random.default_rng(3)
    x, W, b = (rng.standard_normal(s) for s in ((2, 7, 5, 2), (3, 3, 2, 3), (3,)))
    row_bytes = 5 * 9 * 2 * 8
    bands = ColumnTiling(keep=0, tile=2 * row_bytes)
    fn = Conv2d(padding='same', tiling=bands)
    fn(x, W, b)
    assert [(t.rows.start, t.rows.stop) for t in fn.tiles[:4]] == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert [t.pad[0] for t in fn.tiles[:4]] == [(1, 0), (0, 0), (0, 0), (0, 1)]
    check_grad(lambda x, W, b: Conv2d(padding='same', tiling=bands)(x, W, b), x, W, b)


ROW = 4 * 18 * 4  # columns of one output row: 4 windows of 3*3*2 float32 values


@pytest.mark.parametrize('tile, tiles', [(1, 24), (3 * ROW, 12), (4 * ROW, 6), (9 * ROW, 3),
                                         (10**9, 1)])  # rows, bands, 1 and 2 images, all
def test_every_column_tile_fits_and_big_columns_are_rebuilt_not_kept(monkeypatch, tile, tiles):
    x = np.random.default_rng(1).standard_normal((6, 6, 6, 2)).astype(np.float32)
    W = np.random.default_rng(2).standard_normal((3, 3, 2, 5)).astype(np.float32)
    built, im2col = [], kernels.im2col

    def recording(*args, **kwargs):
        cols = im2col(*args, **kwargs)
        built.append(cols.nbytes)
        return cols
    monkeypatch.setattr(kernels, 'im2col', recording)
    tiles_, kept, y, _ = conv_with_gradients(ColumnTiling(keep=0, tile=tile), x, W,
                                             np.zeros(5, 'f4'))
    assert len(tiles_) == tiles and len(built) == 2 * tiles and not kept
    assert max(built) <= max(tile, ROW)

    built.clear()
    _, kept, y_kept, _ = conv_with_gradients(None, x, W, np.zeros(5, 'f4'))
    assert kept and len(built) == 1
    np.testing.assert_allclose(y, y_kept, rtol=1e-5, atol=1e-5)
    assert y.flags.c_contiguous and y.dtype == np.float32


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', [(7, 3), (2, 5, 4, 6), (1, 1)])
def test_sum_rows_sums_every_position_in_the_input_dtype(xp, dtype, shape):
    a = xp.asarray(np.random.default_rng(2).standard_normal(shape).astype(dtype))
    total = sum_rows(a)
    assert total.shape == shape[-1:] and total.dtype == dtype
    np.testing.assert_allclose(minidl.backends.to_device(total, 'cpu'),
                               minidl.backends.to_device(a, 'cpu').reshape(-1, shape[-1])
                               .sum(axis=0), rtol=1e-5)
