/* elementwise.cu: the token shift with the mixes that follow it, and v6's data-dependent mixes.
 * Activations (sigmoid, silu, tanh, relu^2, v6's decay) are epilogues of the matrix products
 * (matmul.cu); v7's per-head work is fused into its WKV kernel (wkv.cu). */
#include "common.cuh"

/* A thread per channel walks the T tokens, so the shift state is read before it is replaced. */
__global__ void __launch_bounds__(RWKV_CUDA_THREADS)
token_mix_kernel(const float * __restrict__ xx, float * shift_state, size_t T, size_t C, const struct rwkv_cuda_mix p) {
    const size_t c = (size_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) {
        return;
    }
    float sx = shift_state[c];
    for (size_t t = 0; t < T; t++) {
        const size_t i = t * C + c;
        const float cur = xx[i];
        if (p.lerp) {
            for (int j = 0; j < p.n; j++) {
                const float mix = p.mix[j][c];
                p.out[j][i] = cur * mix + sx * (1.0f - mix);
            }
        } else {
            const float delta = sx - cur;
            if (p.delta_out) {
                p.delta_out[i] = delta;
            }
            for (int j = 0; j < p.n; j++) {
                p.out[j][i] = cur + delta * p.mix[j][c];
            }
        }
        sx = cur;
    }
    shift_state[c] = sx;
}

extern "C" void rwkv_cuda_token_mix(rwkv_cuda_stream stream, const float * xx, float * shift_state, size_t T, size_t C,
                                    const struct rwkv_cuda_mix * mix) {
    if (T == 0 || C == 0) {
        return;
    }
    token_mix_kernel<<<rwkv_cuda_blocks(C, RWKV_CUDA_THREADS), RWKV_CUDA_THREADS, 0, stream>>>(xx, shift_state, T, C, *mix);
}

struct mix_v6_args {
    const float * m[5];
    float * out[5];
};

__global__ void __launch_bounds__(RWKV_CUDA_THREADS)
mix_v6_kernel(const float * __restrict__ xx, const float * __restrict__ delta, const float * __restrict__ maa,
              size_t T, size_t C, const struct mix_v6_args a) {
    const size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C) {
        return;
    }
    const size_t c = i % C;
    const float cur = xx[i], d = delta[i];
#pragma unroll
    for (int j = 0; j < 5; j++) {
        a.out[j][i] = cur + d * (a.m[j][i] + maa[j * C + c]);
    }
}

extern "C" void rwkv_cuda_mix_v6(rwkv_cuda_stream stream, const float * xx, const float * delta, float * const m[5],
                                 const float * maa_wkvrg, size_t T, size_t C, float * const out[5]) {
    if (T == 0 || C == 0) {
        return;
    }
    struct mix_v6_args a;
    for (int j = 0; j < 5; j++) {
        a.m[j] = m[j];
        a.out[j] = out[j];
    }
    mix_v6_kernel<<<rwkv_cuda_blocks(T * C, RWKV_CUDA_THREADS), RWKV_CUDA_THREADS, 0, stream>>>(xx, delta, maa_wkvrg, T, C, a);
}
