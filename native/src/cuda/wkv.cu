/* wkv.cu: the WKV recurrences on the GPU, written in wkv.c's order of operations, sequential in
 * time. v4: a thread per channel. v5/v6/v7: a block per head, a thread per state column (v5/v6)
 * or row (v7) kept in registers across the tokens of a call, with the group norm of the head
 * (and v7's gating work) fused in. Head sizes 16, 32, 64 and 128 are compiled for; other sizes
 * (up to 1024) work on the state in device memory. A chunked form (the intra-chunk part as
 * matrix products) would make v6/v7 prefill compute-bound; see docs/cuda.md. */
#include "common.cuh"

/* ---- v4 ---- */

__global__ void __launch_bounds__(RWKV_CUDA_THREADS)
wkv4_kernel(size_t T, size_t C, const float * __restrict__ u, const float * __restrict__ w, const float * __restrict__ k,
            const float * __restrict__ v, const float * __restrict__ r, float * aa, float * bb, float * pp, float * out) {
    const size_t c = (size_t) blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) {
        return;
    }
    float a = aa[c], b = bb[c], p_state = pp[c];
    const float uc = u[c], wc = w[c];
    for (size_t t = 0; t < T; t++) {
        const size_t i = t * C + c;
        const float kc = k[i], vc = v[i];
        float ww = uc + kc;
        float p = fmaxf(p_state, ww);
        float e1 = expf(p_state - p);
        float e2 = expf(ww - p);
        out[i] = (e1 * a + e2 * vc) / (e1 * b + e2) * r[i];
        ww = wc + p_state;
        p = fmaxf(ww, kc);
        e1 = expf(ww - p);
        e2 = expf(kc - p);
        a = e1 * a + e2 * vc;
        b = e1 * b + e2;
        p_state = p;
    }
    aa[c] = a;
    bb[c] = b;
    pp[c] = p_state;
}

extern "C" void rwkv_cuda_wkv4(rwkv_cuda_stream stream, size_t T, size_t C, const float * u, const float * w,
                               const float * k, const float * v, const float * r, float * aa, float * bb, float * pp, float * out) {
    if (T == 0 || C == 0) {
        return;
    }
    wkv4_kernel<<<rwkv_cuda_blocks(C, RWKV_CUDA_THREADS), RWKV_CUDA_THREADS, 0, stream>>>(T, C, u, w, k, v, r, aa, bb, pp, out);
}

/* ---- v5, v6 ----
 * Thread j owns column j of the head's [key i][value j] state. Per token:
 * y_j = sum_i r_i (u_i k_i v_j + S_ij), then S_ij = k_i v_j + w_i S_ij. */

template <int NT>  /* the head size when compiled for it (state in registers), else 0 */
__global__ void wkv5_kernel(size_t T, size_t C, size_t N, const float * __restrict__ r, const float * __restrict__ k,
                            const float * __restrict__ v, const float * __restrict__ u, const float * __restrict__ w,
                            size_t w_stride, float * S, const float * __restrict__ ln_weight, const float * __restrict__ ln_bias,
                            float eps, const float * __restrict__ gate, float * out) {
    extern __shared__ float shared[];  /* r, k, w, u of the head: 4 N floats */
    __shared__ double scratch[32];
    const size_t head = blockIdx.x, j = threadIdx.x, c = head * N + j;
    const bool valid = j < N;
    float * sr = shared, * sk = shared + N, * sw = shared + 2 * N, * su = shared + 3 * N;
    float * Sh = S + head * N * N;
    float s[NT > 0 ? NT : 1];
    if (NT > 0 && valid) {
#pragma unroll
        for (int i = 0; i < NT; i++) {
            s[i] = Sh[i * N + j];
        }
    }
    if (valid) {
        su[j] = u[c];
    }
    const float ln_w = valid ? ln_weight[c] : 0.0f, ln_b = valid ? ln_bias[c] : 0.0f;
    for (size_t t = 0; t < T; t++) {
        const size_t i_out = t * C + c;
        if (valid) {
            sr[j] = r[i_out];
            sk[j] = k[i_out];
            sw[j] = w[t * w_stride + c];
        }
        __syncthreads();
        float y = 0.0f;
        if (valid) {
            const float vj = v[i_out];
            if (NT > 0) {
#pragma unroll
                for (int i = 0; i < NT; i++) {
                    const float kv = sk[i] * vj;
                    y += sr[i] * (su[i] * kv + s[i]);
                    s[i] = kv + sw[i] * s[i];
                }
            } else {
                for (size_t i = 0; i < N; i++) {
                    float * p = Sh + i * N + j;
                    const float kv = sk[i] * vj;
                    y += sr[i] * (su[i] * kv + *p);
                    *p = kv + sw[i] * *p;
                }
            }
        }
        /* Its barriers also keep sr, sk, sw from being overwritten before every thread read them. */
        y = rwkv_normalize_in_block(y, valid, N, ln_w, ln_b, eps, scratch);
        if (valid) {
            out[i_out] = gate ? y * gate[i_out] : y;
        }
    }
    if (NT > 0 && valid) {
#pragma unroll
        for (int i = 0; i < NT; i++) {
            Sh[i * N + j] = s[i];
        }
    }
}

extern "C" void rwkv_cuda_wkv5(rwkv_cuda_stream stream, size_t T, size_t H, size_t N, const float * r, const float * k,
                               const float * v, const float * u, const float * w, size_t w_stride, float * S,
                               const float * ln_weight, const float * ln_bias, float eps, const float * gate, float * out) {
    if (T == 0 || H == 0) {
        return;
    }
    const size_t C = H * N;
    const unsigned int threads = rwkv_cuda_round_to_warps(N);
    const size_t shared = 4 * N * sizeof(float);
#define WKV5_ARGS T, C, N, r, k, v, u, w, w_stride, S, ln_weight, ln_bias, eps, gate, out
    switch (N) {
        case 16: wkv5_kernel<16><<<(unsigned int) H, threads, shared, stream>>>(WKV5_ARGS); break;
        case 32: wkv5_kernel<32><<<(unsigned int) H, threads, shared, stream>>>(WKV5_ARGS); break;
        case 64: wkv5_kernel<64><<<(unsigned int) H, threads, shared, stream>>>(WKV5_ARGS); break;
        case 128: wkv5_kernel<128><<<(unsigned int) H, threads, shared, stream>>>(WKV5_ARGS); break;
        default: wkv5_kernel<0><<<(unsigned int) H, threads, shared, stream>>>(WKV5_ARGS); break;
    }
#undef WKV5_ARGS
}

/* ---- v7 ----
 * Thread i owns row i of the head's [value i][key j] state. Per token:
 * sa = sum_j S_ij a_j; S_ij = S_ij w_j + sa b_j + v_i k_j; y_i = sum_j S_ij r_j. */

template <int NT>
__global__ void wkv7_kernel(const struct rwkv_cuda_wkv7_args p) {
    extern __shared__ float shared[];  /* r, w, k, a, b of the head: 5 N floats */
    __shared__ double scratch[32];
    const size_t N = p.N, C = p.H * N;
    const size_t head = blockIdx.x, i = threadIdx.x, c = head * N + i;
    const bool valid = i < N;
    float * sr = shared, * sw = shared + N, * sk = shared + 2 * N, * sa = shared + 3 * N, * sb = shared + 4 * N;
    float * Sh = p.S + head * N * N;
    float s[NT > 0 ? NT : 1];
    if (NT > 0 && valid) {
#pragma unroll
        for (int j = 0; j < NT; j++) {
            s[j] = Sh[i * N + j];
        }
    }
    float w0 = 0, a0 = 0, v0 = 0, k_k = 0, k_a = 0, r_k = 0, ln_w = 0, ln_b = 0;
    if (valid) {
        w0 = p.w0[c];
        a0 = p.a0[c];
        v0 = p.v_gate ? p.v0[c] : 0.0f;
        k_k = p.k_k[c];
        k_a = p.k_a[c];
        r_k = p.r_k[c];
        ln_w = p.ln_weight[c];
        ln_b = p.ln_bias[c];
    }
    for (size_t t = 0; t < p.T; t++) {
        const size_t idx = t * C + c;
        float ri = 0, ki = 0, vi = 0, kk = 0, ai = 0;
        if (valid) {
            ri = p.r[idx];
            vi = p.v[idx];
            if (p.v_gate) {
                vi = vi + (p.v_first[idx] - vi) * rwkv_sigmoid_dev(v0 + p.v_gate[idx]);
            } else {
                p.v_first[idx] = vi;
            }
            ai = rwkv_sigmoid_dev(a0 + p.a[idx]);
            ki = p.k[idx];
            kk = ki * k_k;
            ki = ki * (1.0f + (ai - 1.0f) * k_a);
            sw[i] = expf(-0.606531f * rwkv_sigmoid_dev(w0 + p.w[idx]));  /* 0.606531 = exp(-0.5) */
        }
        /* kk / max(|kk|, 1e-12) over the head, as F.normalize; the sum in double as eval.c. */
        const double norm = rwkv_block_sum<double>((double) kk * kk, scratch);
        kk *= (float) (1.0 / fmax(sqrt(norm), 1e-12));
        if (valid) {
            sr[i] = ri;
            sk[i] = ki;
            sa[i] = -kk;
            sb[i] = kk * ai;
        }
        __syncthreads();
        float y = 0.0f;
        if (valid) {
            float * row = Sh + i * N;
            float dot_a = 0.0f;
            if (NT > 0) {
#pragma unroll
                for (int j = 0; j < NT; j++) {
                    dot_a += s[j] * sa[j];
                }
#pragma unroll
                for (int j = 0; j < NT; j++) {
                    s[j] = s[j] * sw[j] + dot_a * sb[j] + vi * sk[j];
                    y += s[j] * sr[j];
                }
            } else {
                for (size_t j = 0; j < N; j++) {
                    dot_a += row[j] * sa[j];
                }
                for (size_t j = 0; j < N; j++) {
                    row[j] = row[j] * sw[j] + dot_a * sb[j] + vi * sk[j];
                    y += row[j] * sr[j];
                }
            }
        }
        y = rwkv_normalize_in_block(y, valid, N, ln_w, ln_b, p.eps, scratch);
        /* The bonus (r . (k r_k)) v of the head. */
        const double bonus = rwkv_block_sum<double>(valid ? (double) (ri * ki * r_k) : 0.0, scratch);
        if (valid) {
            y += (float) bonus * vi;
            p.out[idx] = y * p.g[idx];
        }
    }
    if (NT > 0 && valid) {
#pragma unroll
        for (int j = 0; j < NT; j++) {
            Sh[i * N + j] = s[j];
        }
    }
}

extern "C" void rwkv_cuda_wkv7(rwkv_cuda_stream stream, const struct rwkv_cuda_wkv7_args * args) {
    if (args->T == 0 || args->H == 0) {
        return;
    }
    const unsigned int threads = rwkv_cuda_round_to_warps(args->N);
    const size_t shared = 5 * args->N * sizeof(float);
    const unsigned int blocks = (unsigned int) args->H;
    switch (args->N) {
        case 16: wkv7_kernel<16><<<blocks, threads, shared, stream>>>(*args); break;
        case 32: wkv7_kernel<32><<<blocks, threads, shared, stream>>>(*args); break;
        case 64: wkv7_kernel<64><<<blocks, threads, shared, stream>>>(*args); break;
        case 128: wkv7_kernel<128><<<blocks, threads, shared, stream>>>(*args); break;
        default: wkv7_kernel<0><<<blocks, threads, shared, stream>>>(*args); break;
    }
}
