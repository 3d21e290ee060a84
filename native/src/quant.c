/* quant.c: ggml's Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 blocks: the reference quantizer (same bytes as
 * ggml's quantize_row_*_ref), dequantization, and scalar dot products against activations
 * quantized to 8 bits. The truth that SIMD variants are tested against. */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include "kernels.h"

#define QK RWKV_QUANT_BLOCK_SIZE
#define HALF (QK / 2)

/* Block layouts (ggml):
 *   Q4_0 {fp16 d; u8 qs[16]}            x = (q - 8) d
 *   Q4_1 {fp16 d, m; u8 qs[16]}          x = q d + m
 *   Q5_0 {fp16 d; u8 qh[4]; u8 qs[16]}   x = (q - 16) d, 5th bit of weight j in bit j of qh
 *   Q5_1 {fp16 d, m; u8 qh[4]; u8 qs[16]} x = q d + m
 *   Q8_0 {fp16 d; i8 qs[32]}             x = q d
 * In qs the low nibbles hold weights 0..15, the high nibbles 16..31. */

static void put_f16(uint8_t * p, float value) {
    const uint16_t h = rwkv_f32_to_f16(value);
    memcpy(p, &h, 2);
}

static float get_f16(const uint8_t * p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return rwkv_f16_to_f32(h);
}

/* The value of largest magnitude, with its sign (first one wins ties). */
static float signed_absmax(const float * x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float * x, float * min, float * max) {
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

static int min_int(int a, int b) {
    return a < b ? a : b;
}

static void quantize_q4_0(const float * x, uint8_t * y) {
    const float d = signed_absmax(x) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    put_f16(y, d);
    for (int j = 0; j < HALF; j++) {
        const int q0 = min_int(15, (int8_t) (x[j] * id + 8.5f));
        const int q1 = min_int(15, (int8_t) (x[j + HALF] * id + 8.5f));
        y[2 + j] = (uint8_t) (q0 | (q1 << 4));
    }
}

static void quantize_q4_1(const float * x, uint8_t * y) {
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    put_f16(y, d);
    put_f16(y + 2, min);
    for (int j = 0; j < HALF; j++) {
        const int q0 = min_int(15, (int8_t) ((x[j] - min) * id + 0.5f));
        const int q1 = min_int(15, (int8_t) ((x[j + HALF] - min) * id + 0.5f));
        y[4 + j] = (uint8_t) (q0 | (q1 << 4));
    }
}

static void quantize_q5_0(const float * x, uint8_t * y) {
    const float d = signed_absmax(x) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    put_f16(y, d);
    uint32_t qh = 0;
    for (int j = 0; j < HALF; j++) {
        const int q0 = min_int(31, (int8_t) (x[j] * id + 16.5f));
        const int q1 = min_int(31, (int8_t) (x[j + HALF] * id + 16.5f));
        y[6 + j] = (uint8_t) ((q0 & 0x0f) | ((q1 & 0x0f) << 4));
        qh |= (uint32_t) ((q0 & 0x10) >> 4) << j;
        qh |= (uint32_t) ((q1 & 0x10) >> 4) << (j + HALF);
    }
    memcpy(y + 2, &qh, 4);
}

static void quantize_q5_1(const float * x, uint8_t * y) {
    float min, max;
    min_max(x, &min, &max);
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    put_f16(y, d);
    put_f16(y + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < HALF; j++) {
        const int q0 = (uint8_t) ((x[j] - min) * id + 0.5f);
        const int q1 = (uint8_t) ((x[j + HALF] - min) * id + 0.5f);
        y[8 + j] = (uint8_t) ((q0 & 0x0f) | ((q1 & 0x0f) << 4));
        qh |= (uint32_t) ((q0 & 0x10) >> 4) << j;
        qh |= (uint32_t) ((q1 & 0x10) >> 4) << (j + HALF);
    }
    memcpy(y + 4, &qh, 4);
}

static void quantize_q8_0(const float * x, uint8_t * y) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) {
        amax = fmaxf(amax, fabsf(x[j]));
    }
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    put_f16(y, d);
    for (int j = 0; j < QK; j++) {
        y[2 + j] = (uint8_t) (int8_t) roundf(x[j] * id);
    }
}

void rwkv_quantize_row(uint32_t type, const float * x, uint8_t * out, size_t n) {
    const size_t block_bytes = rwkv_type_block_bytes(type);
    for (size_t b = 0; b < n / QK; b++) {
        const float * xb = x + b * QK;
        uint8_t * yb = out + b * block_bytes;
        switch (type) {
            case RWKV_TYPE_Q4_0: quantize_q4_0(xb, yb); break;
            case RWKV_TYPE_Q4_1: quantize_q4_1(xb, yb); break;
            case RWKV_TYPE_Q5_0: quantize_q5_0(xb, yb); break;
            case RWKV_TYPE_Q5_1: quantize_q5_1(xb, yb); break;
            default: quantize_q8_0(xb, yb); break;
        }
    }
}

/* The 32 integer weights of a block (before scale and offset). */
static void unpack_block(uint32_t type, const uint8_t * block, int * q) {
    switch (type) {
        case RWKV_TYPE_Q4_0:
        case RWKV_TYPE_Q4_1: {
            const uint8_t * qs = block + (type == RWKV_TYPE_Q4_0 ? 2 : 4);
            const int bias = type == RWKV_TYPE_Q4_0 ? 8 : 0;
            for (int j = 0; j < HALF; j++) {
                q[j] = (qs[j] & 0x0f) - bias;
                q[j + HALF] = (qs[j] >> 4) - bias;
            }
            break;
        }
        case RWKV_TYPE_Q5_0:
        case RWKV_TYPE_Q5_1: {
            const size_t qh_offset = type == RWKV_TYPE_Q5_0 ? 2 : 4;
            uint32_t qh;
            memcpy(&qh, block + qh_offset, 4);
            const uint8_t * qs = block + qh_offset + 4;
            const int bias = type == RWKV_TYPE_Q5_0 ? 16 : 0;
            for (int j = 0; j < HALF; j++) {
                q[j] = ((qs[j] & 0x0f) | (int) (((qh >> j) & 1) << 4)) - bias;
                q[j + HALF] = ((qs[j] >> 4) | (int) (((qh >> (j + HALF)) & 1) << 4)) - bias;
            }
            break;
        }
        default:
            for (int j = 0; j < QK; j++) {
                q[j] = (int8_t) block[2 + j];
            }
            break;
    }
}

static bool has_offset(uint32_t type) {
    return type == RWKV_TYPE_Q4_1 || type == RWKV_TYPE_Q5_1;
}

void rwkv_dequantize_row(uint32_t type, const uint8_t * in, float * out, size_t n) {
    if (type == RWKV_TYPE_F32) {
        memcpy(out, in, n * sizeof(float));
        return;
    }
    if (type == RWKV_TYPE_F16) {
        for (size_t i = 0; i < n; i++) {
            out[i] = get_f16(in + 2 * i);
        }
        return;
    }
    const size_t block_bytes = rwkv_type_block_bytes(type);
    int q[QK];
    for (size_t b = 0; b < n / QK; b++) {
        const uint8_t * block = in + b * block_bytes;
        unpack_block(type, block, q);
        const float d = get_f16(block);
        const float m = has_offset(type) ? get_f16(block + 2) : 0.0f;
        for (int j = 0; j < QK; j++) {
            out[b * QK + j] = q[j] * d + m;
        }
    }
}

void rwkv_quantize_activations(const float * x, struct rwkv_q8_block * out, size_t n) {
    for (size_t b = 0; b < n / QK; b++) {
        const float * xb = x + b * QK;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) {
            amax = fmaxf(amax, fabsf(xb[j]));
        }
        const float d = amax / 127;
        /* NaN/inf inputs or a scale that overflows quantize to zeros: float to int8 of those
         * values would be undefined behaviour. */
        const float id = d > 0.0f && isfinite(d) && isfinite(1.0f / d) ? 1.0f / d : 0.0f;
        int sum = 0, sum2 = 0;
        for (int j = 0; j < QK; j++) {
            const float scaled = xb[j] * id;
            const float q = isfinite(scaled) ? roundf(scaled) : 0.0f;
            /* The rest is within half a step: 256 * rest lies in [-128, 128]; 128 clips to 127. */
            const float rest = isfinite(scaled) ? roundf((scaled - q) * 256.0f) : 0.0f;
            out[b].qs[j] = (int8_t) q;
            out[b].qs2[j] = (int8_t) fmaxf(-127.0f, fminf(127.0f, rest));
            sum += out[b].qs[j];
            sum2 += out[b].qs2[j];
        }
        out[b].d = id ? d : 0.0f;
        out[b].s = out[b].d * ((float) sum + (float) sum2 / 256.0f);
    }
}

/* Per block: d_w d / 256 (256 sum(q_w q) + sum(q_w q2)), plus m_w s for the types with an offset. */
static float dot_quant(uint32_t type, const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks) {
    const size_t block_bytes = rwkv_type_block_bytes(type);
    const bool offset = has_offset(type);
    int q[QK];
    float sum = 0.0f;
    for (size_t b = 0; b < n_blocks; b++) {
        const uint8_t * block = row + b * block_bytes;
        unpack_block(type, block, q);
        int dot = 0, dot2 = 0;
        for (int j = 0; j < QK; j++) {
            dot += q[j] * x[b].qs[j];
            dot2 += q[j] * x[b].qs2[j];
        }
        sum += get_f16(block) * (x[b].d / 256.0f) * (float) (256 * dot + dot2);
        if (offset) {
            sum += get_f16(block + 2) * x[b].s;
        }
    }
    return sum;
}

#define DEFINE_DOT(NAME, TYPE) \
    float NAME(const uint8_t * row, const struct rwkv_q8_block * x, size_t n_blocks) { \
        return dot_quant(TYPE, row, x, n_blocks); \
    }
DEFINE_DOT(rwkv_dot_q4_0_scalar, RWKV_TYPE_Q4_0)
DEFINE_DOT(rwkv_dot_q4_1_scalar, RWKV_TYPE_Q4_1)
DEFINE_DOT(rwkv_dot_q5_0_scalar, RWKV_TYPE_Q5_0)
DEFINE_DOT(rwkv_dot_q5_1_scalar, RWKV_TYPE_Q5_1)
DEFINE_DOT(rwkv_dot_q8_0_scalar, RWKV_TYPE_Q8_0)
