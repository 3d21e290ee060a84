/* quant.h: ggml's quantized block formats, bit for bit (32 weights a block, fp16 scale first):
 * reference (scalar) quantize, dequantize, and dot products against 8-bit activations. */
#ifndef RWKV_QUANT_H
#define RWKV_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "tensor_types.h"

/* Activations quantized for integer dot products, per block of 32, in two 8-bit levels:
 * x ~ d * (q + q2 / 256), where q2 quantizes what q leaves over on a 256 times finer grid.
 * ggml uses one level; the second costs one more integer dot product on the same unpacked
 * weights, combined in integers as 256 * dot(w, q) + dot(w, q2) (free in memory-bound
 * decode), and cuts the activation rounding error from 1/254 to about 1/65000 of the block's
 * largest value: logits on rwkv.cpp's Q5 test models move from 0.25 to 1e-3 of the
 * reference. s = d * (sum(q) + sum(q2) / 256) serves the offset of Q4_1/Q5_1 weights. */
struct rwkv_q8_block {
    float d;
    float s;
    int8_t qs[RWKV_QUANT_BLOCK_SIZE];
    int8_t qs2[RWKV_QUANT_BLOCK_SIZE];
};

/* n must be a multiple of 32 for the quantized types. */
void rwkv_quantize_row(uint32_t type, const float * x, uint8_t * out, size_t n);
/* Any type, F32 and F16 included; in may be unaligned. */
void rwkv_dequantize_row(uint32_t type, const uint8_t * in, float * out, size_t n);

void rwkv_quantize_activations(const float * x, struct rwkv_q8_block * out, size_t n);

/* sum over the row of weight * activation, for a quantized weight row of n_blocks blocks. */
typedef float (*rwkv_dot_quant_fn)(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks);
float rwkv_dot_q4_0_scalar(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks);
float rwkv_dot_q4_1_scalar(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks);
float rwkv_dot_q5_0_scalar(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks);
float rwkv_dot_q5_1_scalar(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks);
float rwkv_dot_q8_0_scalar(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks);

#endif
