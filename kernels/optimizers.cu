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

// RMSprop:  a = rho * a + (1 - rho) * g^2;  step = lr * g / sqrt(a + eps), as Keras divides;
// centered (avg_grad != nullptr): mg = rho * mg + (1 - rho) * g, and a - mg^2 under the root;
// momentum (velocity != nullptr): velocity = momentum * velocity + step;  param -= velocity.
template <typename T, typename I>
__global__ void rmsprop_kernel(T* param, const T* grad, T* sq_avg, T* avg_grad, T* velocity,
                               I total, T lr, T rho, T one_minus_rho, T momentum, T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T a = rho * sq_avg[index] + one_minus_rho * g * g;
        sq_avg[index] = a;
        T denominator = a + eps;
        if (avg_grad) {
            const T mg = rho * avg_grad[index] + one_minus_rho * g;
            avg_grad[index] = mg;
            denominator = a - mg * mg + eps;
        }
        T step = lr * g / sqrt(denominator);
        if (velocity) {
            step = momentum * velocity[index] + step;
            velocity[index] = step;
        }
        param[index] -= step;
    }
}

// Adam:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  param -= lr_t * m / (sqrt(v) + eps)
// with the bias correction folded into lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) by the host.
// AMSGrad (v_max != nullptr): v_max = max(v_max, v) takes the place of v in the step.
template <typename T, typename I>
__global__ void adam_kernel(T* param, const T* grad, T* m, T* v, T* v_max, I total,
                            T lr_t, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2,
                            T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T m_new = beta1 * m[index] + one_minus_beta1 * g;
        T v_new = beta2 * v[index] + one_minus_beta2 * g * g;
        m[index] = m_new;
        v[index] = v_new;
        if (v_max) {
            v_new = fmax(v_max[index], v_new);
            v_max[index] = v_new;
        }
        param[index] -= lr_t * m_new / (sqrt(v_new) + eps);
    }
}

// Adagrad:  acc += g^2;  param -= lr * g / sqrt(acc + eps).
template <typename T, typename I>
__global__ void adagrad_kernel(T* param, const T* grad, T* accumulator, I total, T lr, T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T a = accumulator[index] + g * g;
        accumulator[index] = a;
        param[index] -= lr * g / sqrt(a + eps);
    }
}

// Adadelta:  a = rho a + (1 - rho) g^2;  d = sqrt(D + eps) / sqrt(a + eps) * g;
// D = rho D + (1 - rho) d^2;  param -= lr * d.
template <typename T, typename I>
__global__ void adadelta_kernel(T* param, const T* grad, T* sq_avg, T* delta_sq_avg, I total,
                                T lr, T rho, T one_minus_rho, T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T a = rho * sq_avg[index] + one_minus_rho * g * g;
        sq_avg[index] = a;
        const T d = sqrt(delta_sq_avg[index] + eps) / sqrt(a + eps) * g;
        delta_sq_avg[index] = rho * delta_sq_avg[index] + one_minus_rho * d * d;
        param[index] -= lr * d;
    }
}

// Adamax:  m = b1 m + (1 - b1) g;  u = max(b2 u, |g|);  param -= lr_t * m / (u + eps), with
// lr_t = lr / (1 - b1^t) from the host.
template <typename T, typename I>
__global__ void adamax_kernel(T* param, const T* grad, T* m, T* u, I total,
                              T lr_t, T beta1, T one_minus_beta1, T beta2, T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T m_new = beta1 * m[index] + one_minus_beta1 * g;
        const T u_new = fmax(beta2 * u[index], fabs(g));
        m[index] = m_new;
        u[index] = u_new;
        param[index] -= lr_t * m_new / (u_new + eps);
    }
}

// Nadam:  Adam's moments, then param -= (c_m * m + c_g * g) / (sqrt(v * c_v) + eps), the
// per-step coefficients (momentum schedule, bias corrections, rate) computed by the host.
template <typename T, typename I>
__global__ void nadam_kernel(T* param, const T* grad, T* m, T* v, I total, T c_m, T c_g, T c_v,
                             T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps) {
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const T g = grad[index];
        const T m_new = beta1 * m[index] + one_minus_beta1 * g;
        const T v_new = beta2 * v[index] + one_minus_beta2 * g * g;
        m[index] = m_new;
        v[index] = v_new;
        param[index] -= (c_m * m_new + c_g * g) / (sqrt(v_new * c_v) + eps);
    }
}
