/* matmul.cu: weight matrix times activations for every file type: float32 and fp16 rows widened,
 * ggml Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 blocks dequantized in the kernel (the same values as quant.c's
 * rwkv_dequantize_row); activations and sums stay float32, so there is no activation rounding.
 * T == 1 (decode, memory-bound): a warp per row, each lane reading 16 weights at a time.
 * T > 1 (prefill): 64 rows x 32 tokens per block through shared memory. */
#include "common.cuh"
extern "C" {
#include "tensor_types.h"
}

/* ---- 16 weights at a time ----
 * A "unit" is 16 weights of a row. Float types: unit u holds k = 16u .. 16u + 15. Quantized
 * types: unit u is half h = u % 2 of block u / 2 and holds block weights 8h .. 8h + 7 (low
 * nibbles / first bytes) and 16 + 8h .. 16 + 8h + 7 (high nibbles / later bytes): one lane
 * unpacks 8 bytes of nibbles whole. Block fields sit at even offsets only (block sizes 18, 20, 22,
 * 24, 34 bytes), so they are read as 16-bit words. */

template <uint32_t TYPE>
__device__ __forceinline__ size_t unit_k(size_t u, int i) {
    if (TYPE == RWKV_TYPE_F32 || TYPE == RWKV_TYPE_F16) {
        return 16 * u + (size_t) i;
    }
    return 32 * (u / 2) + 8 * (u % 2) + (size_t) (i < 8 ? i : i + 8);
}

__device__ __forceinline__ float half_at(const uint8_t * p) {
    return __half2float(*(const __half *) p);
}

__device__ __forceinline__ uint32_t u32_at(const uint8_t * p) {
    const uint16_t * q = (const uint16_t *) p;
    return (uint32_t) q[0] | ((uint32_t) q[1] << 16);
}

__device__ __forceinline__ uint64_t u64_at(const uint8_t * p) {
    return (uint64_t) u32_at(p) | ((uint64_t) u32_at(p + 4) << 32);
}

/* ggml layouts (quant.c): Q4_0 {d; qs[16]}, Q4_1 {d, m; qs[16]}, Q5_0 {d; qh[4]; qs[16]},
 * Q5_1 {d, m; qh[4]; qs[16]}, Q8_0 {d; int8 qs[32]}. */
template <uint32_t TYPE>
__device__ __forceinline__ void load_unit(const uint8_t * row, size_t u, float w[16]) {
    if (TYPE == RWKV_TYPE_F32) {
        const float4 * p = (const float4 *) (row + 64 * u);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float4 v = p[i];
            w[4 * i] = v.x;
            w[4 * i + 1] = v.y;
            w[4 * i + 2] = v.z;
            w[4 * i + 3] = v.w;
        }
    } else if (TYPE == RWKV_TYPE_F16) {
        const uint4 * p = (const uint4 *) (row + 32 * u);
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const uint4 v = p[i];
            const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int j = 0; j < 4; j++) {
                __half2 h;
                memcpy(&h, &words[j], sizeof(h));
                const float2 f = __half22float2(h);
                w[8 * i + 2 * j] = f.x;
                w[8 * i + 2 * j + 1] = f.y;
            }
        }
    } else if (TYPE == RWKV_TYPE_Q8_0) {
        const uint8_t * block = row + 34 * (u / 2);
        const float d = half_at(block);
        const int h = (int) (u % 2);
        const uint64_t lo = u64_at(block + 2 + 8 * h), hi = u64_at(block + 2 + 16 + 8 * h);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            w[i] = (float) (int8_t) (lo >> (8 * i)) * d;
            w[8 + i] = (float) (int8_t) (hi >> (8 * i)) * d;
        }
    } else {
        constexpr bool has_min = TYPE == RWKV_TYPE_Q4_1 || TYPE == RWKV_TYPE_Q5_1;
        constexpr bool has_qh = TYPE == RWKV_TYPE_Q5_0 || TYPE == RWKV_TYPE_Q5_1;
        constexpr size_t block_bytes = TYPE == RWKV_TYPE_Q4_0 ? 18 : TYPE == RWKV_TYPE_Q4_1 ? 20
            : TYPE == RWKV_TYPE_Q5_0 ? 22 : 24;
        constexpr size_t qs_offset = (has_min ? 4 : 2) + (has_qh ? 4 : 0);
        constexpr int bias = TYPE == RWKV_TYPE_Q4_0 ? 8 : TYPE == RWKV_TYPE_Q5_0 ? 16 : 0;
        const uint8_t * block = row + block_bytes * (u / 2);
        const float d = half_at(block);
        const float m = has_min ? half_at(block + 2) : 0.0f;
        const uint32_t qh = has_qh ? u32_at(block + (has_min ? 4 : 2)) : 0;
        const int h = (int) (u % 2);
        const uint64_t qs = u64_at(block + qs_offset + 8 * h);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int byte = (int) ((qs >> (8 * i)) & 0xff);
            const int j = 8 * h + i;  /* weight j: low nibble; weight j + 16: high nibble */
            const int q_lo = (byte & 0x0f) | (int) (((qh >> j) & 1) << 4);
            const int q_hi = (byte >> 4) | (int) (((qh >> (j + 16)) & 1) << 4);
            w[i] = (float) (q_lo - bias) * d + m;
            w[8 + i] = (float) (q_hi - bias) * d + m;
        }
    }
}

/* One float weight (float types only: the tails of rows not a multiple of 16 long). */
template <uint32_t TYPE>
__device__ __forceinline__ float load_float(const uint8_t * row, size_t k) {
    if (TYPE == RWKV_TYPE_F32) {
        return ((const float *) row)[k];
    }
    return __half2float(((const __half *) row)[k]);
}

/* Unit u with the weights at k >= n_in set to zero. */
template <uint32_t TYPE>
__device__ __forceinline__ void load_unit_guarded(const uint8_t * row, size_t u, size_t n_in, float w[16]) {
    if (16 * (u + 1) <= n_in) {
        load_unit<TYPE>(row, u, w);
        return;
    }
#pragma unroll
    for (int i = 0; i < 16; i++) {  /* only float types get here: quantized rows are whole blocks */
        const size_t k = 16 * u + (size_t) i;
        w[i] = k < n_in ? load_float<TYPE>(row, k) : 0.0f;
    }
}

__device__ __forceinline__ void store(const struct rwkv_cuda_epilogue & e, float * y, size_t t, size_t row, float acc) {
    switch (e.kind) {
        case RWKV_EPILOGUE_TANH: *y = tanhf(acc); break;
        case RWKV_EPILOGUE_SIGMOID: *y = rwkv_sigmoid_dev(acc); break;
        case RWKV_EPILOGUE_SILU: *y = acc * rwkv_sigmoid_dev(acc); break;
        case RWKV_EPILOGUE_RELU_SQ: {
            const float relu = acc > 0.0f ? acc : 0.0f;
            *y = relu * relu;
            break;
        }
        case RWKV_EPILOGUE_ADD: *y += acc; break;
        case RWKV_EPILOGUE_MUL_ADD: *y += acc * e.aux[t * e.aux_stride + row]; break;
        case RWKV_EPILOGUE_DECAY_V6: *y = expf(-expf(e.aux[t * e.aux_stride + row] + acc)); break;
        default: *y = acc; break;
    }
}

/* ---- T == 1: a warp per row ---- */

#define MATVEC_ROWS_PER_BLOCK 4

template <uint32_t TYPE>
__global__ void __launch_bounds__(32 * MATVEC_ROWS_PER_BLOCK)
matvec_kernel(const struct rwkv_cuda_matrix m, size_t row_begin, size_t n_rows, const float * __restrict__ x,
              float * y, const struct rwkv_cuda_epilogue e) {
    const size_t row = (size_t) blockIdx.x * MATVEC_ROWS_PER_BLOCK + threadIdx.y;
    if (row >= n_rows) {
        return;  /* the whole warp: row depends on threadIdx.y only */
    }
    const unsigned int lane = threadIdx.x;
    const uint8_t * w_row = m.data + (row_begin + row) * m.row_stride;
    const size_t n_units = m.n_in / 16;
    float sum = 0.0f;
    for (size_t u = lane; u < n_units; u += 32) {
        float w[16];
        load_unit<TYPE>(w_row, u, w);
#pragma unroll
        for (int i = 0; i < 16; i++) {
            sum += w[i] * x[unit_k<TYPE>(u, i)];
        }
    }
    for (size_t k = 16 * n_units + lane; k < m.n_in; k += 32) {  /* float rows not a multiple of 16 */
        sum += load_float<TYPE>(w_row, k) * x[k];
    }
    sum = rwkv_warp_sum(sum);
    if (lane == 0) {
        store(e, y + row, 0, row, sum);
    }
}

/* ---- T > 1: tiles of 64 rows x 32 tokens, 32 weights deep ----
 * 128 threads; thread (tx, ty) = (tid % 8, tid / 8) computes rows 4ty .. 4ty + 3 of the tile for
 * tokens 4tx .. 4tx + 3. Each thread loads one unit (16 weights) of one row per k step. */

#define GEMM_ROWS 64
#define GEMM_TOKENS 32
#define GEMM_DEPTH 32
#define GEMM_THREADS 128

template <uint32_t TYPE>
__global__ void __launch_bounds__(GEMM_THREADS)
gemm_kernel(const struct rwkv_cuda_matrix m, size_t row_begin, size_t n_rows, const float * __restrict__ x, size_t x_stride,
            size_t T, float * y, size_t y_stride, const struct rwkv_cuda_epilogue e) {
    __shared__ float ws[GEMM_DEPTH][GEMM_ROWS + 4];      /* [k][row] */
    __shared__ float xs[GEMM_TOKENS][GEMM_DEPTH + 1];    /* [token][k] */
    const unsigned int tid = threadIdx.x, tx = tid % 8, ty = tid / 8;
    const size_t row0 = (size_t) blockIdx.x * GEMM_ROWS, t0 = (size_t) blockIdx.y * GEMM_TOKENS;
    const unsigned int load_row = tid / 2, load_half = tid % 2;
    const size_t n_in = m.n_in;
    const bool row_ok = row0 + load_row < n_rows;
    const uint8_t * w_row = m.data + (row_begin + row0 + (row_ok ? load_row : 0)) * m.row_stride;

    float acc[4][4] = {{0.0f}};
    for (size_t k0 = 0; k0 < n_in; k0 += GEMM_DEPTH) {
        const size_t u = k0 / 16 + load_half;
        float w[16];
        if (row_ok && 16 * u < n_in) {
            load_unit_guarded<TYPE>(w_row, u, n_in, w);
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) {
                w[i] = 0.0f;
            }
        }
#pragma unroll
        for (int i = 0; i < 16; i++) {
            ws[unit_k<TYPE>(u, i) - k0][load_row] = w[i];
        }
        for (unsigned int i = tid; i < GEMM_TOKENS * GEMM_DEPTH; i += GEMM_THREADS) {
            const unsigned int token = i / GEMM_DEPTH, kk = i % GEMM_DEPTH;
            const size_t t = t0 + token, k = k0 + kk;
            xs[token][kk] = t < T && k < n_in ? x[t * x_stride + k] : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < GEMM_DEPTH; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = ws[kk][4 * ty + i];
                b[i] = xs[4 * tx + i][kk];
            }
#pragma unroll
            for (int i = 0; i < 4; i++) {
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    acc[i][j] += a[i] * b[j];
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const size_t row = row0 + 4 * ty + i;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const size_t t = t0 + 4 * tx + j;
            if (row < n_rows && t < T) {
                store(e, y + t * y_stride + row, t, row, acc[i][j]);
            }
        }
    }
}

template <uint32_t TYPE>
static void launch(cudaStream_t stream, const struct rwkv_cuda_matrix * m, size_t row_begin, size_t n_rows,
                   const float * x, size_t x_stride, size_t T, float * y, size_t y_stride, struct rwkv_cuda_epilogue e) {
    if (T == 1) {
        const dim3 block(32, MATVEC_ROWS_PER_BLOCK);
        matvec_kernel<TYPE><<<rwkv_cuda_blocks(n_rows, MATVEC_ROWS_PER_BLOCK), block, 0, stream>>>(*m, row_begin, n_rows, x, y, e);
    } else {
        const dim3 grid(rwkv_cuda_blocks(n_rows, GEMM_ROWS), rwkv_cuda_blocks(T, GEMM_TOKENS));
        gemm_kernel<TYPE><<<grid, GEMM_THREADS, 0, stream>>>(*m, row_begin, n_rows, x, x_stride, T, y, y_stride, e);
    }
}

extern "C" void rwkv_cuda_matmul(rwkv_cuda_stream stream, const struct rwkv_cuda_matrix * m, size_t row_begin, size_t n_rows,
                                 const float * x, size_t x_stride, size_t T, float * y, size_t y_stride,
                                 struct rwkv_cuda_epilogue e) {
    if (n_rows == 0 || T == 0) {
        return;
    }
    switch (m->type) {
        case RWKV_TYPE_F32: launch<RWKV_TYPE_F32>(stream, m, row_begin, n_rows, x, x_stride, T, y, y_stride, e); break;
        case RWKV_TYPE_F16: launch<RWKV_TYPE_F16>(stream, m, row_begin, n_rows, x, x_stride, T, y, y_stride, e); break;
        case RWKV_TYPE_Q4_0: launch<RWKV_TYPE_Q4_0>(stream, m, row_begin, n_rows, x, x_stride, T, y, y_stride, e); break;
        case RWKV_TYPE_Q4_1: launch<RWKV_TYPE_Q4_1>(stream, m, row_begin, n_rows, x, x_stride, T, y, y_stride, e); break;
        case RWKV_TYPE_Q5_0: launch<RWKV_TYPE_Q5_0>(stream, m, row_begin, n_rows, x, x_stride, T, y, y_stride, e); break;
        case RWKV_TYPE_Q5_1: launch<RWKV_TYPE_Q5_1>(stream, m, row_begin, n_rows, x, x_stride, T, y, y_stride, e); break;
        case RWKV_TYPE_Q8_0: launch<RWKV_TYPE_Q8_0>(stream, m, row_begin, n_rows, x, x_stride, T, y, y_stride, e); break;
        default: break;  /* rwkv_cuda_weights_upload accepts only the types above */
    }
}
