"""The memory side of convolution: column budget, GEMM into the output, bias sums by BLAS."""
import numpy as np
import pytest

import minidl
from minidl.backends import kernels
from minidl.functions.activation import sum_rows
from minidl.functions.conv import Conv2d


PER_EXAMPLE = 4 * 4 * 18 * 4  # columns of one example: OH*OW rows of kh*kw*C float32 values


@pytest.mark.parametrize('budget', [1, 3 * PER_EXAMPLE, 10**9])  # 6, 2 and 1 chunks
def test_every_column_matrix_fits_the_budget_and_chunks_agree(monkeypatch, budget):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 6, 6, 2)).astype(np.float32)
    W = rng.standard_normal((3, 3, 2, 5)).astype(np.float32)
    built, im2col = [], kernels.im2col

    def recording(*args, **kwargs):
        cols = im2col(*args, **kwargs)
        built.append(cols.nbytes)
        return cols
    monkeypatch.setattr(kernels, 'im2col', recording)

    x_t, W_t = minidl.Tensor(x, requires_grad=True), minidl.Tensor(W, requires_grad=True)
    fn = Conv2d(budget=budget)
    y = fn(x_t, W_t)
    fn_chunks = fn.chunks  # backward clears the Function
    y.backward(np.ones(y.shape, np.float32))
    assert len(built) == (1 if budget > 6 * PER_EXAMPLE else 2 * len(fn_chunks))
    assert max(built) <= max(budget, PER_EXAMPLE)

    reference = Conv2d(budget=10**9)(x, W).data
    np.testing.assert_allclose(y.data, reference, rtol=1e-5, atol=1e-5)
    assert y.data.flags.c_contiguous and y.data.dtype == np.float32


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', [(7, 3), (2, 5, 4, 6), (1, 1)])
def test_sum_rows_sums_every_position_in_the_input_dtype(xp, dtype, shape):
    a = xp.asarray(np.random.default_rng(2).standard_normal(shape).astype(dtype))
    total = sum_rows(a)
    assert total.shape == shape[-1:] and total.dtype == dtype
    np.testing.assert_allclose(minidl.backends.to_device(total, 'cpu'),
                               minidl.backends.to_device(a, 'cpu').reshape(-1, shape[-1])
                               .sum(axis=0), rtol=1e-5)
