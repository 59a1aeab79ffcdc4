// Helpers shared by every minidl kernel family.
//
// Every kernel is a template over two types:
//   T  the element type, float or double: a kernel keeps its input's dtype end to end;
//   I  the index type, int or long long. The host picks int whenever every index of the call
//      fits in 32 bits, because the data-movement kernels turn flat indices into (n, h, w, c)
//      with integer division, and 64-bit division costs several times more than 32-bit.
//
// The loader in minidl/backends/cuda.py pastes this file in place of its #include line, so the
// guard below (not #pragma once, which warns in a main file) keeps both ways of compiling clean.
#ifndef MINIDL_COMMON_CUH
#define MINIDL_COMMON_CUH

// Grid-stride loops: `for (I i = grid_start<I>(); i < n; i += grid_stride<I>())` visits every
// i in [0, n) exactly once, whatever the grid size, so the host may cap the number of blocks.
template <typename I>
__device__ __forceinline__ I grid_start() {
    return static_cast<I>(blockIdx.x) * static_cast<I>(blockDim.x) + static_cast<I>(threadIdx.x);
}

template <typename I>
__device__ __forceinline__ I grid_stride() {
    return static_cast<I>(blockDim.x) * static_cast<I>(gridDim.x);
}

// The output index i of the window that reads padded coordinate `xp` at window offset `offset`
// (offset = p * dilation for window position p), i.e. the i with i * stride + offset == xp and
// 0 <= i < out_size; -1 when there is none. This inverts the im2col read
// xp = i * stride + p * dilation, which is how the backward kernels gather instead of scatter.
template <typename I>
__device__ __forceinline__ I window_at(I xp, I offset, I stride, I out_size) {
    const I start = xp - offset;
    if (start < 0 || start % stride != 0) {
        return -1;
    }
    const I i = start / stride;
    return i < out_size ? i : -1;
}

// The "lowbias32" integer hash that drives dropout; the same bits as mix32 in
// minidl/backends/reference.py (unsigned arithmetic wraps modulo 2**32 in both).
__device__ __forceinline__ unsigned int mix32(unsigned int x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

#endif  // MINIDL_COMMON_CUH
