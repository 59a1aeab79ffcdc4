// Dropout masks from a counter-based RNG: element i's random bits are a hash of (i, seed, step),
// not a draw from a sequential generator, so any thread computes any element independently and
// the CPU implementations produce the very same mask bits (see mix32 in common.cuh):
//   key     = mix32(seed ^ mix32(step + 0x9E3779B9))
//   keep[i] = mix32(uint32(i) ^ key) >= threshold,  threshold = min(floor(rate * 2**32), 2**32-1)
//   mask[i] = keep[i] ? scale : 0,                   scale = 1 / (1 - rate) in the mask's dtype
#include "common.cuh"

// mask (total,) flat in C order; the host computes threshold and scale exactly as the reference.
template <typename T, typename I>
__global__ void dropout_mask_kernel(T* mask, I total, unsigned int seed, unsigned int step,
                                    unsigned int threshold, T scale) {
    const unsigned int key = mix32(seed ^ mix32(step + 0x9E3779B9u));
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        // The cast keeps the low 32 bits: the counter is i modulo 2**32, as the contract says.
        const unsigned int bits = mix32(static_cast<unsigned int>(index) ^ key);
        mask[index] = bits >= threshold ? scale : T(0);
    }
}
