/* kernels.h: the table of hot inner loops. kernels_scalar.c is the reference; each ISA file
 * (kernels_avx2.c, ...) fills the same table and is tested against it. */
#ifndef RWKV_KERNELS_H
#define RWKV_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "quant.h"

struct rwkv_kernels {
    const char * name;
    /* Dot products over n elements. Weights may be unaligned (they come straight from the
     * mapped file). dot_f16 and dot_f32 of the widened row give bit-identical results, so
     * single-token and sequence evaluation agree exactly. */
    float (*dot_f32)(const uint8_t * weights, const float * x, size_t n);
    float (*dot_f16)(const uint8_t * weights, const float * x, size_t n);
    /* Widens n fp16 values to float32. */
    void (*f16_to_f32)(const uint8_t * src, float * dst, size_t n);
    /* Quantized weight row . quantized activations, indexed by the weight's type (NULL for
     * F32/F16). The integer parts are exact; tables differ only in float rounding. */
    rwkv_dot_quant_fn dot_quant[RWKV_TYPE_COUNT];
};

extern const struct rwkv_kernels rwkv_kernels_scalar;
#if defined(RWKV_HAVE_AVX2_KERNELS)
extern const struct rwkv_kernels rwkv_kernels_avx2;
extern const struct rwkv_kernels rwkv_kernels_avx512;
#endif
#if defined(RWKV_HAVE_NEON_KERNELS)
extern const struct rwkv_kernels rwkv_kernels_neon;
#endif

/* IEEE half to float, exact. */
float rwkv_f16_to_f32(uint16_t h);
/* Float to IEEE half, round to nearest even (as torch's .half()). */
uint16_t rwkv_f32_to_f16(float f);

#endif
