/* wkv.c: scalar WKV recurrences, written in the reference implementation's order of operations. */
#include "wkv.h"

#include <math.h>

void rwkv_wkv4(size_t C, const float * u, const float * w, const float * k, const float * v,
               float * aa, float * bb, float * pp, float * wkv) {
    for (size_t c = 0; c < C; c++) {
        float ww = u[c] + k[c];
        float p = fmaxf(pp[c], ww);
        float e1 = expf(pp[c] - p);
        float e2 = expf(ww - p);
        wkv[c] = (e1 * aa[c] + e2 * v[c]) / (e1 * bb[c] + e2);
        ww = w[c] + pp[c];
        p = fmaxf(ww, k[c]);
        e1 = expf(ww - p);
        e2 = expf(k[c] - p);
        aa[c] = e1 * aa[c] + e2 * v[c];
        bb[c] = e1 * bb[c] + e2;
        pp[c] = p;
    }
}

void rwkv_wkv5(size_t H, size_t N, const float * r, const float * k, const float * v,
               const float * u, const float * w, float * S, float * out) {
    for (size_t h = 0; h < H; h++) {
        const size_t base = h * N;
        float * Sh = S + h * N * N;
        float * o = out + base;
        for (size_t j = 0; j < N; j++) {
            o[j] = 0.0f;
        }
        for (size_t i = 0; i < N; i++) {
            const float ri = r[base + i], ki = k[base + i], ui = u[base + i], wi = w[base + i];
            float * row = Sh + i * N;
            for (size_t j = 0; j < N; j++) {
                const float kv = ki * v[base + j];
                o[j] += ri * (ui * kv + row[j]);
                row[j] = kv + wi * row[j];
            }
        }
    }
}

void rwkv_wkv7(size_t H, size_t N, const float * r, const float * w, const float * k, const float * v,
               const float * a, const float * b, float * S, float * out) {
    for (size_t h = 0; h < H; h++) {
        const size_t base = h * N;
        float * Sh = S + h * N * N;
        for (size_t i = 0; i < N; i++) {
            float * row = Sh + i * N;
            float sa = 0.0f;
            for (size_t j = 0; j < N; j++) {
                sa += row[j] * a[base + j];
            }
            const float vi = v[base + i];
            float y = 0.0f;
            for (size_t j = 0; j < N; j++) {
                row[j] = row[j] * w[base + j] + sa * b[base + j] + vi * k[base + j];
                y += row[j] * r[base + j];
            }
            out[base + i] = y;
        }
    }
}
