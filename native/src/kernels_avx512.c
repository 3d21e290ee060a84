/* kernels_avx512.c: AVX-512 (F, BW, VL) + VNNI kernels: 16-lane float dot products and
 * quantized dots with vpdpbusd. Compiled with those flags only, picked at run time. */
#include "kernels.h"
#include "wkv.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float scalar_f16(const uint8_t * p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline __mmask16 tail_mask(size_t remaining) {
    return remaining >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << remaining) - 1);
}

static inline __m512 load_f32(const uint8_t * p, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, (const void *) p);
}

static inline __m512 load_f16(const uint8_t * p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const void *) p));
}

/* Every product of a row and a token runs the same steps: one 16-lane FMA chain over the
 * row in steps of 16 (the last one masked), then one reduction. dot_f32, dot_f16 and
 * gemm_f32 all do exactly this, so single-token and sequence evaluation give the same
 * bits. (One chain is enough: decode is bound by memory, not by FMA latency.) */
#define DEFINE_DOT(NAME, LOAD, ELEMENT_BYTES)                                                     \
    static float NAME(const uint8_t * w, const float * x, size_t n) {                            \
        __m512 acc = _mm512_setzero_ps();                                                        \
        for (size_t i = 0; i < n; i += 16) {                                                     \
            const __mmask16 m = tail_mask(n - i);                                                \
            acc = _mm512_fmadd_ps(LOAD(w + i * ELEMENT_BYTES, m), _mm512_maskz_loadu_ps(m, x + i), acc); \
        }                                                                                        \
        return _mm512_reduce_add_ps(acc);                                                        \
    }

DEFINE_DOT(dot_f32, load_f32, 4)
DEFINE_DOT(dot_f16, load_f16, 2)

static void f16_to_f32(const uint8_t * src, float * dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, load_f16(src + 2 * i, m));
    }
}

/* ---- quantized rows: vpdpbusd multiplies unsigned weight bytes by signed activations ---- */

static inline __m256i unpack_nibbles(const uint8_t * qs) {
    const __m128i packed = _mm_loadu_si128((const __m128i *) (const void *) qs);
    const __m128i mask = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask));
}

/* Byte j = 0x10 where bit j of qh is set: one mask register from the 32 bits. */
static inline __m256i fifth_bits(const uint8_t * qh_bytes) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    return _mm256_maskz_mov_epi8((__mmask32) qh, _mm256_set1_epi8(0x10));
}

static inline __m256i load_i8x32(const int8_t * p) {
    return _mm256_loadu_si256((const __m256i *) (const void *) p);
}

/* Both activation levels against one block's weights: 256 * dot(w, q) + dot(w, q2) in int32
 * (the first product shifted, the second accumulated onto it), then one scale.
 * Unsigned weights (Q4_1, Q5_1: 0..31) need no sign handling. */
static inline __m256 block_dot_unsigned(__m256 acc, __m256i w, float d, const struct rwkv_q8_block * x) {
    const __m256i first = _mm256_slli_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w, load_i8x32(x->qs)), 8);
    const __m256i both = _mm256_dpbusd_epi32(first, w, load_i8x32(x->qs2));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(both), _mm256_set1_ps(d * x->d * (1.0f / 256.0f)), acc);
}

/* Signed weights: |w| times the activation with w's sign, exact (|w| <= 128). */
static inline __m256 block_dot_signed(__m256 acc, __m256i w, float d, const struct rwkv_q8_block * x) {
    const __m256i magnitude = _mm256_sign_epi8(w, w);
    const __m256i first = _mm256_slli_epi32(
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), magnitude, _mm256_sign_epi8(load_i8x32(x->qs), w)), 8);
    const __m256i both = _mm256_dpbusd_epi32(first, magnitude, _mm256_sign_epi8(load_i8x32(x->qs2), w));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(both), _mm256_set1_ps(d * x->d * (1.0f / 256.0f)), acc);
}

static inline float horizontal_sum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    return _mm_cvtss_f32(_mm_add_ss(lo, _mm_movehdup_ps(lo)));
}

#include "quant_dot_template.h"

#define Q4_0_WEIGHTS(block) _mm256_sub_epi8(unpack_nibbles((block) + 2), _mm256_set1_epi8(8))
#define Q4_1_WEIGHTS(block) unpack_nibbles((block) + 4)
#define Q5_0_WEIGHTS(block) _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles((block) + 6), fifth_bits((block) + 2)), _mm256_set1_epi8(16))
#define Q5_1_WEIGHTS(block) _mm256_or_si256(unpack_nibbles((block) + 8), fifth_bits((block) + 4))
#define Q8_0_WEIGHTS(block) load_i8x32((const int8_t *) ((block) + 2))

DEFINE_DOT_QUANT(dot_q4_0, 18, Q4_0_WEIGHTS, block_dot_signed, scalar_f16, 0)
DEFINE_DOT_QUANT(dot_q4_1, 20, Q4_1_WEIGHTS, block_dot_unsigned, scalar_f16, 1)
DEFINE_DOT_QUANT(dot_q5_0, 22, Q5_0_WEIGHTS, block_dot_signed, scalar_f16, 0)
DEFINE_DOT_QUANT(dot_q5_1, 24, Q5_1_WEIGHTS, block_dot_unsigned, scalar_f16, 1)
DEFINE_DOT_QUANT(dot_q8_0, 34, Q8_0_WEIGHTS, block_dot_signed, scalar_f16, 0)

/* ---- sequence mode ---- */

/* 2 rows x 4 tokens per tile: 6 loads feed 8 FMAs; each product follows dot_f32's steps. */
static void gemm_f32(const float * w, size_t w_stride, size_t n_rows, const float * x, size_t x_stride,
                     size_t T, size_t n, float * y, size_t y_stride) {
    size_t r = 0;
    for (; r + 2 <= n_rows; r += 2) {
        const float * w0 = w + r * w_stride, * w1 = w0 + w_stride;
        size_t t = 0;
        for (; t + 4 <= T; t += 4) {
            const float * x0 = x + t * x_stride, * x1 = x0 + x_stride, * x2 = x1 + x_stride, * x3 = x2 + x_stride;
            __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps(), a02 = _mm512_setzero_ps(), a03 = _mm512_setzero_ps();
            __m512 a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps(), a12 = _mm512_setzero_ps(), a13 = _mm512_setzero_ps();
            for (size_t i = 0; i < n; i += 16) {
                const __mmask16 m = tail_mask(n - i);
                const __m512 v0 = _mm512_maskz_loadu_ps(m, w0 + i), v1 = _mm512_maskz_loadu_ps(m, w1 + i);
                __m512 xv = _mm512_maskz_loadu_ps(m, x0 + i);
                a00 = _mm512_fmadd_ps(v0, xv, a00);
                a10 = _mm512_fmadd_ps(v1, xv, a10);
                xv = _mm512_maskz_loadu_ps(m, x1 + i);
                a01 = _mm512_fmadd_ps(v0, xv, a01);
                a11 = _mm512_fmadd_ps(v1, xv, a11);
                xv = _mm512_maskz_loadu_ps(m, x2 + i);
                a02 = _mm512_fmadd_ps(v0, xv, a02);
                a12 = _mm512_fmadd_ps(v1, xv, a12);
                xv = _mm512_maskz_loadu_ps(m, x3 + i);
                a03 = _mm512_fmadd_ps(v0, xv, a03);
                a13 = _mm512_fmadd_ps(v1, xv, a13);
            }
            float * out = y + t * y_stride + r;
            out[0] = _mm512_reduce_add_ps(a00);
            out[1] = _mm512_reduce_add_ps(a10);
            out[y_stride] = _mm512_reduce_add_ps(a01);
            out[y_stride + 1] = _mm512_reduce_add_ps(a11);
            out[2 * y_stride] = _mm512_reduce_add_ps(a02);
            out[2 * y_stride + 1] = _mm512_reduce_add_ps(a12);
            out[3 * y_stride] = _mm512_reduce_add_ps(a03);
            out[3 * y_stride + 1] = _mm512_reduce_add_ps(a13);
        }
        rwkv_gemm_f32_generic(&rwkv_kernels_avx512, w0, w_stride, 2, x + t * x_stride, x_stride, T - t, n, y + t * y_stride + r, y_stride);
    }
    rwkv_gemm_f32_generic(&rwkv_kernels_avx512, w + r * w_stride, w_stride, n_rows - r, x, x_stride, T, n, y + r, y_stride);
}

DEFINE_DOT_QUANT_TOKENS(dot_q4_0_tokens, dot_q4_0, 18, Q4_0_WEIGHTS, block_dot_signed, scalar_f16, 0)
DEFINE_DOT_QUANT_TOKENS(dot_q4_1_tokens, dot_q4_1, 20, Q4_1_WEIGHTS, block_dot_unsigned, scalar_f16, 1)
DEFINE_DOT_QUANT_TOKENS(dot_q5_0_tokens, dot_q5_0, 22, Q5_0_WEIGHTS, block_dot_signed, scalar_f16, 0)
DEFINE_DOT_QUANT_TOKENS(dot_q5_1_tokens, dot_q5_1, 24, Q5_1_WEIGHTS, block_dot_unsigned, scalar_f16, 1)
DEFINE_DOT_QUANT_TOKENS(dot_q8_0_tokens, dot_q8_0, 34, Q8_0_WEIGHTS, block_dot_signed, scalar_f16, 0)

/* ---- WKV recurrences, 16 channels a vector (head sizes that are multiples of 16) ---- */

static void wkv5(size_t n_heads, size_t N, const float * r, const float * k, const float * v,
                 const float * u, const float * w, float * S, float * out) {
    if (N % 16 != 0) {
        rwkv_wkv5(n_heads, N, r, k, v, u, w, S, out);
        return;
    }
    for (size_t h = 0; h < n_heads; h++) {
        const size_t base = h * N;
        float * Sh = S + h * N * N;
        for (size_t j = 0; j < N; j += 16) {
            _mm512_storeu_ps(out + base + j, _mm512_setzero_ps());
        }
        for (size_t i = 0; i < N; i++) {
            const __m512 ri = _mm512_set1_ps(r[base + i]), ki = _mm512_set1_ps(k[base + i]);
            const __m512 ui = _mm512_set1_ps(u[base + i]), wi = _mm512_set1_ps(w[base + i]);
            float * row = Sh + i * N;
            for (size_t j = 0; j < N; j += 16) {
                const __m512 kv = _mm512_mul_ps(ki, _mm512_loadu_ps(v + base + j));
                const __m512 s = _mm512_loadu_ps(row + j);
                __m512 o = _mm512_loadu_ps(out + base + j);
                o = _mm512_fmadd_ps(ri, _mm512_fmadd_ps(ui, kv, s), o);
                _mm512_storeu_ps(out + base + j, o);
                _mm512_storeu_ps(row + j, _mm512_fmadd_ps(wi, s, kv));
            }
        }
    }
}

static void wkv7(size_t n_heads, size_t N, const float * r, const float * w, const float * k, const float * v,
                 const float * a, const float * b, float * S, float * out) {
    if (N % 16 != 0) {
        rwkv_wkv7(n_heads, N, r, w, k, v, a, b, S, out);
        return;
    }
    for (size_t h = 0; h < n_heads; h++) {
        const size_t base = h * N;
        float * Sh = S + h * N * N;
        for (size_t i = 0; i < N; i++) {
            float * row = Sh + i * N;
            __m512 sa = _mm512_setzero_ps();
            for (size_t j = 0; j < N; j += 16) {
                sa = _mm512_fmadd_ps(_mm512_loadu_ps(row + j), _mm512_loadu_ps(a + base + j), sa);
            }
            const __m512 sa_all = _mm512_set1_ps(_mm512_reduce_add_ps(sa));
            const __m512 vi = _mm512_set1_ps(v[base + i]);
            __m512 y = _mm512_setzero_ps();
            for (size_t j = 0; j < N; j += 16) {
                __m512 s = _mm512_mul_ps(_mm512_loadu_ps(row + j), _mm512_loadu_ps(w + base + j));
                s = _mm512_fmadd_ps(sa_all, _mm512_loadu_ps(b + base + j), s);
                s = _mm512_fmadd_ps(vi, _mm512_loadu_ps(k + base + j), s);
                _mm512_storeu_ps(row + j, s);
                y = _mm512_fmadd_ps(s, _mm512_loadu_ps(r + base + j), y);
            }
            out[base + i] = _mm512_reduce_add_ps(y);
        }
    }
}

const struct rwkv_kernels rwkv_kernels_avx512 = {
    .name = "avx512",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .f16_to_f32 = f16_to_f32,
    .dot_quant = RWKV_QUANT_ENTRIES(dot_, ),
    .gemm_f32 = gemm_f32,
    .wkv5 = wkv5,
    .wkv7 = wkv7,
    .dot_quant_tokens = RWKV_QUANT_ENTRIES(dot_, _tokens),
};
