/* kernels_neon.c: AArch64 NEON kernels (fp16 widened with FCVTL, explicit FMA); compiled only for
 * aarch64 (Linux, macOS, Windows on ARM), with gcc or clang: ACLE intrinsics only. */
#include "kernels.h"
#include "wkv.h"

#include <string.h>

#if defined(__ARM_NEON) && (defined(__aarch64__) || defined(_M_ARM64))
#include <arm_neon.h>

/* Four 4-lane accumulators hide the FMA latency. dot_f32 and dot_f16 share this exact
 * structure (as in kernels_avx2.c) so both give the same bits for the same row. Loads go
 * through bytes: weights come unaligned from the mapped file. */
static inline float32x4_t load_f32(const uint8_t * p) {
    return vreinterpretq_f32_u8(vld1q_u8(p));
}

static inline float32x4_t load_f16(const uint8_t * p) {
    return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p)));
}

/* The last n % 4 elements go through one more zero-padded vector step, not a scalar loop the
 * compiler could fuse in one function and not in the other. */
#define DEFINE_DOT(NAME, LOAD, ELEMENT_BYTES)                                                  \
    static float NAME(const uint8_t * w, const float * x, size_t n) {                         \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);                           \
        float32x4_t a2 = vdupq_n_f32(0.0f), a3 = vdupq_n_f32(0.0f);                           \
        size_t i = 0;                                                                         \
        for (; i + 16 <= n; i += 16) {                                                        \
            a0 = vfmaq_f32(a0, LOAD(w + (i + 0) * ELEMENT_BYTES), vld1q_f32(x + i + 0));     \
            a1 = vfmaq_f32(a1, LOAD(w + (i + 4) * ELEMENT_BYTES), vld1q_f32(x + i + 4));     \
            a2 = vfmaq_f32(a2, LOAD(w + (i + 8) * ELEMENT_BYTES), vld1q_f32(x + i + 8));     \
            a3 = vfmaq_f32(a3, LOAD(w + (i + 12) * ELEMENT_BYTES), vld1q_f32(x + i + 12));   \
        }                                                                                     \
        for (; i + 4 <= n; i += 4) {                                                          \
            a0 = vfmaq_f32(a0, LOAD(w + i * ELEMENT_BYTES), vld1q_f32(x + i));                \
        }                                                                                     \
        if (i < n) {                                                                          \
            uint8_t w_tail[4 * ELEMENT_BYTES] = {0};                                          \
            float x_tail[4] = {0};                                                            \
            memcpy(w_tail, w + i * ELEMENT_BYTES, (n - i) * ELEMENT_BYTES);                   \
            memcpy(x_tail, x + i, (n - i) * sizeof(float));                                   \
            a0 = vfmaq_f32(a0, LOAD(w_tail), vld1q_f32(x_tail));                              \
        }                                                                                     \
        return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));                   \
    }

DEFINE_DOT(dot_f32, load_f32, 4)
DEFINE_DOT(dot_f16, load_f16, 2)

static void f16_to_f32(const uint8_t * src, float * dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(src + 2 * i));
        vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = rwkv_f16_to_f32(h);
    }
}

/* Sequence mode over this table's own dot products, so a token gives the same bits alone or
 * in a sequence. */
static void gemm_f32(const float * w, size_t w_stride, size_t n_rows, const float * x, size_t x_stride,
                     size_t T, size_t n, float * y, size_t y_stride) {
    rwkv_gemm_f32_generic(&rwkv_kernels_neon, w, w_stride, n_rows, x, x_stride, T, n, y, y_stride);
}

/* No NEON integer dot kernels yet: quantized rows go through the scalar reference. */
const struct rwkv_kernels rwkv_kernels_neon = {
    .name = "neon",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .f16_to_f32 = f16_to_f32,
    .dot_quant = RWKV_QUANT_ENTRIES(rwkv_dot_, _scalar),
    .gemm_f32 = gemm_f32,
    .wkv5 = rwkv_wkv5,
    .wkv7 = rwkv_wkv7,
    .dot_quant_tokens = RWKV_QUANT_ENTRIES(rwkv_dot_, _tokens_scalar),
};

#else
#error "kernels_neon.c is for AArch64 with NEON only (CMake adds it for aarch64/arm64 targets)"
#endif
