// Softmax cross-entropy, fused and numerically stable.
//
// logits, probs, dlogits  (N, K)    one row of K class scores per sample
// loss, g                 (N,)      per-sample loss and its upstream gradient
// The targets come in one of two forms; the other pointer is nullptr:
//   labels  (N,) int64 class indices (sparse), or
//   target  (N, K) one-hot or soft labels in the logits' dtype (dense).
//
// With m = max_k x_k and s = sum_k exp(x_k - m): p_k = exp(x_k - m) / s and
// log p_k = (x_k - m) - log s. Every exp sees a non-positive argument and s >= 1, so logits
// of +-1e4 give finite results.
//
// One warp (32 threads) per row: the lanes stride over the K classes and combine their partial
// max and sums with register shuffles. That fits classifier widths (10 to 1000 classes) with no
// shared memory and no __syncthreads; a block of 256 threads serves 8 rows.
#include "common.cuh"

constexpr int WARP_SIZE = 32;
constexpr unsigned int FULL_WARP = 0xFFFFFFFFu;

// Every lane ends with the max / sum over the warp's 32 values (butterfly reduction).
template <typename T>
__device__ __forceinline__ T warp_max(T value) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset /= 2) {
        value = fmax(value, __shfl_xor_sync(FULL_WARP, value, offset));
    }
    return value;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T value) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset /= 2) {
        value += __shfl_xor_sync(FULL_WARP, value, offset);
    }
    return value;
}

// Warp-per-row loops: `for (I row = warp_start<I>(); row < N; row += warp_stride<I>())`. All
// lanes of a warp see the same rows, so whole warps enter and leave the loop together, as the
// shuffles require. The host launches blocks whose size is a multiple of WARP_SIZE.
template <typename I>
__device__ __forceinline__ I warp_start() {
    return grid_start<I>() / WARP_SIZE;
}

template <typename I>
__device__ __forceinline__ I warp_stride() {
    return grid_stride<I>() / WARP_SIZE;
}

// probs = softmax(logits); loss = -sum_k t_k log p_k  (= -log p_label for sparse labels).
template <typename T, typename I>
__global__ void softmax_xent_forward_kernel(const T* logits, const long long* labels,
                                            const T* target, T* loss, T* probs, I N, I K) {
    const int lane = threadIdx.x % WARP_SIZE;
    for (I row = warp_start<I>(); row < N; row += warp_stride<I>()) {
        const T* x = logits + row * K;
        T m = x[0];
        for (I k = lane; k < K; k += WARP_SIZE) {
            m = fmax(m, x[k]);
        }
        m = warp_max(m);
        T s = T(0);
        for (I k = lane; k < K; k += WARP_SIZE) {
            s += exp(x[k] - m);
        }
        s = warp_sum(s);
        const T log_s = log(s);
        T xent = T(0);
        for (I k = lane; k < K; k += WARP_SIZE) {
            const T z = x[k] - m;
            probs[row * K + k] = exp(z) / s;
            if (target) {
                xent -= target[row * K + k] * (z - log_s);
            }
        }
        xent = labels ? log_s - (x[labels[row]] - m) : warp_sum(xent);
        if (lane == 0) {
            loss[row] = xent;
        }
    }
}

// dlogits = g * (probs * sum_k t_k - t); sparse labels are the one-hot case, sum_k t_k = 1.
template <typename T, typename I>
__global__ void softmax_xent_backward_kernel(const T* probs, const long long* labels,
                                             const T* target, const T* g, T* dlogits,
                                             I N, I K) {
    const int lane = threadIdx.x % WARP_SIZE;
    for (I row = warp_start<I>(); row < N; row += warp_stride<I>()) {
        const T* p = probs + row * K;
        T* d = dlogits + row * K;
        if (labels) {
            const I label = labels[row];
            for (I k = lane; k < K; k += WARP_SIZE) {
                d[k] = g[row] * (p[k] - T(k == label));
            }
        } else {
            const T* t = target + row * K;
            T mass = T(0);
            for (I k = lane; k < K; k += WARP_SIZE) {
                mass += t[k];
            }
            mass = warp_sum(mass);
            for (I k = lane; k < K; k += WARP_SIZE) {
                d[k] = g[row] * (p[k] * mass - t[k]);
            }
        }
    }
}
