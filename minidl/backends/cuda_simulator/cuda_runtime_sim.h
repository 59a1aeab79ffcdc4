// The CUDA C that minidl's kernels use, mapped onto the host for the CUDA simulator.
//
// The simulator compiles a kernel source unchanged with g++ after this header. A launch runs
// every block of the grid in turn; inside a block every thread is a fiber (its own stack), all
// live at once, so __syncthreads and the __shfl_*_sync family wait for the threads they name,
// as on a GPU. One fiber runs at a time, so the built-in variables below are plain globals that
// the scheduler sets each time it resumes a thread.
#ifndef MINIDL_CUDA_RUNTIME_SIM_H
#define MINIDL_CUDA_RUNTIME_SIM_H

#include <math.h>  // libstdc++'s math.h also puts the float overloads (exp(float), ...) here
#include <cstdint>
#include <cstdio>  // printf from a kernel works as in CUDA
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

// Qualifiers. __shared__ is thread_local: static storage (one copy per block, since blocks run
// one after another) in both spellings, `__shared__ float tile[256];` and
// `extern __shared__ float dynamic[];`. The runtime fills it with a garbage pattern before each
// block, because GPU shared memory starts uninitialised.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ thread_local
#define __align__(n) alignas(n)

struct uint3 {
    unsigned int x, y, z;
};
using dim3 = uint3;

namespace minidl_sim {

// The built-in variables of the thread now running; read through the macros below, which
// make them read-only, as in CUDA.
struct Coordinates {
    uint3 thread, block;
    dim3 block_dim, grid_dim;
};
extern Coordinates now;

enum class WarpOp : int { SYNC, IDX, UP, DOWN, XOR };

// Waits until every lane in `mask` of this thread's warp has made the same call, then returns
// the 64 bits of lane `source(lane, b, width)` (PTX shfl.sync semantics).
std::uint64_t warp_exchange(WarpOp op, unsigned int mask, std::uint64_t bits, int b, int width);

template <typename T>
T shuffle(WarpOp op, unsigned int mask, T value, int b, int width) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8,
                  "the simulator shuffles scalars of at most 8 bytes");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    bits = warp_exchange(op, mask, bits, b, width);
    std::memcpy(&value, &bits, sizeof(T));
    return value;
}

}  // namespace minidl_sim

#define threadIdx (static_cast<const uint3>(::minidl_sim::now.thread))
#define blockIdx (static_cast<const uint3>(::minidl_sim::now.block))
#define blockDim (static_cast<const dim3>(::minidl_sim::now.block_dim))
#define gridDim (static_cast<const dim3>(::minidl_sim::now.grid_dim))
constexpr int warpSize = 32;

void __syncthreads();

inline void __syncwarp(unsigned int mask = 0xFFFFFFFFu) {
    minidl_sim::warp_exchange(minidl_sim::WarpOp::SYNC, mask, 0, 0, warpSize);
}

template <typename T>
T __shfl_sync(unsigned int mask, T var, int src_lane, int width = warpSize) {
    return minidl_sim::shuffle(minidl_sim::WarpOp::IDX, mask, var, src_lane, width);
}

template <typename T>
T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = warpSize) {
    return minidl_sim::shuffle(minidl_sim::WarpOp::UP, mask, var, static_cast<int>(delta), width);
}

template <typename T>
T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = warpSize) {
    return minidl_sim::shuffle(minidl_sim::WarpOp::DOWN, mask, var, static_cast<int>(delta),
                               width);
}

template <typename T>
T __shfl_xor_sync(unsigned int mask, T var, int lane_mask, int width = warpSize) {
    return minidl_sim::shuffle(minidl_sim::WarpOp::XOR, mask, var, lane_mask, width);
}

// CUDA's max and min for any pair of equal types; floating point ones ignore a NaN, as fmax.
template <typename T>
inline T max(T a, T b) {
    if (std::is_floating_point<T>::value) {
        return fmax(a, b);
    }
    return a < b ? b : a;
}

template <typename T>
inline T min(T a, T b) {
    if (std::is_floating_point<T>::value) {
        return fmin(a, b);
    }
    return b < a ? b : a;
}

// The CUDA-only math functions; the C ones (exp, log, tanh, sqrt, fmax, isnan, ...) come from
// math.h with their float overloads.
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return fminf(fmaxf(x, 0.0f), 1.0f); }

// ----- Launch shims (used by the generated code, not by kernels) --------------------------------

namespace minidl_sim {

struct LaunchConfig {
    dim3 grid, block;
    std::uint64_t shared_bytes;  // dynamic shared memory
};

// What the runtime knows of a kernel parameter: pointers are staged in guarded memory.
struct Param {
    bool pointer, is_const;
    std::size_t item;  // bytes per element (pointers) or of the value (scalars)
};

// One kernel parameter type as a NumPy dtype code: '*' marks a pointer, 'c' a const pointee.
template <typename T> struct Code;
template <> struct Code<float> { static std::string get() { return "f"; } };
template <> struct Code<double> { static std::string get() { return "d"; } };
template <> struct Code<bool> { static std::string get() { return "?"; } };
template <> struct Code<signed char> { static std::string get() { return "b"; } };
template <> struct Code<unsigned char> { static std::string get() { return "B"; } };
template <> struct Code<short> { static std::string get() { return "h"; } };
template <> struct Code<unsigned short> { static std::string get() { return "H"; } };
template <> struct Code<int> { static std::string get() { return "i"; } };
template <> struct Code<unsigned int> { static std::string get() { return "I"; } };
template <> struct Code<long> { static std::string get() { return "l"; } };
template <> struct Code<unsigned long> { static std::string get() { return "L"; } };
template <> struct Code<long long> { static std::string get() { return "q"; } };
template <> struct Code<unsigned long long> { static std::string get() { return "Q"; } };
template <typename T> struct Code<T*> {
    static std::string get() {
        return (std::is_const<T>::value ? "*c" : "*") + Code<typename std::remove_cv<T>::type>::get();
    }
};

template <typename T> struct Describe {
    static Param get() { return {false, false, sizeof(T)}; }
};
template <typename T> struct Describe<T*> {
    static Param get() { return {true, std::is_const<T>::value, sizeof(T)}; }
};

// Runs `body(context)` as every thread of the grid; 0 on success, else the error is in
// last_error(). Stages each pointer argument (args[k] points at the pointer) in guarded memory.
int run_grid(const LaunchConfig& config, const Param* params, int count, void** args,
             const long long* sizes, void (*body)(void*), void* context);

template <typename... P, std::size_t... K>
void call(void (*kernel)(P...), void** args, std::index_sequence<K...>) {
    kernel(*static_cast<typename std::remove_cv<P>::type*>(args[K])...);
}

template <typename... P>
int launch(void (*kernel)(P...), const LaunchConfig* config, void** args,
           const long long* sizes) {
    struct Call {
        void (*kernel)(P...);
        void** args;
        static void run(void* self) {
            Call* call_ = static_cast<Call*>(self);
            call(call_->kernel, call_->args, std::index_sequence_for<P...>{});
        }
    };
    Call context{kernel, args};
    const Param params[] = {Describe<P>::get()..., Param{}};
    return run_grid(*config, params, static_cast<int>(sizeof...(P)), args, sizes, &Call::run,
                    &context);
}

template <typename... P>
const char* signature(void (*)(P...)) {
    static const std::string joined = [] {
        std::string codes[] = {Code<P>::get()..., std::string()};
        std::string text;
        for (std::size_t k = 0; k < sizeof...(P); ++k) {
            text += (k ? "," : "") + codes[k];
        }
        return text;
    }();
    return joined.c_str();
}

}  // namespace minidl_sim

#define MINIDL_SIM_EXPORT extern "C" __attribute__((visibility("default")))

#endif  // MINIDL_CUDA_RUNTIME_SIM_H
