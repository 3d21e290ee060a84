/* ops.h: small element-wise and normalization operations of the forward pass. */
#ifndef RWKV_OPS_H
#define RWKV_OPS_H

#include <math.h>
#include <stddef.h>

#define RWKV_LAYER_NORM_EPS 1e-5f
/* The reference implementation's GroupNorm epsilon in ln_x for v5, v6 and v7
 * (rwkv.cpp uses 1e-5 for v5; we follow the reference). */
#define RWKV_GROUP_NORM_EPS 64e-5f

void rwkv_layer_norm(const float * x, const float * weight, const float * bias, size_t n, float * out);
/* Normalizes each of n / group_size groups separately, then applies per-channel weight and bias. */
void rwkv_group_norm(const float * x, const float * weight, const float * bias, size_t n, size_t group_size, float eps, float * out);

static inline float rwkv_sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}

#endif
