// The embedding gradient: a scatter-add of dy's rows into the rows of dW picked by the ids.
//
// ids (S...) flattened to (n,), dy (n, D), dW (vocab_size, D):
//   dW[v, :] = sum of dy[s, :] over the positions s with ids[s] == v.
//
// Deterministic without atomics. The host sorts the ids stably (cupy.argsort is always stable),
// which gathers equal ids into runs and keeps each run in its original order:
//   order       (n,)        positions of the ids in sorted order
//   sorted_ids  (n,)        ids[order]
//   starts      (runs + 1,) run r covers sorted positions [starts[r], starts[r + 1])
// One thread per (run, d) sums its run's rows of dy in that order and writes dW[id, d] once.
// Every output has one writer and a fixed summation order (the order of a sequential loop over
// the ids, as np.add.at uses), so the result is the same bits on every run. Atomic adds would
// skip the O(n log n) sort, but their order, and so the float rounding, changes from run to run.
// Rows of dW whose id never occurs are not touched: the host passes dW zeroed.
#include "common.cuh"

template <typename T, typename I>
__global__ void embedding_backward_kernel(const long long* order, const long long* sorted_ids,
                                          const long long* starts, const T* dy, T* dW,
                                          I runs, I D) {
    const I total = runs * D;
    for (I index = grid_start<I>(); index < total; index += grid_stride<I>()) {
        const I d = index % D;
        const I run = index / D;
        const I begin = starts[run];
        const I end = starts[run + 1];
        T sum = T(0);
        for (I k = begin; k < end; ++k) {
            sum += dy[order[k] * D + d];
        }
        dW[sorted_ids[begin] * D + d] = sum;
    }
}
