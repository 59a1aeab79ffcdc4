// Max and average pooling over (kh, kw) windows, and global max pooling; channels-last.
//
// x   (N, H, W, C)  ->  y (N, OH, OW, C), OH = (H + top + bottom - kh) / sh + 1 (likewise OW).
// Window (i, j) covers input rows i*sh - top + p and columns j*sw - left + q for p < kh, q < kw;
// positions outside the input are padding: they never win a max and are not counted in a mean.
// Forward kernels run one thread per output element, backward kernels one thread per input
// element gathering from every window that covers it (no atomics, deterministic).
#include "common.cuh"

// Window i along one axis starts at `start` = i*stride - pad (maybe inside the padding) and
// spans k positions; input row h sits at window position h - start. [begin, end) is the part
// inside the input [0, size), never empty when the padding is smaller than k on each side.
template <typename I>
struct Span {
    I start, begin, end;
};

template <typename I>
__device__ __forceinline__ Span<I> window_span(I i, I k, I stride, I pad, I size) {
    const I start = i * stride - pad;
    return {start, max(start, I(0)), min(start + k, size)};
}

// True when v should replace the current maximum: strictly greater, so the first position in
// row-major window order wins ties; and NaN beats numbers, as in NumPy's max and argmax.
template <typename T>
__device__ __forceinline__ bool beats(T v, T best) {
    return v > best || (isnan(v) && !isnan(best));
}

// y[n, i, j, c] = max over the window; argmax[n, i, j, c] = p*kw + q of the winner, stored as
// A, the narrowest integer type that holds kh*kw positions (unsigned char up to 16x16).
template <typename T, typename I, typename A>
__global__ void maxpool2d_forward_kernel(const T* x, T* y, A* argmax,
                                         I N, I H, I W, I C, I OH, I OW, I kh, I kw,
                                         I sh, I sw, I top, I left) {
    const I total = N * OH * OW * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        I rest = index;
        const I c = rest % C;  rest /= C;
        const I j = rest % OW; rest /= OW;
        const I i = rest % OH;
        const I n = rest / OH;
        const Span<I> rows = window_span(i, kh, sh, top, H);
        const Span<I> cols = window_span(j, kw, sw, left, W);
        T best = x[((n * H + rows.begin) * W + cols.begin) * C + c];
        I best_at = (rows.begin - rows.start) * kw + (cols.begin - cols.start);
        for (I h = rows.begin; h < rows.end; ++h) {
            for (I w = cols.begin; w < cols.end; ++w) {
                const T v = x[((n * H + h) * W + w) * C + c];
                if (beats(v, best)) {
                    best = v;
                    best_at = (h - rows.start) * kw + (w - cols.start);
                }
            }
        }
        y[index] = best;
        argmax[index] = A(best_at);
    }
}

// dx[n, h, w, c] = sum of dy over the windows whose argmax points at (h, w).
template <typename T, typename I, typename A>
__global__ void maxpool2d_backward_kernel(const T* dy, const A* argmax, T* dx,
                                          I N, I H, I W, I C, I OH, I OW, I kh, I kw,
                                          I sh, I sw, I top, I left) {
    const I total = N * H * W * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        I rest = index;
        const I c = rest % C; rest /= C;
        const I w = rest % W; rest /= W;
        const I h = rest % H;
        const I n = rest / H;
        T sum = T(0);
        for (I p = 0; p < kh; ++p) {
            const I i = window_at(h + top, p, sh, OH);
            if (i < 0) {
                continue;
            }
            for (I q = 0; q < kw; ++q) {
                const I j = window_at(w + left, q, sw, OW);
                if (j < 0) {
                    continue;
                }
                const I out = ((n * OH + i) * OW + j) * C + c;
                if (I(argmax[out]) == p * kw + q) {
                    sum += dy[out];
                }
            }
        }
        dx[index] = sum;
    }
}

// y[n, i, j, c] = mean of the window's positions that lie inside the input.
template <typename T, typename I>
__global__ void avgpool2d_forward_kernel(const T* x, T* y,
                                         I N, I H, I W, I C, I OH, I OW, I kh, I kw,
                                         I sh, I sw, I top, I left) {
    const I total = N * OH * OW * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        I rest = index;
        const I c = rest % C;  rest /= C;
        const I j = rest % OW; rest /= OW;
        const I i = rest % OH;
        const I n = rest / OH;
        const Span<I> rows = window_span(i, kh, sh, top, H);
        const Span<I> cols = window_span(j, kw, sw, left, W);
        T sum = T(0);
        for (I h = rows.begin; h < rows.end; ++h) {
            for (I w = cols.begin; w < cols.end; ++w) {
                sum += x[((n * H + h) * W + w) * C + c];
            }
        }
        y[index] = sum / T((rows.end - rows.begin) * (cols.end - cols.begin));
    }
}

// dx[n, h, w, c] = sum over the windows covering (h, w) of dy / (that window's count).
template <typename T, typename I>
__global__ void avgpool2d_backward_kernel(const T* dy, T* dx,
                                          I N, I H, I W, I C, I OH, I OW, I kh, I kw,
                                          I sh, I sw, I top, I left) {
    const I total = N * H * W * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        I rest = index;
        const I c = rest % C; rest /= C;
        const I w = rest % W; rest /= W;
        const I h = rest % H;
        const I n = rest / H;
        T sum = T(0);
        for (I p = 0; p < kh; ++p) {
            const I i = window_at(h + top, p, sh, OH);
            if (i < 0) {
                continue;
            }
            const Span<I> rows = window_span(i, kh, sh, top, H);
            for (I q = 0; q < kw; ++q) {
                const I j = window_at(w + left, q, sw, OW);
                if (j < 0) {
                    continue;
                }
                const Span<I> cols = window_span(j, kw, sw, left, W);
                const T count = T((rows.end - rows.begin) * (cols.end - cols.begin));
                sum += dy[((n * OH + i) * OW + j) * C + c] / count;
            }
        }
        dx[index] = sum;
    }
}

// x (N, L, C) -> y (N, C) = max over L, argmax (N, C) in [0, L) as A (the narrowest integer
// type that holds L positions), first occurrence on ties.
// One thread per (n, c): neighbouring threads read neighbouring channels, so reads coalesce.
template <typename T, typename I, typename A>
__global__ void global_maxpool_forward_kernel(const T* x, T* y, A* argmax,
                                              I N, I L, I C) {
    const I total = N * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const I c = index % C;
        const T* column = x + (index / C) * L * C + c;
        T best = column[0];
        I best_at = 0;
        for (I l = 1; l < L; ++l) {
            if (beats(column[l * C], best)) {
                best = column[l * C];
                best_at = l;
            }
        }
        y[index] = best;
        argmax[index] = A(best_at);
    }
}

// dy (N, C) -> dx (N, L, C): dx[n, l, c] = dy[n, c] where l == argmax[n, c], else 0.
// One thread per dx element, so dx needs no zeroing beforehand.
template <typename T, typename I, typename A>
__global__ void global_maxpool_backward_kernel(const T* dy, const A* argmax, T* dx,
                                               I N, I L, I C) {
    const I total = N * L * C;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const I c = index % C;
        const I l = (index / C) % L;
        const I source = (index / (L * C)) * C + c;
        dx[index] = I(argmax[source]) == l ? dy[source] : T(0);
    }
}
