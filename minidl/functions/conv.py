"""Convolution as im2col + GEMM, on channels-last input, and the family built on it.

Forward: every receptive field of ``x`` (N, H, W, C) becomes one row of the column matrix
``cols`` (N*OH*OW, kh*kw*C); the output is ``cols @ W`` with ``W`` reshaped to
(kh*kw*C, C'). Backward is the lesson's shared-weight rule made visible:

* ``dW = cols^T @ dY`` sums, for every weight, the contributions of all output positions
  that used it; ``db`` sums ``dY`` over positions;
* ``dx = col2im(dY @ W^T)`` sends each column entry back to the pixel it was read from.

With ``groups`` the channels are cut into groups that never meet, and each product is one
per group; a depthwise convolution is the case of one group per channel, a separable one a
depthwise convolution followed by a product over channels. The transposed convolution runs
the convolution's input gradient forward: ``col2im(x @ W^T)``, composed from a matmul and a
:class:`Col2im` Function whose backward is im2col.

DESIGN.md prefers composing an Im2col Function with matmul. Conv2d departs from that on
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
from minidl.functions.geometry import transposed_length, window_geometry, window_length
from minidl.functions.shape import reshape, transpose

MB = 2**20


class ColumnTiling(NamedTuple):
    """Columns of at most ``keep`` bytes are kept for backward; larger ones are built in
    tiles of about ``tile`` bytes, in forward and again in backward. Each tile's GEMM reads
    the whole kernel again, so a tile holds at least ``kernel_reads`` times the kernel's bytes,
    and columns no larger than that are kept."""
    keep: int
    tile: int
    kernel_reads: int = 0


# On the CPU, a training step runs best with every column matrix over 4 MB cut into 4 MB tiles,
# which stay in the L2/L3 caches while they are multiplied (MNIST conv2's 8.9 MB of columns,
# kept whole, made a step 4-9% slower), unless the kernel is about as large as the columns
# (VGG16's block5 convolutions: a 9.4 MB kernel beside 12 MB of columns, 1.3x slower in tiles).
COLUMN_TILING = {'cpu': ColumnTiling(keep=4 * MB, tile=4 * MB, kernel_reads=4),
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



def _by_group(a, taps, groups):
    """Column rows (M, taps*C) -> (groups, M, taps*C/groups): each group's channels alone.

    A view when ``groups`` is 1; otherwise one copy, so that each group's GEMM reads
    contiguous rows."""
    m = a.shape[0]
    return a.reshape(m, taps, groups, -1).transpose(2, 0, 1, 3).reshape(groups, m, -1)


def _from_groups(a, taps):
    """The inverse of :func:`_by_group`: (groups, M, taps*C/groups) -> (M, taps*C)."""
    groups, m, _ = a.shape
    return a.reshape(groups, m, taps, -1).transpose(1, 2, 0, 3).reshape(m, -1)


def _outputs_by_group(rows, groups):
    """Output rows (M, C') seen as (groups, M, C'/groups), a view: group g made channels
    ``g*C'/groups`` to ``(g+1)*C'/groups - 1``."""
    return rows.reshape(rows.shape[0], groups, -1).transpose(1, 0, 2)


class Conv2d(Function):
    """2-D convolution (cross-correlation) of (N, H, W, C) with kernels (kh, kw, C/groups, C').

    With ``groups`` g, the channels are cut into g groups and group i's C'/g outputs see only
    group i's C/g inputs (Keras's ``groups``; a depthwise convolution has one group per
    channel). Every GEMM below is then g GEMMs, one per group, batched in one call.
    """

    def __init__(self, stride=1, padding='valid', dilation=1, groups=1, tiling=None,
                 op='conv2d'):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.tiling, self.op = groups, tiling, op

    def _check(self, x, W):
        if W.ndim != 4:
            raise ValueError(f'{self.op}: expected a kernel (kh, kw, C/groups, filters), got '
                             f'shape {tuple(W.shape)}')
        channels = W.shape[2] * self.groups
        if x.ndim != 4 or x.shape[3] != channels:
            raise ValueError(f'{self.op}: expected input of shape (N, H, W, {channels}) for a '
                             f'kernel of shape {tuple(W.shape)} and groups={self.groups}, got '
                             f'{tuple(x.shape)}')
        if W.shape[3] % self.groups:
            raise ValueError(f'{self.op}: {W.shape[3]} filters cannot be split into '
                             f'groups={self.groups}')

    def forward(self, x, W, b=None):
        self._check(x, W)
        (oh, ow), pad, ksize, stride, dilation = window_geometry(
            x.shape[1:3], W.shape[:2], self.stride, self.padding, self.dilation, op=self.op)
        self.geometry = dict(ksize=ksize, stride=stride, pad=pad, dilation=dilation)
        self.x, self.x_shape, self.W, self.has_bias = x, x.shape, W, b is not None
        xp = get_array_module(x)
        wmat = self._kernel_by_group()
        y = xp.empty((x.shape[0], oh, ow, W.shape[3]), dtype=x.dtype)
        keep, tile, kernel_reads = self.tiling or COLUMN_TILING[device_of(x)]
        keep, tile = (max(size, kernel_reads * W.nbytes) for size in (keep, tile))
        row_bytes = ow * ksize[0] * ksize[1] * x.shape[3] * x.itemsize
        self.kept = x.shape[0] * oh * row_bytes <= keep
        self.tiles = column_tiles(x.shape, oh, self.geometry, keep if self.kept else tile,
                                  row_bytes)
        for t in self.tiles:
            cols = self._columns(t)
            y_rows = y[t.images, t.rows].reshape(-1, W.shape[3])  # a view of y
            if self.groups == 1:  # straight into y; a grouped view of y is not contiguous
                xp.matmul(cols, wmat, out=y_rows[None])
            else:
                _outputs_by_group(y_rows, self.groups)[...] = xp.matmul(cols, wmat)
            if b is not None:
                y_rows += b
        self.cols = cols if self.kept else None
        if self.kept:
            self.x = None  # backward reads the kept columns; only tiles are rebuilt from x
        return y

    def _kernel_by_group(self):
        """The kernel as (groups, kh*kw*C/groups, C'/groups) matrices (a view)."""
        return _outputs_by_group(self.W.reshape(-1, self.W.shape[3]), self.groups)

    def _columns(self, t):
        """The column rows of tile ``t``, by group: (groups, M, kh*kw*C/groups)."""
        g = self.geometry
        cols = kernels.im2col(self.x[t.images, t.inputs], g['ksize'], g['stride'], t.pad,
                              g['dilation'])
        rows = cols.reshape(-1, cols.shape[3] * cols.shape[4] * cols.shape[5])
        return _by_group(rows, g['ksize'][0] * g['ksize'][1], self.groups)

    def backward(self, gy):
        need_x, need_w = self.needs_input_grad[:2]
        need_b = self.has_bias and self.needs_input_grad[2]
        xp = get_array_module(gy)
        gy = xp.ascontiguousarray(gy)
        wmat = self._kernel_by_group()
        gw = xp.zeros(wmat.shape, gy.dtype) if need_w else None
        gb = xp.zeros(gy.shape[3], gy.dtype) if need_b else None
        gx = xp.zeros(self.x_shape, gy.dtype) if need_x and len(self.tiles) > 1 else None
        for t in self.tiles:
            gy_rows = gy[t.images, t.rows].reshape(-1, gy.shape[3])
            if need_w:
                cols = self.cols if self.kept else self._columns(t)
                gw += cols.transpose(0, 2, 1) @ _outputs_by_group(gy_rows, self.groups)
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
        if need_w:  # (groups, kh*kw*C/groups, C'/groups) -> (kh, kw, C/groups, C')
            gw = gw.transpose(1, 0, 2).reshape(self.W.shape)
        return (gx, gw) + ((gb,) if self.has_bias else ())

    def _input_gradient(self, t, gy_rows, wmat):
        """``col2im(dY @ W^T)`` for one tile: the gradient of the input rows it read."""
        g, images = self.geometry, t.images.stop - t.images.start
        gcols = _from_groups(_outputs_by_group(gy_rows, self.groups) @ wmat.transpose(0, 2, 1),
                             g['ksize'][0] * g['ksize'][1])
        gcols = gcols.reshape((images, t.rows.stop - t.rows.start, -1) + g['ksize'] +
                              self.x_shape[3:])
        return kernels.col2im(gcols, (images, t.inputs.stop - t.inputs.start) + self.x_shape[2:],
                              g['ksize'], g['stride'], t.pad, g['dilation'])


def conv2d(x, W, b=None, stride=1, padding='valid', dilation=1, groups=1):
    """Convolve (N, H, W, C) with (kh, kw, C/groups, C') kernels -> (N, H', W', C').

    ``H' = floor((H - F + 2P)/S) + 1`` with ``F = dilation*(kh - 1) + 1``. ``padding`` is
    'valid', 'same' (TensorFlow's) or an int of zeros on each side; ``stride`` and ``dilation``
    are ints or (vertical, horizontal) pairs.
    """
    fn = Conv2d(stride, padding, dilation, groups)
    return fn(x, W) if b is None else fn(x, W, b)


def _as_2d(x, W, op):
    """Sequences (N, L, C) and kernels (k, ...) as images (N, 1, L, C) and (1, k, ...)."""
    if x.ndim != 3 or W.ndim != 3:
        raise ValueError(f'{op}: expected input (N, L, C) and a kernel of 3 axes, got '
                         f'{tuple(x.shape)} and {tuple(W.shape)}')
    return reshape(x, (x.shape[0], 1) + x.shape[1:]), reshape(W, (1,) + W.shape)


def _as_1d(y):
    return reshape(y, (y.shape[0],) + y.shape[2:])


def conv1d(x, W, b=None, stride=1, padding='valid', dilation=1, groups=1):
    """Convolve sequences (N, L, C) with (k, C/groups, C') kernels: conv2d with height 1.
    ``padding`` may also be 'causal': all ``dilation*(k-1)`` zeros go before the sequence."""
    x2, W2 = _as_2d(x, W, 'conv1d')
    fn = Conv2d((1, stride), ('valid', padding), (1, dilation), groups, op='conv1d')
    return _as_1d(fn(x2, W2) if b is None else fn(x2, W2, b))


def depthwise_conv2d(x, W, b=None, stride=1, padding='valid', dilation=1):
    """Convolve each channel of (N, H, W, C) alone with its M kernels (kh, kw, C, M) ->
    (N, H', W', C*M), output channel ``c*M + m`` from kernel ``[:, :, c, m]``: a grouped
    conv2d with one group per channel."""
    kh, kw, c, m = W.shape
    return conv2d(x, reshape(W, (kh, kw, 1, c * m)), b, stride, padding, dilation, groups=c)


def separable_conv2d(x, depthwise, pointwise, b=None, stride=1, padding='valid', dilation=1):
    """A depthwise convolution (kh, kw, C, M) followed by a pointwise one (1, 1, C*M, C'):
    (N, H, W, C) -> (N, H', W', C'). The pointwise step is a matrix product over channels."""
    y = depthwise_conv2d(x, depthwise, None, stride, padding, dilation)
    rows = reshape(y, (-1, y.shape[3])) @ reshape(pointwise, pointwise.shape[2:])
    out = reshape(rows, y.shape[:3] + pointwise.shape[3:])
    return out if b is None else out + b


def separable_conv1d(x, depthwise, pointwise, b=None, stride=1, padding='valid', dilation=1):
    """separable_conv2d on sequences (N, L, C): kernels (k, C, M) and (1, C*M, C')."""
    x2, d2 = _as_2d(x, depthwise, 'separable_conv1d')
    return _as_1d(separable_conv2d(x2, d2, reshape(pointwise, (1,) + pointwise.shape), b,
                                   (1, stride), ('valid', padding), (1, dilation)))


class Col2im(Function):
    """Columns (N, H, W, kh, kw, C) -> images (N, H', W', C): each entry is added to the output
    pixel under it. It is the adjoint of im2col, so its backward is im2col."""

    def __init__(self, out_shape, geometry):
        self.out_shape, self.geometry = out_shape, geometry

    def forward(self, cols):
        return kernels.col2im(cols, self.out_shape, **self.geometry)

    def backward(self, gy):
        return kernels.im2col(gy, **self.geometry)


def conv2d_transpose(x, W, b=None, stride=1, padding='valid', output_padding=None,
                     dilation=1):
    """The transposed convolution of (N, H, W, C) with Keras's kernel (kh, kw, C', C) ->
    (N, H', W', C'): the input gradient of the convolution that maps (N, H', W', C') to
    (N, H, W, C) with that kernel, so the columns ``x @ W^T`` are summed back by col2im.

    ``H' = (H - 1) S + F - 2P + output_padding`` (P = F // 2 for 'same', 0 for 'valid');
    without ``output_padding``, ``H' = H S`` ('same') or ``H S + max(F - S, 0)`` ('valid').
    """
    if x.ndim != 4 or W.ndim != 4 or x.shape[3] != W.shape[3]:
        raise ValueError(f'conv2d_transpose: expected input (N, H, W, C) and a kernel '
                         f'(kh, kw, filters, C) with the same C, got {tuple(x.shape)} and '
                         f'{tuple(W.shape)}')
    n, h, w, c = x.shape
    kh, kw, filters, _ = W.shape
    axes = [a if isinstance(a, tuple) else (a, a) for a in (stride, padding, dilation)]
    extra = output_padding if isinstance(output_padding, tuple) else (output_padding,) * 2
    out, pads = [], []
    for size, k, s, p, d, e in zip((h, w), (kh, kw), *axes, extra):
        length = transposed_length(size, k, s, p, e, d)
        reached, pad = window_length(length, k, s, p, d, op='conv2d_transpose')
        if reached != size:
            raise ValueError(f'conv2d_transpose: an output of {length} does not give back '
                             f'{size} positions under kernel {k}, stride {s}, padding {p!r}')
        out.append(length)
        pads.append(pad)
    geometry = dict(ksize=(kh, kw), stride=tuple(axes[0]), pad=tuple(pads),
                    dilation=tuple(axes[2]))
    cols = reshape(x, (n * h * w, c)) @ transpose(reshape(W, (kh * kw * filters, c)))
    y = Col2im((n, *out, filters), geometry)(reshape(cols, (n, h, w, kh, kw, filters)))
    return y if b is None else y + b


def conv1d_transpose(x, W, b=None, stride=1, padding='valid', output_padding=None,
                     dilation=1):
    """conv2d_transpose on sequences (N, L, C) with kernels (k, C', C)."""
    x2, W2 = _as_2d(x, W, 'conv1d_transpose')
    return _as_1d(conv2d_transpose(x2, W2, b, (1, stride), ('valid', padding),
                                   (None, output_padding), (1, dilation)))
