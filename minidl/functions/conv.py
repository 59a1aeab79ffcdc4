"""Convolution as im2col + GEMM, on channels-last input.

Forward: every receptive field of ``x`` (N, H, W, C) becomes one row of the column matrix
``cols`` (N*OH*OW, kh*kw*C); the output is ``cols @ W`` with ``W`` reshaped to
(kh*kw*C, C'). Backward is the lesson's shared-weight rule made visible:

* ``dW = cols^T @ dY`` sums, for every weight, the contributions of all output positions
  that used it; ``db`` sums ``dY`` over positions;
* ``dx = col2im(dY @ W^T)`` sends each column entry back to the pixel it was read from.

DESIGN.md prefers composing an Im2col Function with matmul. This module departs from that on
purpose: the column matrix is ``kh*kw`` times larger than the input, and how it is held
decides both the memory and the speed of a convolution. A column matrix of at most ``keep``
bytes is built once and kept for backward. A larger one is never built whole: forward and
backward each walk it in tiles of about ``tile`` bytes (a few images, or a band of output rows
of one image), and each tile's columns are multiplied while they are still in cache and then
dropped. On the CPU the tiles fit in the L2/L3 caches, which makes the large layers faster
(VGG16's block1_conv2 by about a third) as well as smaller; on the GPU the tiles are large,
to keep cuBLAS busy, and only bound the memory. A composition of autograd ops could not trade
memory for recomputation this way; one Function with both passes side by side can.
"""
from typing import NamedTuple

from minidl.autograd import Function
from minidl.backends import device_of, get_array_module, kernels
from minidl.functions.activation import sum_rows
from minidl.functions.geometry import window_geometry
from minidl.functions.shape import reshape

MB = 2**20


class ColumnTiling(NamedTuple):
    """Columns of at most ``keep`` bytes are kept for backward; larger ones are built in
    tiles of about ``tile`` bytes, in forward and again in backward."""
    keep: int
    tile: int


# On the CPU, 32 MB is glibc's largest mmap threshold: a bigger matrix gets fresh pages, and
# faults on each of them, every time it is built. 4 MB tiles stay in the L2/L3 caches.
COLUMN_TILING = {'cpu': ColumnTiling(keep=32 * MB, tile=4 * MB),
                 'gpu': ColumnTiling(keep=256 * MB, tile=256 * MB)}


class Tile(NamedTuple):
    """One block of the column matrix: output rows ``rows`` of the images ``images``, read from
    the input rows ``inputs`` with ``pad=((top, bottom), (left, right))`` around that slice."""
    images: slice
    rows: slice
    inputs: slice
    pad: tuple


def column_tiles(x_shape, out_rows, geometry, tile_bytes, row_bytes):
    """Tiles that cover every output position once, each with at most ``tile_bytes`` of
    columns (``row_bytes`` per output row) unless one output row is larger already.

    Whole images are grouped while an image fits; otherwise each image is cut into bands of
    output rows, and a band reads the input rows its windows reach (with a 3x3 kernel at stride
    1, neighbouring bands share two of them).
    """
    n, height = x_shape[:2]
    rows_per_tile = max(1, tile_bytes // row_bytes)
    if rows_per_tile >= out_rows:
        step = rows_per_tile // out_rows
        return [Tile(slice(lo, min(lo + step, n)), slice(0, out_rows), slice(0, height),
                     geometry['pad']) for lo in range(0, n, step)]
    (top, _), horizontal = geometry['pad']
    stride, dilation, k = geometry['stride'][0], geometry['dilation'][0], geometry['ksize'][0]
    tiles = []
    for image in range(n):
        for lo in range(0, out_rows, rows_per_tile):
            hi = min(lo + rows_per_tile, out_rows)
            first = lo * stride - top  # input row under the band's first window, maybe padding
            end = (hi - 1) * stride - top + (k - 1) * dilation + 1
            inside = slice(max(first, 0), min(end, height))
            tiles.append(Tile(slice(image, image + 1), slice(lo, hi), inside,
                              ((inside.start - first, end - inside.stop), horizontal)))
    return tiles


class Conv2d(Function):
    """2-D convolution (cross-correlation) of (N, H, W, C) with kernels (kh, kw, C, C')."""

    def __init__(self, stride=1, padding='valid', dilation=1, tiling=None, op='conv2d'):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.tiling, self.op = tiling, op

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
        keep, tile = self.tiling or COLUMN_TILING[device_of(x)]
        row_bytes = ow * wmat.shape[0] * x.itemsize
        self.kept = x.shape[0] * oh * row_bytes <= keep
        self.tiles = column_tiles(x.shape, oh, self.geometry, keep if self.kept else tile,
                                  row_bytes)
        for t in self.tiles:
            cols = self._columns(t)
            y_rows = y[t.images, t.rows].reshape(-1, W.shape[3])  # a view of y
            xp.matmul(cols, wmat, out=y_rows)
            if b is not None:
                y_rows += b
        self.cols = cols if self.kept else None
        if self.kept:
            self.x = None  # backward reads the kept columns; only tiles are rebuilt from x
        return y

    def _columns(self, t):
        cols = kernels.im2col(self.x[t.images, t.inputs], self.geometry['ksize'],
                              self.geometry['stride'], t.pad, self.geometry['dilation'])
        return cols.reshape(-1, cols.shape[3] * cols.shape[4] * cols.shape[5])

    def backward(self, gy):
        need_x, need_w = self.needs_input_grad[:2]
        need_b = self.has_bias and self.needs_input_grad[2]
        xp = get_array_module(gy)
        gy = xp.ascontiguousarray(gy)
        wmat = self.W.reshape(-1, self.W.shape[3])
        gw = xp.zeros_like(wmat) if need_w else None
        gb = xp.zeros(gy.shape[3], gy.dtype) if need_b else None
        gx = xp.zeros(self.x_shape, gy.dtype) if need_x and len(self.tiles) > 1 else None
        for t in self.tiles:
            gy_rows = gy[t.images, t.rows].reshape(-1, gy.shape[3])
            if need_w:
                cols = self.cols if self.kept else self._columns(t)
                gw += cols.T @ gy_rows
                del cols  # a rebuilt tile is freed before its gradient takes the same space
            if need_b:
                gb += sum_rows(gy_rows)
            if need_x:
                part = self._input_gradient(t, gy_rows, wmat)
                if gx is None:  # one tile covers the whole input
                    gx = part
                else:  # neighbouring bands read some input rows in common: their parts add
                    gx[t.images, t.inputs] += part
        self.cols = None
        grads = (gx, gw.reshape(self.W.shape) if need_w else None)
        return grads + ((gb,) if self.has_bias else ())

    def _input_gradient(self, t, gy_rows, wmat):
        """``col2im(dY @ W^T)`` for one tile: the gradient of the input rows it read."""
        g, images = self.geometry, t.images.stop - t.images.start
        gcols = (gy_rows @ wmat.T).reshape(
            (images, t.rows.stop - t.rows.start, -1) + g['ksize'] + self.x_shape[3:])
        return kernels.col2im(gcols, (images, t.inputs.stop - t.inputs.start) + self.x_shape[2:],
                              g['ksize'], g['stride'], t.pad, g['dilation'])


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
