// Bias + activation, fused: the forward pass of every Dense and Conv layer ends here.
//
// x, y, dy, dz  (..., C)   any leading shape, flattened; C is the channel (last) axis
// b             (C,)       or nullptr for a layer without bias
#include "common.cuh"

// Activation codes; minidl/backends/cuda.py passes the same numbers (_ACTIVATIONS). Every thread
// of a launch takes the same branch of the switch on it, so the switch costs no divergence.
enum Activation { LINEAR = 0, RELU = 1, SIGMOID = 2, TANH = 3 };

// 1 / (1 + exp(-z)) without overflow: exp is only ever taken of a non-positive number.
template <typename T>
__device__ __forceinline__ T sigmoid(T z) {
    if (z >= T(0)) {
        return T(1) / (T(1) + exp(-z));
    }
    const T e = exp(z);
    return e / (T(1) + e);
}

template <typename T>
__device__ __forceinline__ T activate(T z, int activation) {
    switch (activation) {
        case RELU:    return z < T(0) ? T(0) : z;  // NaN passes through, as np.maximum does
        case SIGMOID: return sigmoid(z);
        case TANH:    return tanh(z);
        default:      return z;
    }
}

// d act / d z written in terms of the output y = act(z), so backward needs only y.
template <typename T>
__device__ __forceinline__ T activation_slope(T y, int activation) {
    switch (activation) {
        case RELU:    return T(y > T(0));
        case SIGMOID: return y * (T(1) - y);
        case TANH:    return T(1) - y * y;
        default:      return T(1);
    }
}

// y = act(x + b), one thread per element.
template <typename T, typename I>
__global__ void bias_act_forward_kernel(const T* x, const T* b, T* y, I total, I C,
                                        int activation) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T z = b ? x[index] + b[index % C] : x[index];
        y[index] = activate(z, activation);
    }
}

// dz = dy * act'(z), from the forward output y; the caller sums dz over all but the last axis
// for the bias gradient.
template <typename T, typename I>
__global__ void bias_act_backward_kernel(const T* dy, const T* y, T* dz, I total,
                                         int activation) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        dz[index] = dy[index] * activation_slope(y[index], activation);
    }
}
