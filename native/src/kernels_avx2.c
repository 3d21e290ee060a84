/* kernels_avx2.c: AVX2 + FMA + F16C kernels; compiled with those flags only, picked at run time. */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Four 8-lane accumulators hide the FMA latency. dot_f32 and dot_f16 share this exact
 * structure so both give the same bits for the same row. */
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

/* The last n % 8 elements go through one more zero-padded vector step rather than a scalar
 * loop: a scalar `sum += w * x` is fused or not as the compiler likes (gcc -O3 vectorizes the
 * f32 tail's products but fuses the f16 tail's), which broke dot_f16 == dot_f32. */
#define DEFINE_DOT(NAME, LOAD, ELEMENT_BYTES)                                                \
    static float NAME(const uint8_t * w, const float * x, size_t n) {                       \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                          \
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                          \
        size_t i = 0;                                                                       \
        for (; i + 32 <= n; i += 32) {                                                      \
            a0 = _mm256_fmadd_ps(LOAD(w + (i + 0) * ELEMENT_BYTES), _mm256_loadu_ps(x + i + 0), a0);   \
            a1 = _mm256_fmadd_ps(LOAD(w + (i + 8) * ELEMENT_BYTES), _mm256_loadu_ps(x + i + 8), a1);   \
            a2 = _mm256_fmadd_ps(LOAD(w + (i + 16) * ELEMENT_BYTES), _mm256_loadu_ps(x + i + 16), a2); \
            a3 = _mm256_fmadd_ps(LOAD(w + (i + 24) * ELEMENT_BYTES), _mm256_loadu_ps(x + i + 24), a3); \
        }                                                                                   \
        for (; i + 8 <= n; i += 8) {                                                        \
            a0 = _mm256_fmadd_ps(LOAD(w + i * ELEMENT_BYTES), _mm256_loadu_ps(x + i), a0);  \
        }                                                                                   \
        if (i < n) {                                                                        \
            uint8_t w_tail[8 * ELEMENT_BYTES] = {0};                                        \
            float x_tail[8] = {0};                                                          \
            memcpy(w_tail, w + i * ELEMENT_BYTES, (n - i) * ELEMENT_BYTES);                 \
            memcpy(x_tail, x + i, (n - i) * sizeof(float));                                 \
            a0 = _mm256_fmadd_ps(LOAD(w_tail), _mm256_loadu_ps(x_tail), a0);                \
        }                                                                                   \
        return horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))); \
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

const struct rwkv_kernels rwkv_kernels_avx2 = {
    .name = "avx2",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .f16_to_f32 = f16_to_f32,
};
