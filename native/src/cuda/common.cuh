/* common.cuh: what the CUDA files share: block reductions, activations, launch sizes. */
#ifndef RWKV_CUDA_COMMON_CUH
#define RWKV_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "backend.h"

/* Threads per block of the element-wise and normalization kernels. */
#define RWKV_CUDA_THREADS 256

static inline unsigned int rwkv_cuda_blocks(size_t n, unsigned int threads) {
    return (unsigned int) ((n + threads - 1) / threads);
}

/* Warp count rounded up: kernels with one thread per head channel use whole warps, so that every
 * shuffle in a reduction has all 32 lanes. */
static inline unsigned int rwkv_cuda_round_to_warps(size_t n) {
    return (unsigned int) ((n + 31) / 32 * 32);
}

__device__ __forceinline__ float rwkv_sigmoid_dev(float x) {
    return 1.0f / (1.0f + expf(-x));
}

template <typename T>
__device__ __forceinline__ T rwkv_warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    return v;
}

/* Sum of v over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
 * scratch: 32 values of shared memory. Ends with a barrier, so scratch can be reused at once. */
template <typename T>
__device__ T rwkv_block_sum(T v, T * scratch) {
    const unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = rwkv_warp_sum(v);
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    T total = 0;
    for (unsigned int i = 0; i < n_warps; i++) {
        total += scratch[i];
    }
    __syncthreads();
    return total;
}

/* ops.c's normalize for one group held one value per thread (threads >= n hold nothing):
 * mean and variance summed in double, then (y - mean) inv_std weight + bias. */
__device__ __forceinline__ float rwkv_normalize_in_block(float y, bool valid, size_t n, float weight, float bias,
                                                         float eps, double * scratch) {
    const double mean = rwkv_block_sum<double>(valid ? (double) y : 0.0, scratch) / (double) n;
    const double d = valid ? (double) y - mean : 0.0;
    const double squares = rwkv_block_sum<double>(d * d, scratch);
    const float inv_std = (float) (1.0 / sqrt(squares / (double) n + eps));
    return (y - (float) mean) * inv_std * weight + bias;
}

#endif
