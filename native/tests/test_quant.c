/* test_quant.c: the quantized block formats and dot products.
 * - quantize -> dequantize stays within each format's rounding bound (half a step of the
 *   block's scale) on random and edge blocks;
 * - the scalar dot product equals sum(dequantized weight * dequantized activation) computed
 *   in double (the integer parts are exact, so only float rounding may differ);
 * - the two-level activations reproduce x within 1/(127 * 256) of each block's max;
 * - every compiled kernel table's dot_quant agrees with the scalar one.
 * Byte-exactness against ggml is tested from Python against the gguf package. */
#include <float.h>
#include "cpu_features.h"
#include "kernels.h"
#include "quant.h"
#include "tensor_types.h"
#include "test_util.h"

#define N_BLOCKS 24
#define N (N_BLOCKS * RWKV_QUANT_BLOCK_SIZE)

static const uint32_t types[] = {RWKV_TYPE_Q4_0, RWKV_TYPE_Q4_1, RWKV_TYPE_Q5_0, RWKV_TYPE_Q5_1, RWKV_TYPE_Q8_0};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double) (rng_state >> 11) / 9007199254740992.0;
}

/* Fills block b of x with one of several shapes: random, zeros, constant, a spike, tiny. */
static void fill_block(float * x, int kind) {
    for (int j = 0; j < RWKV_QUANT_BLOCK_SIZE; j++) {
        const double r = uniform() * 2 - 1;
        switch (kind % 6) {
            case 0: x[j] = (float) r; break;
            case 1: x[j] = 0.0f; break;
            case 2: x[j] = 0.75f; break;
            case 3: x[j] = j == 7 ? 100.0f : (float) r * 0.01f; break;
            case 4: x[j] = (float) r * 1e-20f; break;
            default: x[j] = (float) (r * 1000.0); break;
        }
    }
}

/* Largest step between neighbouring levels of a block: d (and the m offset is exact). */
static double step_of_block(uint32_t type, const uint8_t * block) {
    uint16_t h;
    memcpy(&h, block, 2);
    (void) type;
    return fabs((double) rwkv_f16_to_f32(h));
}

static void test_round_trip(void) {
    float x[N], y[N];
    uint8_t q[N_BLOCKS * 34];
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        const uint32_t type = types[t];
        for (int b = 0; b < N_BLOCKS; b++) {
            fill_block(x + b * RWKV_QUANT_BLOCK_SIZE, b);
        }
        rwkv_quantize_row(type, x, q, N);
        rwkv_dequantize_row(type, q, y, N);
        for (int b = 0; b < N_BLOCKS; b++) {
            const uint8_t * block = q + b * rwkv_type_block_bytes(type);
            const double step = step_of_block(type, block);
            double max_abs = 0;
            for (int j = 0; j < RWKV_QUANT_BLOCK_SIZE; j++) {
                max_abs = fmax(max_abs, fabs(x[b * RWKV_QUANT_BLOCK_SIZE + j]));
            }
            for (int j = 0; j < RWKV_QUANT_BLOCK_SIZE; j++) {
                const int i = b * RWKV_QUANT_BLOCK_SIZE + j;
                /* Half a step, plus fp16 rounding of d and m (relative 2^-11 of the block max).
                 * Q4_0/Q5_0 scale by the signed max, so values at the other end of the range
                 * may clip by up to a whole step. A d below fp16's normal range (6.1e-5) loses
                 * its precision: anything up to the block max is then allowed. */
                const bool symmetric = type == RWKV_TYPE_Q4_0 || type == RWKV_TYPE_Q5_0;
                const double bound = step < 6.2e-5 ? max_abs + 1e-6
                    : (symmetric ? 1.0 : 0.5) * step + max_abs * 2e-3;
                CHECK_MSG(fabs((double) y[i] - x[i]) <= bound, "%s block %d value %d: %g -> %g (bound %g)",
                          rwkv_type_name(type), b, j, x[i], y[i], bound);
            }
        }
    }
}

static void test_activations(struct rwkv_q8_block * a, float * x) {
    for (int b = 0; b < N_BLOCKS; b++) {
        fill_block(x + b * RWKV_QUANT_BLOCK_SIZE, b + 3);
    }
    rwkv_quantize_activations(x, a, N);
    for (int b = 0; b < N_BLOCKS; b++) {
        double max_abs = 0, sum = 0;
        for (int j = 0; j < RWKV_QUANT_BLOCK_SIZE; j++) {
            max_abs = fmax(max_abs, fabs(x[b * RWKV_QUANT_BLOCK_SIZE + j]));
        }
        for (int j = 0; j < RWKV_QUANT_BLOCK_SIZE; j++) {
            const double v = (double) a[b].d * (a[b].qs[j] + a[b].qs2[j] / 256.0);
            sum += v;
            /* Half a step of the fine grid, d / 512; a rest of exactly half a coarse step clips
             * from 128 to 127: d / 256. */
            CHECK_MSG(fabs(v - x[b * RWKV_QUANT_BLOCK_SIZE + j]) <= max_abs / (127.0 * 256) * 1.01 + 1e-37,
                      "activation block %d value %d: %g vs %g", b, j, v, x[b * RWKV_QUANT_BLOCK_SIZE + j]);
        }
        CHECK_MSG(fabs(sum - a[b].s) <= 1e-5 * (fabs(sum) + max_abs), "block %d: s %g vs %g", b, a[b].s, sum);
    }
}

/* sum over blocks of dequantized weight times d*q + d2*q2, in double. */
static double exact_dot(uint32_t type, const uint8_t * row, const struct rwkv_q8_block * a) {
    float w[N];
    rwkv_dequantize_row(type, row, w, N);
    double sum = 0;
    for (int b = 0; b < N_BLOCKS; b++) {
        for (int j = 0; j < RWKV_QUANT_BLOCK_SIZE; j++) {
            sum += (double) w[b * RWKV_QUANT_BLOCK_SIZE + j] * ((double) a[b].d * (a[b].qs[j] + a[b].qs2[j] / 256.0));
        }
    }
    return sum;
}

static double magnitude(uint32_t type, const uint8_t * row, const float * x) {
    float w[N];
    rwkv_dequantize_row(type, row, w, N);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        sum += fabs((double) w[i] * x[i]);
    }
    return sum;
}

static void test_dots(const struct rwkv_kernels * table, const struct rwkv_q8_block * a, const float * x) {
    float w[N];
    uint8_t row[N_BLOCKS * 34];
    for (int round = 0; round < 20; round++) {
        for (int b = 0; b < N_BLOCKS; b++) {
            fill_block(w + b * RWKV_QUANT_BLOCK_SIZE, b + round);
        }
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
            const uint32_t type = types[t];
            rwkv_quantize_row(type, w, row, N);
            const double expected = exact_dot(type, row, a);
            const double scale = magnitude(type, row, x) + 1e-30;
            const float ours = table->dot_quant[type](row, a, N_BLOCKS);
            CHECK_MSG(fabs(ours - expected) <= 1e-5 * scale, "%s %s round %d: %.9g vs %.9g (scale %g)",
                      table->name, rwkv_type_name(type), round, ours, expected, scale);
        }
    }
}

int main(void) {
    static struct rwkv_q8_block a[N_BLOCKS];
    static float x[N];
    test_round_trip();
    test_activations(a, x);
    test_dots(&rwkv_kernels_scalar, a, x);
    printf("dot products checked for: scalar");
#if defined(RWKV_HAVE_AVX2_KERNELS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        test_dots(&rwkv_kernels_avx2, a, x);
        printf(", avx2");
    }
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512vnni")) {
        test_dots(&rwkv_kernels_avx512, a, x);
        printf(", avx512");
    }
#endif
    if (rwkv_best_kernels() != &rwkv_kernels_scalar) {
        test_dots(rwkv_best_kernels(), a, x);
    }
    printf(" (best: %s)\n", rwkv_best_kernels()->name);
    return test_finish("test_quant");
}
