// Optimizer updates, in place, one thread per parameter element: each kernel reads the
// gradient and the optimizer state once and writes the new state and parameter once.
//
// param, grad and every state array have the same shape, flattened to (total,). The host turns
// the hyper-parameters into per-step coefficients once (in double precision, then rounded to
// T, as NumPy does with Python floats), so the kernels do only per-element work.
#include "common.cuh"

// Keras SGD:  v = momentum * v - lr * g;  param += nesterov ? momentum * v - lr * g : v.
// velocity == nullptr is plain SGD (momentum 0): param -= lr * g.
template <typename T, typename I>
__global__ void sgd_kernel(T* param, const T* grad, T* velocity, I total,
                           T lr, T momentum, bool nesterov) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T step = lr * grad[index];
        if (!velocity) {
            param[index] -= step;
            continue;
        }
        const T v = momentum * velocity[index] - step;
        velocity[index] = v;
        param[index] += nesterov ? momentum * v - step : v;
    }
}

// RMSprop:  a = rho * a + (1 - rho) * g^2;  param -= lr * g / sqrt(a + eps), as Keras divides.
template <typename T, typename I>
__global__ void rmsprop_kernel(T* param, const T* grad, T* sq_avg, I total,
                               T lr, T rho, T one_minus_rho, T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T a = rho * sq_avg[index] + one_minus_rho * g * g;
        sq_avg[index] = a;
        param[index] -= lr * g / sqrt(a + eps);
    }
}

// Adam:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  param -= lr_t * m / (sqrt(v) + eps)
// with the bias correction folded into lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) by the host.
template <typename T, typename I>
__global__ void adam_kernel(T* param, const T* grad, T* m, T* v, I total,
                            T lr_t, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2,
                            T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T m_new = beta1 * m[index] + one_minus_beta1 * g;
        const T v_new = beta2 * v[index] + one_minus_beta2 * g * g;
        m[index] = m_new;
        v[index] = v_new;
        param[index] -= lr_t * m_new / (sqrt(v_new) + eps);
    }
}
