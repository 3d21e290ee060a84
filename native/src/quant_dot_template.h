/* quant_dot_template.h: the loops of the quantized dot products, shared by the x86 kernel
 * files (each includes it after defining its own block_dot, f16 scale loader and horizontal
 * sum, compiled with its own ISA flags).
 *
 * Every product of a row and a token takes the same steps, whether one token or a group:
 * even blocks into one accumulator, odd blocks into another (two independent chains), the
 * same for Q4_1/Q5_1's offsets, then acc_even + acc_odd. So sequence mode gives the same bits
 * as single tokens. */
#ifndef RWKV_QUANT_DOT_TEMPLATE_H
#define RWKV_QUANT_DOT_TEMPLATE_H

/* BLOCK_DOT(acc, w, d, x): acc plus one block's contribution. SCALE(p): the fp16 at p. */
#define DEFINE_DOT_QUANT(NAME, BLOCK_BYTES, WEIGHTS, BLOCK_DOT, SCALE, HAS_OFFSET)                 \
    static float NAME(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks) {     \
        __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();                             \
        float offset_even = 0.0f, offset_odd = 0.0f;                                              \
        for (size_t b = 0; b < n_blocks; b++) {                                                   \
            const uint8_t * block = row + b * BLOCK_BYTES;                                        \
            const __m256i w = WEIGHTS(block);                                                     \
            if (b & 1) {                                                                          \
                odd = BLOCK_DOT(odd, w, SCALE(block), &x[b]);                                     \
                if (HAS_OFFSET) offset_odd = fmaf(SCALE(block + 2), x[b].s, offset_odd);          \
            } else {                                                                              \
                even = BLOCK_DOT(even, w, SCALE(block), &x[b]);                                   \
                if (HAS_OFFSET) offset_even = fmaf(SCALE(block + 2), x[b].s, offset_even);        \
            }                                                                                     \
        }                                                                                         \
        return horizontal_sum(_mm256_add_ps(even, odd)) + (offset_even + offset_odd);             \
    }

/* Four tokens at a time share each unpacked block; the remaining tokens go one by one. */
#define QUANT_TOKEN_STEP(I, BLOCK_DOT, HAS_OFFSET)                                                                      \
    if (b & 1) {                                                                                  \
        odd##I = BLOCK_DOT(odd##I, w, d, &x##I[b]);                                               \
        if (HAS_OFFSET) offset_odd##I = fmaf(m, x##I[b].s, offset_odd##I);                        \
    } else {                                                                                      \
        even##I = BLOCK_DOT(even##I, w, d, &x##I[b]);                                             \
        if (HAS_OFFSET) offset_even##I = fmaf(m, x##I[b].s, offset_even##I);                      \
    }

#define DEFINE_DOT_QUANT_TOKENS(NAME, SINGLE, BLOCK_BYTES, WEIGHTS, BLOCK_DOT, SCALE, HAS_OFFSET)  \
    static void NAME(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks, size_t T, \
                     float * y, size_t y_stride) {                                                \
        size_t t = 0;                                                                             \
        for (; t + 4 <= T; t += 4) {                                                              \
            const struct rwkv_q8_block * x0 = x + t * n_blocks, * x1 = x0 + n_blocks;            \
            const struct rwkv_q8_block * x2 = x1 + n_blocks, * x3 = x2 + n_blocks;               \
            __m256 even0 = _mm256_setzero_ps(), even1 = even0, even2 = even0, even3 = even0;      \
            __m256 odd0 = even0, odd1 = even0, odd2 = even0, odd3 = even0;                        \
            float offset_even0 = 0.0f, offset_even1 = 0.0f, offset_even2 = 0.0f, offset_even3 = 0.0f; \
            float offset_odd0 = 0.0f, offset_odd1 = 0.0f, offset_odd2 = 0.0f, offset_odd3 = 0.0f;  \
            for (size_t b = 0; b < n_blocks; b++) {                                               \
                const uint8_t * block = row + b * BLOCK_BYTES;                                    \
                const __m256i w = WEIGHTS(block);                                                 \
                const float d = SCALE(block);                                                     \
                const float m = HAS_OFFSET ? SCALE(block + 2) : 0.0f;                             \
                (void) m;                                                                         \
                QUANT_TOKEN_STEP(0, BLOCK_DOT, HAS_OFFSET) QUANT_TOKEN_STEP(1, BLOCK_DOT, HAS_OFFSET)          \
                QUANT_TOKEN_STEP(2, BLOCK_DOT, HAS_OFFSET) QUANT_TOKEN_STEP(3, BLOCK_DOT, HAS_OFFSET)          \
            }                                                                                     \
            y[t * y_stride] = horizontal_sum(_mm256_add_ps(even0, odd0)) + (offset_even0 + offset_odd0);             \
            y[(t + 1) * y_stride] = horizontal_sum(_mm256_add_ps(even1, odd1)) + (offset_even1 + offset_odd1);       \
            y[(t + 2) * y_stride] = horizontal_sum(_mm256_add_ps(even2, odd2)) + (offset_even2 + offset_odd2);       \
            y[(t + 3) * y_stride] = horizontal_sum(_mm256_add_ps(even3, odd3)) + (offset_even3 + offset_odd3);       \
        }                                                                                         \
        for (; t < T; t++) {                                                                      \
            y[t * y_stride] = SINGLE(row, x + t * n_blocks, n_blocks);                            \
        }                                                                                         \
    }

#endif
