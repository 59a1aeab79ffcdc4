// im2col and its adjoint col2im for channels-last images.
//
// x     (N, H, W, C)                 the input image batch
// cols  (N, OH, OW, kh, kw, C)       one row of kh*kw*C values per output position
//   cols[n, i, j, p, q, c] = xpad[n, i*sh + p*dh, j*sw + q*dw, c]
// where xpad is x with `top` rows and `left` columns of zeros before it (the rows and columns
// after it never need to exist: reading past the input is reading padding).
// OH = (H + top + bottom - dh*(kh-1) - 1) / sh + 1, and likewise OW; the host computes them.
#include "common.cuh"

// One thread per cols element, c fastest: neighbouring threads read neighbouring channels of
// one pixel and write neighbouring entries of cols, so both sides are coalesced.
template <typename T, typename I>
__global__ void im2col_kernel(const T* x, T* cols,
                              I N, I H, I W, I C, I OH, I OW, I kh, I kw,
                              I sh, I sw, I top, I left, I dh, I dw) {
    const I total = N * OH * OW * kh * kw * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        I rest = index;
        const I c = rest % C;  rest /= C;
        const I q = rest % kw; rest /= kw;
        const I p = rest % kh; rest /= kh;
        const I j = rest % OW; rest /= OW;
        const I i = rest % OH;
        const I n = rest / OH;
        const I h = i * sh - top + p * dh;
        const I w = j * sw - left + q * dw;
        const bool inside = 0 <= h && h < H && 0 <= w && w < W;
        cols[index] = inside ? x[((n * H + h) * W + w) * C + c] : T(0);
    }
}

// The adjoint of im2col as a gather: one thread per input element (n, h, w, c) sums every
// cols entry that read it. Window position (p, q) of output (i, j) reads (h, w) exactly when
// i*sh + p*dh == h + top and j*sw + q*dw == w + left, so the thread walks the kh*kw window
// positions and asks window_at which output, if any, put it there. Each dx element has one
// writer and a fixed summation order: no atomics, and the result is the same on every run.
template <typename T, typename I>
__global__ void col2im_kernel(const T* cols, T* dx,
                              I N, I H, I W, I C, I OH, I OW, I kh, I kw,
                              I sh, I sw, I top, I left, I dh, I dw) {
    const I total = N * H * W * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        I rest = index;
        const I c = rest % C; rest /= C;
        const I w = rest % W; rest /= W;
        const I h = rest % H;
        const I n = rest / H;
        T sum = T(0);
        for (I p = 0; p < kh; ++p) {
            const I i = window_at(h + top, p * dh, sh, OH);
            if (i < 0) {
                continue;
            }
            for (I q = 0; q < kw; ++q) {
                const I j = window_at(w + left, q * dw, sw, OW);
                if (j >= 0) {
                    sum += cols[((((n * OH + i) * OW + j) * kh + p) * kw + q) * C + c];
                }
            }
        }
        dx[index] = sum;
    }
}
