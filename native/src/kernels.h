/* kernels.h: the table of hot inner loops. kernels_scalar.c is the reference; each ISA file
 * (kernels_avx2.c, ...) fills the same table and is tested against it. */
#ifndef RWKV_KERNELS_H
#define RWKV_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "quant.h"
#include "tensor_types.h"

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

    /* Sequence mode: the same products for T tokens, reusing each loaded weight for many.
     * gemm_f32: y[t * y_stride + r] = w_r . x_t for n_rows float rows w_r (w + r * w_stride,
     * aligned scratch) and T tokens x_t (x + t * x_stride), each of n floats. */
    void (*gemm_f32)(const float * w, size_t w_stride, size_t n_rows, const float * x, size_t x_stride,
                     size_t T, size_t n, float * y, size_t y_stride);
    /* The WKV recurrences of v5/v6 and v7 for one token over n_heads heads (see wkv.h; the
     * pointers start at the first of those heads). */
    void (*wkv5)(size_t n_heads, size_t N, const float * r, const float * k, const float * v,
                 const float * u, const float * w, float * S, float * out);
    void (*wkv7)(size_t n_heads, size_t N, const float * r, const float * w, const float * k, const float * v,
                 const float * a, const float * b, float * S, float * out);

    /* One quantized row against T tokens' activations (x + t * n_blocks): y[t * y_stride]. */
    void (*dot_quant_tokens[RWKV_TYPE_COUNT])(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks,
                                               size_t T, float * y, size_t y_stride);
};

/* The five quantized types' entries of a table, from functions named PREFIX##q4_0##SUFFIX etc. */
#define RWKV_QUANT_ENTRIES(PREFIX, SUFFIX)            \
    {                                                 \
        [RWKV_TYPE_Q4_0] = PREFIX##q4_0##SUFFIX,      \
        [RWKV_TYPE_Q4_1] = PREFIX##q4_1##SUFFIX,      \
        [RWKV_TYPE_Q5_0] = PREFIX##q5_0##SUFFIX,      \
        [RWKV_TYPE_Q5_1] = PREFIX##q5_1##SUFFIX,      \
        [RWKV_TYPE_Q8_0] = PREFIX##q8_0##SUFFIX,      \
    }

/* The scalar table's quantized sequence-mode entries (one token after another), which tables
 * without integer SIMD kernels (NEON for now) use too. */
#define RWKV_DECLARE_DOT_QUANT_TOKENS(TYPE) \
    void rwkv_dot_##TYPE##_tokens_scalar(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks, \
                                         size_t T, float * y, size_t y_stride);
RWKV_DECLARE_DOT_QUANT_TOKENS(q4_0)
RWKV_DECLARE_DOT_QUANT_TOKENS(q4_1)
RWKV_DECLARE_DOT_QUANT_TOKENS(q5_0)
RWKV_DECLARE_DOT_QUANT_TOKENS(q5_1)
RWKV_DECLARE_DOT_QUANT_TOKENS(q8_0)

/* Portable versions of the sequence-mode entries, built on a table's single dot products
 * (the scalar table uses them; SIMD tables use them for leftovers). */
void rwkv_gemm_f32_generic(const struct rwkv_kernels * k, const float * w, size_t w_stride, size_t n_rows,
                           const float * x, size_t x_stride, size_t T, size_t n, float * y, size_t y_stride);

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
