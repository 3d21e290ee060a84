/* norm.cu: layer norm and group norm (one kernel: a layer norm is one group of C). Statistics
 * in double as ops.c computes them, so the GPU matches the CPU to float rounding. */
#include "common.cuh"

/* Block (g, t) normalizes group g of row t. */
__global__ void __launch_bounds__(RWKV_CUDA_THREADS)
norm_kernel(const float * x, const float * weight, const float * bias, size_t C, size_t group_size, float eps, float * out) {
    __shared__ double scratch[32];
    const size_t base = (size_t) blockIdx.y * C + (size_t) blockIdx.x * group_size;
    const size_t channel0 = (size_t) blockIdx.x * group_size;
    const float * xg = x + base;
    double sum = 0.0;
    for (size_t i = threadIdx.x; i < group_size; i += blockDim.x) {
        sum += xg[i];
    }
    const double mean = rwkv_block_sum(sum, scratch) / (double) group_size;
    double squares = 0.0;
    for (size_t i = threadIdx.x; i < group_size; i += blockDim.x) {
        const double d = xg[i] - mean;
        squares += d * d;
    }
    squares = rwkv_block_sum(squares, scratch);
    const float inv_std = (float) (1.0 / sqrt(squares / (double) group_size + eps));
    const float mean_f = (float) mean;
    for (size_t i = threadIdx.x; i < group_size; i += blockDim.x) {
        out[base + i] = (xg[i] - mean_f) * inv_std * weight[channel0 + i] + bias[channel0 + i];
    }
}

extern "C" void rwkv_cuda_norm(rwkv_cuda_stream stream, const float * x, const float * weight, const float * bias,
                               size_t T, size_t C, size_t group_size, float eps, float * out) {
    if (T == 0 || group_size == 0) {
        return;
    }
    const unsigned int threads = group_size >= RWKV_CUDA_THREADS ? RWKV_CUDA_THREADS : rwkv_cuda_round_to_warps(group_size);
    const dim3 grid((unsigned int) (C / group_size), (unsigned int) T);
    norm_kernel<<<grid, threads, 0, stream>>>(x, weight, bias, C, group_size, eps, out);
}
