/* kernels_avx2.c: AVX2 + FMA + F16C kernels; compiled with those flags only, picked at run time. */
#include "kernels.h"
#include "wkv.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float horizontal_sum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline __m256 load_f32(const uint8_t * p) {
    return _mm256_loadu_ps((const float *) (const void *) p);
}

static inline __m256 load_f16(const uint8_t * p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (const void *) p));
}

/* Every product of a row and a token runs the same steps: one 8-lane FMA chain over
 * the row, the last n % 8 elements as one zero-padded step, one horizontal sum. dot_f32,
 * dot_f16 and gemm_f32 all do exactly this, so single-token and sequence evaluation give
 * the same bits. (One chain is enough: decode is bound by memory, not by FMA latency.) */
#define DEFINE_DOT(NAME, LOAD, ELEMENT_BYTES)                                               \
    static float NAME(const uint8_t * w, const float * x, size_t n) {                      \
        __m256 acc = _mm256_setzero_ps();                                                  \
        size_t i = 0;                                                                      \
        for (; i + 8 <= n; i += 8) {                                                       \
            acc = _mm256_fmadd_ps(LOAD(w + i * ELEMENT_BYTES), _mm256_loadu_ps(x + i), acc); \
        }                                                                                  \
        if (i < n) {                                                                       \
            uint8_t w_tail[8 * ELEMENT_BYTES] = {0};                                       \
            float x_tail[8] = {0};                                                         \
            memcpy(w_tail, w + i * ELEMENT_BYTES, (n - i) * ELEMENT_BYTES);                \
            memcpy(x_tail, x + i, (n - i) * sizeof(float));                                \
            acc = _mm256_fmadd_ps(LOAD(w_tail), _mm256_loadu_ps(x_tail), acc);             \
        }                                                                                  \
        return horizontal_sum(acc);                                                        \
    }

static inline float scalar_f16(const uint8_t * p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return rwkv_f16_to_f32(h);
}

DEFINE_DOT(dot_f32, load_f32, 4)
DEFINE_DOT(dot_f16, load_f16, 2)

static void f16_to_f32(const uint8_t * src, float * dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, load_f16(src + 2 * i));
    }
    for (; i < n; i++) {
        dst[i] = scalar_f16(src + 2 * i);
    }
}

/* ---- quantized rows against two-level 8-bit activations ---- */

static inline float scale_f16(const uint8_t * p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The 16 bytes of nibbles as 32 values 0..15, weight j in byte j. */
static inline __m256i unpack_nibbles(const uint8_t * qs) {
    const __m128i packed = _mm_loadu_si128((const __m128i *) (const void *) qs);
    const __m128i mask = _mm_set1_epi8(0x0f);
    const __m128i low = _mm_and_si128(packed, mask);
    const __m128i high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    return _mm256_set_m128i(high, low);
}

/* Byte j = 0x10 where bit j of the 32-bit qh is set (Q5's fifth bits). */
static inline __m256i fifth_bits(const uint8_t * qh_bytes) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int) qh), spread);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));  /* all bits but bit j */
    bytes = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
    return _mm256_and_si256(bytes, _mm256_set1_epi8(0x10));
}

/* Eight int32 partial sums of w[j] * a[j] for signed weights (|w| <= 128, |a| <= 127:
 * maddubs cannot saturate). */
static inline __m256i dot_i8(__m256i w, __m256i a) {
    const __m256i products = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(products, _mm256_set1_epi16(1));
}

static inline __m256i load_i8x32(const int8_t * p) {
    return _mm256_loadu_si256((const __m256i *) (const void *) p);
}

/* Both activation levels against one block's weights: 256 * dot(w, q) + dot(w, q2) in int32
 * (at most 256 * 32 * 128 * 127 + 32 * 128 * 127: no overflow), then one scale. */
static inline __m256 block_dot(__m256 acc, __m256i w, float d, const struct rwkv_q8_block * x) {
    const __m256i both = _mm256_add_epi32(_mm256_slli_epi32(dot_i8(w, load_i8x32(x->qs)), 8), dot_i8(w, load_i8x32(x->qs2)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(both), _mm256_set1_ps(d * x->d * (1.0f / 256.0f)), acc);
}

#include "quant_dot_template.h"

#define Q4_0_WEIGHTS(block) _mm256_sub_epi8(unpack_nibbles((block) + 2), _mm256_set1_epi8(8))
#define Q4_1_WEIGHTS(block) unpack_nibbles((block) + 4)
#define Q5_0_WEIGHTS(block) _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles((block) + 6), fifth_bits((block) + 2)), _mm256_set1_epi8(16))
#define Q5_1_WEIGHTS(block) _mm256_or_si256(unpack_nibbles((block) + 8), fifth_bits((block) + 4))
#define Q8_0_WEIGHTS(block) _mm256_loadu_si256((const __m256i *) (const void *) ((block) + 2))

DEFINE_DOT_QUANT(dot_q4_0, 18, Q4_0_WEIGHTS, block_dot, scale_f16, 0)
DEFINE_DOT_QUANT(dot_q4_1, 20, Q4_1_WEIGHTS, block_dot, scale_f16, 1)
DEFINE_DOT_QUANT(dot_q5_0, 22, Q5_0_WEIGHTS, block_dot, scale_f16, 0)
DEFINE_DOT_QUANT(dot_q5_1, 24, Q5_1_WEIGHTS, block_dot, scale_f16, 1)
DEFINE_DOT_QUANT(dot_q8_0, 34, Q8_0_WEIGHTS, block_dot, scale_f16, 0)

/* ---- sequence mode ---- */

/* 2 rows x 4 tokens per tile; each of the 8 products follows dot_f32's exact steps. */
static void gemm_f32(const float * w, size_t w_stride, size_t n_rows, const float * x, size_t x_stride,
                     size_t T, size_t n, float * y, size_t y_stride) {
    const size_t n8 = n & ~(size_t) 7;
    size_t r = 0;
    for (; r + 2 <= n_rows; r += 2) {
        const float * w0 = w + r * w_stride, * w1 = w0 + w_stride;
        size_t t = 0;
        for (; t + 4 <= T; t += 4) {
            const float * xs[4] = {x + t * x_stride, x + (t + 1) * x_stride, x + (t + 2) * x_stride, x + (t + 3) * x_stride};
            __m256 a0[4], a1[4];
            for (int j = 0; j < 4; j++) {
                a0[j] = _mm256_setzero_ps();
                a1[j] = _mm256_setzero_ps();
            }
            for (size_t i = 0; i < n8; i += 8) {
                const __m256 v0 = _mm256_loadu_ps(w0 + i), v1 = _mm256_loadu_ps(w1 + i);
                for (int j = 0; j < 4; j++) {
                    const __m256 xv = _mm256_loadu_ps(xs[j] + i);
                    a0[j] = _mm256_fmadd_ps(v0, xv, a0[j]);
                    a1[j] = _mm256_fmadd_ps(v1, xv, a1[j]);
                }
            }
            if (n8 < n) {
                float w0_tail[8] = {0}, w1_tail[8] = {0};
                memcpy(w0_tail, w0 + n8, (n - n8) * sizeof(float));
                memcpy(w1_tail, w1 + n8, (n - n8) * sizeof(float));
                for (int j = 0; j < 4; j++) {
                    float x_tail[8] = {0};
                    memcpy(x_tail, xs[j] + n8, (n - n8) * sizeof(float));
                    const __m256 xv = _mm256_loadu_ps(x_tail);
                    a0[j] = _mm256_fmadd_ps(_mm256_loadu_ps(w0_tail), xv, a0[j]);
                    a1[j] = _mm256_fmadd_ps(_mm256_loadu_ps(w1_tail), xv, a1[j]);
                }
            }
            for (int j = 0; j < 4; j++) {
                y[(t + j) * y_stride + r] = horizontal_sum(a0[j]);
                y[(t + j) * y_stride + r + 1] = horizontal_sum(a1[j]);
            }
        }
        rwkv_gemm_f32_generic(&rwkv_kernels_avx2, w0, w_stride, 2, x + t * x_stride, x_stride, T - t, n, y + t * y_stride + r, y_stride);
    }
    rwkv_gemm_f32_generic(&rwkv_kernels_avx2, w + r * w_stride, w_stride, n_rows - r, x, x_stride, T, n, y + r, y_stride);
}

DEFINE_DOT_QUANT_TOKENS(dot_q4_0_tokens, dot_q4_0, 18, Q4_0_WEIGHTS, block_dot, scale_f16, 0)
DEFINE_DOT_QUANT_TOKENS(dot_q4_1_tokens, dot_q4_1, 20, Q4_1_WEIGHTS, block_dot, scale_f16, 1)
DEFINE_DOT_QUANT_TOKENS(dot_q5_0_tokens, dot_q5_0, 22, Q5_0_WEIGHTS, block_dot, scale_f16, 0)
DEFINE_DOT_QUANT_TOKENS(dot_q5_1_tokens, dot_q5_1, 24, Q5_1_WEIGHTS, block_dot, scale_f16, 1)
DEFINE_DOT_QUANT_TOKENS(dot_q8_0_tokens, dot_q8_0, 34, Q8_0_WEIGHTS, block_dot, scale_f16, 0)

/* ---- WKV recurrences, 8 channels a vector (head sizes that are multiples of 8) ---- */

static void wkv5(size_t n_heads, size_t N, const float * r, const float * k, const float * v,
                 const float * u, const float * w, float * S, float * out) {
    if (N % 8 != 0) {
        rwkv_wkv5(n_heads, N, r, k, v, u, w, S, out);
        return;
    }
    for (size_t h = 0; h < n_heads; h++) {
        const size_t base = h * N;
        float * Sh = S + h * N * N;
        for (size_t j = 0; j < N; j += 8) {
            _mm256_storeu_ps(out + base + j, _mm256_setzero_ps());
        }
        for (size_t i = 0; i < N; i++) {
            const __m256 ri = _mm256_set1_ps(r[base + i]), ki = _mm256_set1_ps(k[base + i]);
            const __m256 ui = _mm256_set1_ps(u[base + i]), wi = _mm256_set1_ps(w[base + i]);
            float * row = Sh + i * N;
            for (size_t j = 0; j < N; j += 8) {
                const __m256 kv = _mm256_mul_ps(ki, _mm256_loadu_ps(v + base + j));
                const __m256 s = _mm256_loadu_ps(row + j);
                __m256 o = _mm256_loadu_ps(out + base + j);
                o = _mm256_fmadd_ps(ri, _mm256_fmadd_ps(ui, kv, s), o);
                _mm256_storeu_ps(out + base + j, o);
                _mm256_storeu_ps(row + j, _mm256_fmadd_ps(wi, s, kv));
            }
        }
    }
}

static void wkv7(size_t n_heads, size_t N, const float * r, const float * w, const float * k, const float * v,
                 const float * a, const float * b, float * S, float * out) {
    if (N % 8 != 0) {
        rwkv_wkv7(n_heads, N, r, w, k, v, a, b, S, out);
        return;
    }
    for (size_t h = 0; h < n_heads; h++) {
        const size_t base = h * N;
        float * Sh = S + h * N * N;
        for (size_t i = 0; i < N; i++) {
            float * row = Sh + i * N;
            __m256 sa = _mm256_setzero_ps();
            for (size_t j = 0; j < N; j += 8) {
                sa = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(a + base + j), sa);
            }
            const __m256 sa_all = _mm256_set1_ps(horizontal_sum(sa));
            const __m256 vi = _mm256_set1_ps(v[base + i]);
            __m256 y = _mm256_setzero_ps();
            for (size_t j = 0; j < N; j += 8) {
                __m256 s = _mm256_mul_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(w + base + j));
                s = _mm256_fmadd_ps(sa_all, _mm256_loadu_ps(b + base + j), s);
                s = _mm256_fmadd_ps(vi, _mm256_loadu_ps(k + base + j), s);
                _mm256_storeu_ps(row + j, s);
                y = _mm256_fmadd_ps(s, _mm256_loadu_ps(r + base + j), y);
            }
            out[base + i] = horizontal_sum(y);
        }
    }
}

const struct rwkv_kernels rwkv_kernels_avx2 = {
    .name = "avx2",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .f16_to_f32 = f16_to_f32,
    .dot_quant = RWKV_QUANT_ENTRIES(dot_, ),
    .gemm_f32 = gemm_f32,
    .wkv5 = wkv5,
    .wkv7 = wkv7,
    .dot_quant_tokens = RWKV_QUANT_ENTRIES(dot_, _tokens),
};
