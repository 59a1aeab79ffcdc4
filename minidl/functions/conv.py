"""Convolution as im2col + one GEMM, on channels-last input.

Forward: every receptive field of ``x`` (N, H, W, C) becomes one row of the column matrix
``cols`` (N*OH*OW, kh*kw*C); the output is ``cols @ W`` with ``W`` reshaped to
(kh*kw*C, C'). Backward is the lesson's shared-weight rule made visible:

* ``dW = cols^T @ dY`` sums, for every weight, the contributions of all output positions
  that used it; ``db`` sums ``dY`` over positions;
* ``dx = col2im(dY @ W^T)`` sends each column entry back to the pixel it was read from.

DESIGN.md prefers composing an Im2col Function with matmul. This module departs from that on
purpose: the column matrix is ``kh*kw`` times larger than the input, so a batch whose columns
exceed ``COLUMN_BUDGET`` bytes is processed in chunks, and for those the columns are not kept
but rebuilt chunk by chunk in backward. A composition of autograd ops cannot trade memory for
recomputation that way; one Function with both passes side by side can.
"""
from minidl.autograd import Function
from minidl.backends import get_array_module, kernels
from minidl.functions.activation import sum_rows
from minidl.functions.geometry import window_geometry
from minidl.functions.shape import reshape

COLUMN_BUDGET = 256 * 2**20


class Conv2d(Function):
    """2-D convolution (cross-correlation) of (N, H, W, C) with kernels (kh, kw, C, C')."""

    def __init__(self, stride=1, padding='valid', dilation=1, budget=None, op='conv2d'):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.budget, self.op = budget or COLUMN_BUDGET, op

    def forward(self, x, W, b=None):
        if W.ndim != 4:
            raise ValueError(f'{self.op}: expected a kernel (kh, kw, C, filters), got shape '
                             f'{tuple(W.shape)}')
        if x.ndim != 4 or x.shape[3] != W.shape[2]:
            raise ValueError(f'{self.op}: expected input of shape (N, H, W, {W.shape[2]}) for a '
                             f'kernel of shape {tuple(W.shape)}, got {tuple(x.shape)}')
        (oh, ow), pad, ksize, stride, dilation = window_geometry(
            x.shape[1:3], W.shape[:2], self.stride, self.padding, self.dilation, exact=True,
            op=self.op)
        self.geometry = dict(ksize=ksize, stride=stride, pad=pad, dilation=dilation)
        self.x, self.x_shape, self.W, self.has_bias = x, x.shape, W, b is not None
        xp = get_array_module(x)
        wmat = W.reshape(-1, W.shape[3])
        y = xp.empty((x.shape[0], oh, ow, W.shape[3]), dtype=x.dtype)
        y_rows = y.reshape(-1, W.shape[3])  # a view: each chunk's GEMM writes straight into y
        self.chunks = self._chunks(x.shape[0], oh * ow * wmat.shape[0] * x.itemsize)
        self.cols = [] if len(self.chunks) == 1 else None
        for lo, hi in self.chunks:
            cols = self._columns(lo, hi)
            xp.matmul(cols, wmat, out=y_rows[lo * oh * ow:hi * oh * ow])
            if self.cols is not None:
                self.cols.append(cols)
        if self.cols is not None:
            self.x = None  # backward reads the kept columns; only chunked layers rebuild them
        if b is not None:
            y += b
        return y

    def _chunks(self, n, bytes_per_example):
        """Batch slices whose column matrices each fit in the budget."""
        step = max(1, self.budget // max(bytes_per_example, 1))
        return [(lo, min(lo + step, n)) for lo in range(0, n, step)]

    def _columns(self, lo, hi):
        cols = kernels.im2col(self.x[lo:hi], **self.geometry)
        return cols.reshape(-1, cols.shape[3] * cols.shape[4] * cols.shape[5])

    def backward(self, gy):
        need_x, need_w = self.needs_input_grad[:2]
        xp = get_array_module(gy)
        wmat = self.W.reshape(-1, self.W.shape[3])
        gw = xp.zeros_like(wmat) if need_w else None
        gx = xp.empty(self.x_shape, gy.dtype) if need_x else None
        for i, (lo, hi) in enumerate(self.chunks):
            gy_rows = gy[lo:hi].reshape(-1, gy.shape[3])
            if need_w:
                cols = self.cols[i] if self.cols is not None else self._columns(lo, hi)
                gw += cols.T @ gy_rows
                del cols  # a rebuilt chunk is freed before its gradient takes the same space
            if need_x:
                gcols = (gy_rows @ wmat.T).reshape(
                    (hi - lo,) + gy.shape[1:3] + self.geometry['ksize'] + self.x_shape[3:])
                gx[lo:hi] = kernels.col2im(gcols, (hi - lo,) + self.x_shape[1:],
                                           **self.geometry)
        self.cols = None
        grads = (gx, gw.reshape(self.W.shape) if need_w else None)
        if self.has_bias:
            grads += (sum_rows(gy) if self.needs_input_grad[2] else None,)
        return grads


def conv2d(x, W, b=None, stride=1, padding='valid', dilation=1):
    """Convolve (N, H, W, C) with (kh, kw, C, C') kernels -> (N, H', W', C').

    ``padding`` is 'valid', 'same' (TensorFlow's) or an int of zeros on each side;
    ``stride`` and ``dilation`` are ints or (vertical, horizontal) pairs.
    """
    fn = Conv2d(stride, padding, dilation)
    return fn(x, W) if b is None else fn(x, W, b)


def conv1d(x, W, b=None, stride=1, padding='valid', dilation=1):
    """Convolve sequences (N, L, C) with (k, C, C') kernels: conv2d with height 1."""
    if x.ndim != 3 or W.ndim != 3:
        raise ValueError(f'conv1d: expected input (N, L, C) and kernel (k, C, filters), got '
                         f'{tuple(x.shape)} and {tuple(W.shape)}')
    n, length, c = x.shape
    k, cin, cout = W.shape
    fn = Conv2d((1, stride), ('valid', padding), (1, dilation), op='conv1d')
    args = (reshape(x, (n, 1, length, c)), reshape(W, (1, k, cin, cout)))
    y = fn(*args) if b is None else fn(*args, b)
    return reshape(y, (n, y.shape[2], cout))
