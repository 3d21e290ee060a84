/* kernels_scalar.c: portable reference kernels, the truth the SIMD variants are tested against. */
#include "kernels.h"
#include "wkv.h"

#include <string.h>

/* No fused multiply-add: with FMA available (-march=native, aarch64) compilers fuse
 * `acc += w * x` in one loop and not in another, and dot_f16 would stop matching dot_f32. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

float rwkv_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        /* Subnormal half: normalize. */
        exponent = 113;
        while ((mantissa & 0x400) == 0) {
            mantissa <<= 1;
            exponent--;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t rwkv_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) {
        return (uint16_t) (sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    }
    if (abs >= 0x477ff000u) {  /* rounds to >= 65520: overflow to infinity */
        return (uint16_t) (sign | 0x7c00);
    }
    if (abs < 0x38800000u) {  /* below the smallest normal half: subnormal or zero */
        if (abs < 0x33000000u) {
            return (uint16_t) sign;
        }
        const uint32_t exponent = abs >> 23;
        const uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - exponent;  /* 14..24 */
        uint32_t half = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1);
        const uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1))) {
            half++;
        }
        return (uint16_t) (sign | half);
    }
    uint32_t half = ((abs >> 13) - (112u << 10));
    const uint32_t rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) {
        half++;
    }
    return (uint16_t) (sign | half);
}

/* 8 interleaved partial sums: the same order the AVX2 kernel's 8 lanes use, so a row gives
 * the same result whichever of dot_f16 / dot_f32 reads it. */
#define LANES 8

static float reduce_lanes(const float * acc) {
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float dot_f32(const uint8_t * weights, const float * x, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int l = 0; l < LANES; l++) {
            float w;
            memcpy(&w, weights + 4 * (i + l), 4);
            acc[l] += w * x[i + l];
        }
    }
    float sum = reduce_lanes(acc);
    for (; i < n; i++) {
        float w;
        memcpy(&w, weights + 4 * i, 4);
        sum += w * x[i];
    }
    return sum;
}

static float dot_f16(const uint8_t * weights, const float * x, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int l = 0; l < LANES; l++) {
            uint16_t h;
            memcpy(&h, weights + 2 * (i + l), 2);
            acc[l] += rwkv_f16_to_f32(h) * x[i + l];
        }
    }
    float sum = reduce_lanes(acc);
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, weights + 2 * i, 2);
        sum += rwkv_f16_to_f32(h) * x[i];
    }
    return sum;
}

static void f16_to_f32(const uint8_t * src, float * dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = rwkv_f16_to_f32(h);
    }
}

void rwkv_gemm_f32_generic(const struct rwkv_kernels * k, const float * w, size_t w_stride, size_t n_rows,
                           const float * x, size_t x_stride, size_t T, size_t n, float * y, size_t y_stride) {
    for (size_t r = 0; r < n_rows; r++) {
        for (size_t t = 0; t < T; t++) {
            y[t * y_stride + r] = k->dot_f32((const uint8_t *) (w + r * w_stride), x + t * x_stride, n);
        }
    }
}

static void gemm_f32(const float * w, size_t w_stride, size_t n_rows, const float * x, size_t x_stride,
                     size_t T, size_t n, float * y, size_t y_stride) {
    rwkv_gemm_f32_generic(&rwkv_kernels_scalar, w, w_stride, n_rows, x, x_stride, T, n, y, y_stride);
}

#define DEFINE_DOT_QUANT_TOKENS(NAME, DOT)                                                          \
    void NAME(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks, size_t T, \
                     float * y, size_t y_stride) {                                                  \
        for (size_t t = 0; t < T; t++) {                                                            \
            y[t * y_stride] = DOT(row, x + t * n_blocks, n_blocks);                                  \
        }                                                                                           \
    }
DEFINE_DOT_QUANT_TOKENS(rwkv_dot_q4_0_tokens_scalar, rwkv_dot_q4_0_scalar)
DEFINE_DOT_QUANT_TOKENS(rwkv_dot_q4_1_tokens_scalar, rwkv_dot_q4_1_scalar)
DEFINE_DOT_QUANT_TOKENS(rwkv_dot_q5_0_tokens_scalar, rwkv_dot_q5_0_scalar)
DEFINE_DOT_QUANT_TOKENS(rwkv_dot_q5_1_tokens_scalar, rwkv_dot_q5_1_scalar)
DEFINE_DOT_QUANT_TOKENS(rwkv_dot_q8_0_tokens_scalar, rwkv_dot_q8_0_scalar)

const struct rwkv_kernels rwkv_kernels_scalar = {
    .name = "scalar",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .f16_to_f32 = f16_to_f32,
    .dot_quant = RWKV_QUANT_ENTRIES(rwkv_dot_, _scalar),
    .gemm_f32 = gemm_f32,
    .wkv5 = rwkv_wkv5,
    .wkv7 = rwkv_wkv7,
    .dot_quant_tokens = RWKV_QUANT_ENTRIES(rwkv_dot_, _tokens_scalar),
};
