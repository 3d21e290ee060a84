/* ops.c: layer norm and group norm, with statistics accumulated in double. */
#include "ops.h"

static void normalize(const float * x, const float * weight, const float * bias, size_t n, float eps, float * out) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
    }
    const double mean = sum / (double) n;
    double squares = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = x[i] - mean;
        squares += d * d;
    }
    const float inv_std = (float) (1.0 / sqrt(squares / (double) n + eps));
    const float mean_f = (float) mean;
    for (size_t i = 0; i < n; i++) {
        out[i] = (x[i] - mean_f) * inv_std * weight[i] + bias[i];
    }
}

void rwkv_layer_norm(const float * x, const float * weight, const float * bias, size_t n, float * out) {
    normalize(x, weight, bias, n, RWKV_LAYER_NORM_EPS, out);
}

void rwkv_group_norm(const float * x, const float * weight, const float * bias, size_t n, size_t group_size, float eps, float * out) {
    for (size_t g = 0; g < n; g += group_size) {
        normalize(x + g, weight + g, bias + g, group_size, eps, out + g);
    }
}
