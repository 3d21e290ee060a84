/* test_cuda.c: the CUDA backend against the CPU code it reproduces.
 * kernels: each kernel on random inputs against the CPU reference: quant.c's dequantization
 *   (matrix products of every type, both the one-token and the tiled kernel, every epilogue),
 *   ops.c's layer and group norm, wkv.c's recurrences (with the group norm, gate and, for v7,
 *   eval.c's per-head steps fused in), eval.c's token shift and mixes.
 * models: random v4, v5.1, v5.2, v6, v7 models (and rwkv.cpp's fixtures when present), F32, F16
 *   and each quantized type: the GPU layers and head against rwkv_eval_tokens on the CPU, one
 *   token at a time and in sequences, every layer offloaded or only the first ones. Quantized
 *   files are compared with the CPU run on an F32 file of the same (dequantized) weights: the
 *   GPU keeps activations in float32, the CPU rounds them to 8-bit blocks for its integer dots.
 * api: rwkv_init_from_file with 0, 1, n_layer and n_layer + 1 GPU layers (every architecture, F16
 *   and Q5_1) against the same file on the CPU, through rwkv_eval, the sequence calls and a clone.
 * Usage: test_cuda [kernels|models|api|all] [FIXTURE_DIR] ("models" runs api too). Exit 77 (skipped) without a CUDA device. */
#include <float.h>
#include "backend.h"
#include "context.h"
#include "eval.h"
#include "gpu.h"
#include "kernels.h"
#include "model.h"
#include "ops.h"
#include "quant.h"
#include "tensor_types.h"
#include "wkv.h"
#include "test_util.h"

/* ---- tolerances ---- */

/* Matrix products: float32 sums of n products have a rounding error of at most about
 * n 2^-24 sum|w x| (recursive summation, Higham's bound); +4 for the dequantization's and the
 * epilogue's own roundings. The reference is the same dequantized weights summed in double. */
#define MATMUL_ROUNDING(n_in) (((double) (n_in) + 4.0) * 0x1p-24)
/* Element-wise results computed with the same float operations (contraction into FMA may
 * change the last bits): relative to max(1, |value|). */
#define ELEMENTWISE_BOUND 2e-6
/* Norms: statistics in double on both sides; the final float steps differ by an FMA at most. */
#define NORM_BOUND 1e-5
/* WKV outputs (after the head's group norm, values of order 1) and states: same order of
 * operations as wkv.c, FMA contraction allowed, sums of up to 128 terms. */
#define WKV_OUT_BOUND 1e-4
#define WKV_STATE_RELATIVE_BOUND 1e-5
/* Whole models over up to 150 tokens, logits of magnitude ~1-10: DESIGN.md's expectation for
 * float32 in a different summation order (a few 1e-4 over 64+ tokens; 1e-3 would be a bug). */
#define MODEL_LOGITS_BOUND 5e-4
#define MODEL_STATE_RELATIVE_BOUND 5e-4

static struct rwkv_error cuda_error;

static void die_on_cuda_error(bool ok) {
    if (!ok) {
        fprintf(stderr, "test_cuda: %s\n", cuda_error.message);
        exit(1);
    }
}

/* ---- random numbers and buffers ---- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static double uniform(double lo, double hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double) (rng_state >> 11) / 9007199254740992.0;
}

static float * random_floats(size_t n, double lo, double hi) {
    float * x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i] = (float) uniform(lo, hi);
    }
    return x;
}

static float * device_copy(const float * host, size_t n) {
    float * d = rwkv_cuda_malloc(n * sizeof(float), &cuda_error, true);
    die_on_cuda_error(d != NULL);
    die_on_cuda_error(rwkv_cuda_upload(d, host, n * sizeof(float), &cuda_error, true));
    return d;
}

static float * host_copy(const float * device, size_t n) {
    float * h = malloc((n ? n : 1) * sizeof(float));
    die_on_cuda_error(rwkv_cuda_synchronize(NULL, &cuda_error, true));
    die_on_cuda_error(rwkv_cuda_download(h, device, n * sizeof(float), &cuda_error, true));
    return h;
}

static double max_relative_diff(const float * got, const float * want, size_t n, double floor) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double) got[i] - want[i]) / fmax(floor, fabs((double) want[i]));
        worst = isnan(got[i]) != isnan(want[i]) ? INFINITY : fmax(worst, d);
    }
    return worst;
}

/* max |got - want| / max(1, max |want|). */
static double scaled_diff(const float * got, const float * want, size_t n) {
    double scale = 1, worst = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs((double) want[i]));
    }
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double) got[i] - want[i]);
        worst = isnan(got[i]) ? INFINITY : fmax(worst, d);
    }
    return worst / scale;
}

/* ---- matrix products ---- */

static const uint32_t all_types[] = {RWKV_TYPE_F32, RWKV_TYPE_F16, RWKV_TYPE_Q4_0, RWKV_TYPE_Q4_1,
                                     RWKV_TYPE_Q5_0, RWKV_TYPE_Q5_1, RWKV_TYPE_Q8_0};

/* A random n_out x n_in matrix in type: the file bytes, and the float values they stand for
 * (quant.c's dequantization: what the GPU must compute with). */
struct test_matrix {
    uint32_t type;
    size_t n_in, n_out, row_bytes;
    uint8_t * bytes;
    float * values;
    struct rwkv_cuda_matrix device;
};

static void make_matrix(struct test_matrix * m, uint32_t type, size_t n_out, size_t n_in) {
    m->type = type;
    m->n_in = n_in;
    m->n_out = n_out;
    m->row_bytes = n_in / rwkv_type_block_size(type) * rwkv_type_block_bytes(type);
    m->bytes = malloc(m->row_bytes * n_out);
    m->values = malloc(n_in * n_out * sizeof(float));
    float * row = malloc(n_in * sizeof(float));
    for (size_t r = 0; r < n_out; r++) {
        for (size_t k = 0; k < n_in; k++) {
            row[k] = (float) uniform(-1, 1);
        }
        uint8_t * out = m->bytes + r * m->row_bytes;
        if (type == RWKV_TYPE_F32) {
            memcpy(out, row, n_in * sizeof(float));
        } else if (type == RWKV_TYPE_F16) {
            for (size_t k = 0; k < n_in; k++) {
                const uint16_t h = rwkv_f32_to_f16(row[k]);
                memcpy(out + 2 * k, &h, 2);
            }
        } else {
            rwkv_quantize_row(type, row, out, n_in);
        }
        rwkv_dequantize_row(type, out, m->values + r * n_in, n_in);
    }
    free(row);
    const size_t stride = rwkv_cuda_row_stride(m->row_bytes);
    uint8_t * d = rwkv_cuda_malloc(stride * n_out, &cuda_error, true);
    die_on_cuda_error(d != NULL);
    die_on_cuda_error(rwkv_cuda_upload_rows(d, stride, m->bytes, m->row_bytes, m->row_bytes, n_out, &cuda_error, true));
    struct rwkv_cuda_matrix dm = {type, d, n_in, n_out, m->row_bytes, stride};
    m->device = dm;
}

static void free_matrix(struct test_matrix * m) {
    rwkv_cuda_free((void *) m->device.data);
    free(m->bytes);
    free(m->values);
}

static double sigmoid_d(double x) {
    return 1.0 / (1.0 + exp(-x));
}

/* The epilogue on the exact sum; *slope: how much an error in acc can move the result. */
static double apply_epilogue(enum rwkv_cuda_epilogue_kind kind, double acc, double y_before, double aux, double * slope) {
    *slope = 1;
    switch (kind) {
        case RWKV_EPILOGUE_TANH: return tanh(acc);
        case RWKV_EPILOGUE_SIGMOID: return sigmoid_d(acc);
        case RWKV_EPILOGUE_SILU: *slope = 1.1; return acc * sigmoid_d(acc);
        case RWKV_EPILOGUE_RELU_SQ: *slope = 2 * fabs(acc) + 1; return acc > 0 ? acc * acc : 0;
        case RWKV_EPILOGUE_ADD: return y_before + acc;
        case RWKV_EPILOGUE_MUL_ADD: *slope = fabs(aux); return y_before + acc * aux;
        case RWKV_EPILOGUE_DECAY_V6: *slope = 0.37; return exp(-exp(aux + acc));
        default: return acc;
    }
}

static const char * epilogue_name(enum rwkv_cuda_epilogue_kind kind) {
    static const char * const names[] = {"store", "tanh", "sigmoid", "silu", "relu^2", "add", "mul_add", "decay_v6"};
    return names[kind];
}

/* Rows [row_begin, row_begin + n_rows) of m times T tokens, strided inputs and outputs; checks
 * every output and that the padding between outputs is untouched. */
static void check_matmul(struct test_matrix * m, size_t row_begin, size_t n_rows, size_t T, enum rwkv_cuda_epilogue_kind kind) {
    const size_t x_stride = m->n_in + 3, y_stride = n_rows + 5;
    float * x = random_floats(T * x_stride, -2, 2);
    float * y0 = random_floats(T * y_stride, -1, 1);     /* the outputs before (for ADD, MUL_ADD) */
    float * aux = random_floats(T * n_rows + n_rows, -1.5, 1.5);
    const size_t aux_stride = kind == RWKV_EPILOGUE_DECAY_V6 ? 0 : n_rows;
    float * dx = device_copy(x, T * x_stride), * dy = device_copy(y0, T * y_stride), * daux = device_copy(aux, T * n_rows + n_rows);
    const struct rwkv_cuda_epilogue e = {kind, daux, aux_stride};
    rwkv_cuda_matmul(NULL, &m->device, row_begin, n_rows, dx, x_stride, T, dy, y_stride, e);
    die_on_cuda_error(rwkv_cuda_check("matmul launch", &cuda_error, true));
    float * y = host_copy(dy, T * y_stride);
    int bad = 0;
    for (size_t t = 0; t < T; t++) {
        for (size_t r = 0; r < y_stride; r++) {
            const size_t i = t * y_stride + r;
            if (r >= n_rows) {
                if (memcmp(&y[i], &y0[i], sizeof(float)) != 0 && bad++ < 3) {
                    CHECK_MSG(false, "%s %s: padding at token %zu column %zu was written", rwkv_type_name(m->type), epilogue_name(kind), t, r);
                }
                continue;
            }
            const float * w = m->values + (row_begin + r) * m->n_in;
            double acc = 0, magnitude = 0;
            for (size_t k = 0; k < m->n_in; k++) {
                acc += (double) w[k] * x[t * x_stride + k];
                magnitude += fabs((double) w[k] * x[t * x_stride + k]);
            }
            double slope;
            const double want = apply_epilogue(kind, acc, y0[i], aux[t * aux_stride + r], &slope);
            const double bound = slope * MATMUL_ROUNDING(m->n_in) * magnitude + ELEMENTWISE_BOUND * fmax(1, fabs(want));
            const double diff = fabs(y[i] - want);
            if (!(diff <= bound) && bad++ < 3) {
                CHECK_MSG(false, "%s %zux%zu rows %zu+%zu T %zu %s: token %zu row %zu: %.9g, want %.9g (bound %.3g)",
                          rwkv_type_name(m->type), m->n_out, m->n_in, row_begin, n_rows, T, epilogue_name(kind),
                          t, r, y[i], want, bound);
            }
        }
    }
    free(x); free(y0); free(aux); free(y);
    rwkv_cuda_free(dx); rwkv_cuda_free(dy); rwkv_cuda_free(daux);
}

static void test_matmul(void) {
    /* Rows that fill no whole block of 4 warps / 64-row tile, rows longer than a warp's 512
     * weights, and (float types) lengths that are not a multiple of 16. */
    static const size_t quant_shapes[][2] = {{1, 32}, {5, 64}, {67, 96}, {130, 544}, {64, 4096}};
    static const size_t float_shapes[][2] = {{3, 1}, {7, 17}, {33, 40}, {65, 100}, {9, 1000}};
    static const size_t token_counts[] = {1, 2, 31, 33, 70};
    for (size_t ti = 0; ti < sizeof(all_types) / sizeof(all_types[0]); ti++) {
        const uint32_t type = all_types[ti];
        for (int pass = 0; pass < 2; pass++) {
            const size_t (*shapes)[2] = pass == 0 ? quant_shapes : float_shapes;
            if (pass == 1 && rwkv_type_is_quantized(type)) {
                continue;
            }
            for (size_t si = 0; si < 5; si++) {
                struct test_matrix m;
                make_matrix(&m, type, shapes[si][0], shapes[si][1]);
                for (size_t k = 0; k < sizeof(token_counts) / sizeof(token_counts[0]); k++) {
                    check_matmul(&m, 0, m.n_out, token_counts[k], RWKV_EPILOGUE_STORE);
                    if (m.n_out > 2) {  /* a slice of rows, as v6's stacked maa_w2 is used */
                        check_matmul(&m, 1, m.n_out - 2, token_counts[k], RWKV_EPILOGUE_STORE);
                    }
                }
                free_matrix(&m);
            }
        }
        struct test_matrix m;
        make_matrix(&m, type, 70, 128);
        for (int kind = RWKV_EPILOGUE_TANH; kind <= RWKV_EPILOGUE_DECAY_V6; kind++) {
            check_matmul(&m, 0, m.n_out, 1, (enum rwkv_cuda_epilogue_kind) kind);
            check_matmul(&m, 0, m.n_out, 40, (enum rwkv_cuda_epilogue_kind) kind);
        }
        free_matrix(&m);
    }
}

/* ---- norms ---- */

static void test_norms(void) {
    static const size_t cases[][3] = {  /* T, C, group size (C: a layer norm) */
        {1, 64, 64}, {3, 768, 768}, {2, 1000, 1000}, {1, 4096, 4096},
        {2, 512, 64}, {1, 96, 16}, {3, 144, 48}, {1, 2048, 128},
    };
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        const size_t T = cases[ci][0], C = cases[ci][1], G = cases[ci][2];
        const float eps = G == C ? RWKV_LAYER_NORM_EPS : RWKV_GROUP_NORM_EPS;
        float * x = random_floats(T * C, -3, 5), * w = random_floats(C, 0.5, 1.5), * b = random_floats(C, -0.2, 0.2);
        float * want = malloc(T * C * sizeof(float));
        for (size_t t = 0; t < T; t++) {
            rwkv_group_norm(x + t * C, w, b, C, G, eps, want + t * C);
        }
        float * dx = device_copy(x, T * C), * dw = device_copy(w, C), * db = device_copy(b, C);
        rwkv_cuda_norm(NULL, dx, dw, db, T, C, G, eps, dx);  /* in place, as the head uses it */
        float * got = host_copy(dx, T * C);
        const double diff = max_relative_diff(got, want, T * C, 1.0);
        CHECK_MSG(diff <= NORM_BOUND, "norm T %zu C %zu group %zu: relative diff %.3g", T, C, G, diff);
        free(x); free(w); free(b); free(want); free(got);
        rwkv_cuda_free(dx); rwkv_cuda_free(dw); rwkv_cuda_free(db);
    }
}

/* ---- token shift and mixes (eval.c's token_shift, lerp_mix, delta_mix) ---- */

static void test_token_mix(void) {
    static const size_t cases[][2] = {{1, 64}, {5, 100}, {33, 300}};  /* T, C */
    for (size_t ci = 0; ci < 3; ci++) {
        for (int lerp = 0; lerp < 2; lerp++) {
            const size_t T = cases[ci][0], C = cases[ci][1];
            const int n = lerp ? 4 : 6;
            float * xx = random_floats(T * C, -2, 2), * shift = random_floats(C, -2, 2), * mix = random_floats(n * C, 0, 1);
            float * dxx = device_copy(xx, T * C), * dshift = device_copy(shift, C), * dmix = device_copy(mix, n * C);
            float * dout = device_copy(xx, n * T * C), * ddelta = device_copy(xx, T * C);  /* contents overwritten */
            struct rwkv_cuda_mix p = {0};
            p.lerp = lerp;
            p.n = n;
            p.delta_out = lerp ? NULL : ddelta;
            for (int j = 0; j < n; j++) {
                p.mix[j] = dmix + j * C;
                p.out[j] = dout + j * T * C;
            }
            rwkv_cuda_token_mix(NULL, dxx, dshift, T, C, &p);
            float * out = host_copy(dout, n * T * C), * delta = host_copy(ddelta, T * C), * new_shift = host_copy(dshift, C);
            double worst = 0;
            for (size_t t = 0; t < T; t++) {
                for (size_t c = 0; c < C; c++) {
                    const float cur = xx[t * C + c], sx = t == 0 ? shift[c] : xx[(t - 1) * C + c];
                    for (int j = 0; j < n; j++) {
                        const float m = mix[j * C + c];
                        const float want = lerp ? cur * m + sx * (1.0f - m) : cur + (sx - cur) * m;
                        worst = fmax(worst, fabs(out[j * T * C + t * C + c] - want) / fmax(1, fabs(want)));
                    }
                    if (!lerp) {
                        worst = fmax(worst, fabs(delta[t * C + c] - (sx - cur)) / fmax(1, fabs(sx - cur)));
                    }
                }
            }
            CHECK_MSG(worst <= ELEMENTWISE_BOUND, "token mix %s T %zu C %zu: relative diff %.3g", lerp ? "lerp" : "delta", T, C, worst);
            CHECK_MSG(memcmp(new_shift, xx + (T - 1) * C, C * sizeof(float)) == 0, "token mix T %zu C %zu: shift state is not the last token", T, C);
            free(xx); free(shift); free(mix); free(out); free(delta); free(new_shift);
            rwkv_cuda_free(dxx); rwkv_cuda_free(dshift); rwkv_cuda_free(dmix); rwkv_cuda_free(dout); rwkv_cuda_free(ddelta);
        }
    }
    /* v6: out_j = xx + delta (m_j + maa_j). */
    const size_t T = 7, C = 96;
    float * xx = random_floats(T * C, -2, 2), * delta = random_floats(T * C, -2, 2), * m = random_floats(5 * T * C, -1, 1);
    float * maa = random_floats(5 * C, 0, 1);
    float * dxx = device_copy(xx, T * C), * ddelta = device_copy(delta, T * C), * dm = device_copy(m, 5 * T * C);
    float * dmaa = device_copy(maa, 5 * C), * dout = device_copy(m, 5 * T * C);
    float * const ms[5] = {dm, dm + T * C, dm + 2 * T * C, dm + 3 * T * C, dm + 4 * T * C};
    float * const outs[5] = {dout, dout + T * C, dout + 2 * T * C, dout + 3 * T * C, dout + 4 * T * C};
    rwkv_cuda_mix_v6(NULL, dxx, ddelta, ms, dmaa, T, C, outs);
    float * out = host_copy(dout, 5 * T * C);
    double worst = 0;
    for (int j = 0; j < 5; j++) {
        for (size_t i = 0; i < T * C; i++) {
            const float want = xx[i] + delta[i] * (m[j * T * C + i] + maa[j * C + i % C]);
            worst = fmax(worst, fabs(out[j * T * C + i] - want) / fmax(1, fabs(want)));
        }
    }
    CHECK_MSG(worst <= ELEMENTWISE_BOUND, "v6 mix: relative diff %.3g", worst);
    free(xx); free(delta); free(m); free(maa); free(out);
    rwkv_cuda_free(dxx); rwkv_cuda_free(ddelta); rwkv_cuda_free(dm); rwkv_cuda_free(dmaa); rwkv_cuda_free(dout);
}

/* ---- WKV ---- */

static void test_wkv4(void) {
    static const size_t cases[][2] = {{1, 64}, {7, 300}};
    for (size_t ci = 0; ci < 2; ci++) {
        const size_t T = cases[ci][0], C = cases[ci][1];
        float * u = random_floats(C, -1, 1), * w = random_floats(C, -3, -0.05), * k = random_floats(T * C, -4, 4);
        float * v = random_floats(T * C, -2, 2), * r = random_floats(T * C, 0, 1);
        float * state = malloc(3 * C * sizeof(float));
        for (size_t c = 0; c < C; c++) {
            state[c] = 0;
            state[C + c] = 0;
            state[2 * C + c] = -1e30f;  /* fresh: att_pp */
        }
        float * du = device_copy(u, C), * dw = device_copy(w, C), * dk = device_copy(k, T * C), * dv = device_copy(v, T * C);
        float * dr = device_copy(r, T * C), * dstate = device_copy(state, 3 * C), * dout = device_copy(k, T * C);
        float * want = malloc(T * C * sizeof(float));
        for (int call = 0; call < 2; call++) {  /* a fresh state, then the state the first call left */
            rwkv_cuda_wkv4(NULL, T, C, du, dw, dk, dv, dr, dstate, dstate + C, dstate + 2 * C, dout);
            for (size_t t = 0; t < T; t++) {
                rwkv_wkv4(C, u, w, k + t * C, v + t * C, state, state + C, state + 2 * C, want + t * C);
                for (size_t c = 0; c < C; c++) {
                    want[t * C + c] *= r[t * C + c];
                }
            }
            float * out = host_copy(dout, T * C), * got_state = host_copy(dstate, 3 * C);
            const double out_diff = max_relative_diff(out, want, T * C, 1.0);
            const double state_diff = max_relative_diff(got_state, state, 3 * C, 1e-6);
            CHECK_MSG(out_diff <= WKV_OUT_BOUND, "wkv4 T %zu C %zu call %d: output diff %.3g", T, C, call, out_diff);
            CHECK_MSG(state_diff <= WKV_STATE_RELATIVE_BOUND, "wkv4 T %zu C %zu call %d: state diff %.3g", T, C, call, state_diff);
            free(out);
            free(got_state);
        }
        free(u); free(w); free(k); free(v); free(r); free(state); free(want);
        rwkv_cuda_free(du); rwkv_cuda_free(dw); rwkv_cuda_free(dk); rwkv_cuda_free(dv); rwkv_cuda_free(dr);
        rwkv_cuda_free(dstate); rwkv_cuda_free(dout);
    }
}

/* Head sizes compiled for (16, 32, 64, 128) and others (24, 48: the state in device memory). */
static const size_t wkv_cases[][3] = {{1, 3, 16}, {9, 2, 64}, {4, 1, 128}, {3, 2, 32}, {5, 2, 24}, {1, 1, 48}};  /* T, H, N */

static void test_wkv5(void) {
    for (size_t ci = 0; ci < sizeof(wkv_cases) / sizeof(wkv_cases[0]); ci++) {
        for (int variant = 0; variant < 2; variant++) {  /* 0: v5.2 (one decay, gated); 1: v6 (decay per token, gated); */
            const size_t T = wkv_cases[ci][0], H = wkv_cases[ci][1], N = wkv_cases[ci][2], C = H * N;
            const bool per_token = variant == 1, gated = variant == 1 || ci % 2 == 0;
            const size_t w_stride = per_token ? C : 0, n_w = per_token ? T * C : C;
            float * r = random_floats(T * C, -1, 1), * k = random_floats(T * C, -1, 1), * v = random_floats(T * C, -1, 1);
            float * u = random_floats(C, -0.5, 0.5), * w = random_floats(n_w, 0.3, 0.99), * S = random_floats(H * N * N, -1, 1);
            float * lnw = random_floats(C, 0.5, 1.5), * lnb = random_floats(C, -0.2, 0.2), * gate = random_floats(T * C, -1, 1);
            float * dr = device_copy(r, T * C), * dk = device_copy(k, T * C), * dv = device_copy(v, T * C), * du = device_copy(u, C);
            float * dw = device_copy(w, n_w), * dS = device_copy(S, H * N * N), * dlnw = device_copy(lnw, C), * dlnb = device_copy(lnb, C);
            float * dgate = device_copy(gate, T * C), * dout = device_copy(r, T * C);
            rwkv_cuda_wkv5(NULL, T, H, N, dr, dk, dv, du, dw, w_stride, dS, dlnw, dlnb, RWKV_GROUP_NORM_EPS, gated ? dgate : NULL, dout);
            float * want = malloc(T * C * sizeof(float));
            for (size_t t = 0; t < T; t++) {
                float * o = want + t * C;
                rwkv_wkv5(H, N, r + t * C, k + t * C, v + t * C, u, w + t * w_stride, S, o);
                rwkv_group_norm(o, lnw, lnb, C, N, RWKV_GROUP_NORM_EPS, o);
                for (size_t c = 0; gated && c < C; c++) {
                    o[c] *= gate[t * C + c];
                }
            }
            float * out = host_copy(dout, T * C), * got_S = host_copy(dS, H * N * N);
            const double out_diff = scaled_diff(out, want, T * C), state_diff = scaled_diff(got_S, S, H * N * N);
            CHECK_MSG(out_diff <= WKV_OUT_BOUND, "wkv5 T %zu H %zu N %zu variant %d: output diff %.3g", T, H, N, variant, out_diff);
            CHECK_MSG(state_diff <= WKV_STATE_RELATIVE_BOUND, "wkv5 T %zu H %zu N %zu variant %d: state diff %.3g", T, H, N, variant, state_diff);
            free(r); free(k); free(v); free(u); free(w); free(S); free(lnw); free(lnb); free(gate); free(want); free(out); free(got_S);
            rwkv_cuda_free(dr); rwkv_cuda_free(dk); rwkv_cuda_free(dv); rwkv_cuda_free(du); rwkv_cuda_free(dw); rwkv_cuda_free(dS);
            rwkv_cuda_free(dlnw); rwkv_cuda_free(dlnb); rwkv_cuda_free(dgate); rwkv_cuda_free(dout);
        }
    }
}

/* eval.c's time_mix_v7 between the projections and the output matrix, on host arrays (r, w, k,
 * v, a changed in place as eval.c changes them). */
static void reference_v7(size_t T, size_t H, size_t N, float * r, float * w, float * k, float * v, float * a, const float * g,
                         const float * v_gate, float * v_first, const float * w0, const float * a0, const float * v0,
                         const float * k_k, const float * k_a, const float * r_k, const float * lnw, const float * lnb,
                         float * S, float * out) {
    const size_t C = H * N;
    float * kk = malloc(T * C * sizeof(float)), * b = malloc(T * C * sizeof(float)), * neg_kk = malloc(T * C * sizeof(float));
    for (size_t i = 0; i < T * C; i++) {
        const size_t c = i % C;
        if (v_gate) {
            v[i] = v[i] + (v_first[i] - v[i]) * rwkv_sigmoid(v0[c] + v_gate[i]);
        } else {
            v_first[i] = v[i];
        }
    }
    for (size_t t = 0; t < T; t++) {
        for (size_t c = 0; c < C; c++) {
            const size_t i = t * C + c;
            a[i] = rwkv_sigmoid(a0[c] + a[i]);
            kk[i] = k[i] * k_k[c];
            k[i] = k[i] * (1.0f + (a[i] - 1.0f) * k_a[c]);
            w[i] = expf(-0.606531f * rwkv_sigmoid(w0[c] + w[i]));
        }
        for (size_t h = 0; h < H; h++) {
            float * head = kk + t * C + h * N;
            double norm = 0.0;
            for (size_t n = 0; n < N; n++) {
                norm += (double) head[n] * head[n];
            }
            const float scale = (float) (1.0 / fmax(sqrt(norm), 1e-12));
            for (size_t n = 0; n < N; n++) {
                head[n] *= scale;
            }
        }
        for (size_t c = 0; c < C; c++) {
            const size_t i = t * C + c;
            neg_kk[i] = -kk[i];
            b[i] = kk[i] * a[i];
        }
    }
    for (size_t t = 0; t < T; t++) {
        const size_t o = t * C;
        float * y = out + o;
        rwkv_wkv7(H, N, r + o, w + o, k + o, v + o, neg_kk + o, b + o, S, y);
        rwkv_group_norm(y, lnw, lnb, C, N, RWKV_GROUP_NORM_EPS, y);
        for (size_t h = 0; h < H; h++) {
            float dot = 0.0f;
            for (size_t n = 0; n < N; n++) {
                const size_t c = h * N + n;
                dot += r[o + c] * k[o + c] * r_k[c];
            }
            for (size_t n = 0; n < N; n++) {
                y[h * N + n] += dot * v[o + h * N + n];
            }
        }
        for (size_t c = 0; c < C; c++) {
            y[c] *= g[o + c];
        }
    }
    free(kk); free(b); free(neg_kk);
}

static void test_wkv7(void) {
    for (size_t ci = 0; ci < sizeof(wkv_cases) / sizeof(wkv_cases[0]); ci++) {
        for (int first_layer = 0; first_layer < 2; first_layer++) {
            const size_t T = wkv_cases[ci][0], H = wkv_cases[ci][1], N = wkv_cases[ci][2], C = H * N;
            float * r = random_floats(T * C, -1, 1), * w = random_floats(T * C, -2, 2), * k = random_floats(T * C, -1, 1);
            float * v = random_floats(T * C, -1, 1), * a = random_floats(T * C, -2, 2), * g = random_floats(T * C, 0, 1);
            float * v_gate = random_floats(T * C, -2, 2), * v_first = random_floats(T * C, -1, 1);
            float * w0 = random_floats(C, -1, 1), * a0 = random_floats(C, -1, 1), * v0 = random_floats(C, -1, 1);
            float * k_k = random_floats(C, 0.5, 1.5), * k_a = random_floats(C, 0, 1), * r_k = random_floats(C, -0.5, 0.5);
            float * lnw = random_floats(C, 0.5, 1.5), * lnb = random_floats(C, -0.2, 0.2), * S = random_floats(H * N * N, -0.5, 0.5);
            struct rwkv_cuda_wkv7_args p = {0};
            p.T = T; p.H = H; p.N = N;
            p.r = device_copy(r, T * C); p.w = device_copy(w, T * C); p.k = device_copy(k, T * C);
            p.v = device_copy(v, T * C); p.a = device_copy(a, T * C); p.g = device_copy(g, T * C);
            p.v_gate = first_layer ? NULL : device_copy(v_gate, T * C);
            p.v_first = device_copy(v_first, T * C);
            p.w0 = device_copy(w0, C); p.a0 = device_copy(a0, C); p.v0 = device_copy(v0, C);
            p.k_k = device_copy(k_k, C); p.k_a = device_copy(k_a, C); p.r_k = device_copy(r_k, C);
            p.ln_weight = device_copy(lnw, C); p.ln_bias = device_copy(lnb, C);
            p.eps = RWKV_GROUP_NORM_EPS;
            p.S = device_copy(S, H * N * N);
            p.out = device_copy(r, T * C);
            rwkv_cuda_wkv7(NULL, &p);
            float * want = malloc(T * C * sizeof(float));
            reference_v7(T, H, N, r, w, k, v, a, g, first_layer ? NULL : v_gate, v_first, w0, a0, v0, k_k, k_a, r_k, lnw, lnb, S, want);
            float * out = host_copy(p.out, T * C), * got_S = host_copy(p.S, H * N * N), * got_v_first = host_copy(p.v_first, T * C);
            const double out_diff = scaled_diff(out, want, T * C), state_diff = scaled_diff(got_S, S, H * N * N);
            CHECK_MSG(out_diff <= WKV_OUT_BOUND, "wkv7 T %zu H %zu N %zu layer %s: output diff %.3g", T, H, N, first_layer ? "0" : ">0", out_diff);
            CHECK_MSG(state_diff <= WKV_STATE_RELATIVE_BOUND, "wkv7 T %zu H %zu N %zu: state diff %.3g", T, H, N, state_diff);
            CHECK_MSG(memcmp(got_v_first, v_first, T * C * sizeof(float)) == 0, "wkv7 T %zu H %zu N %zu: v_first differs", T, H, N);
            const float * device_arrays[] = {p.r, p.w, p.k, p.v, p.a, p.g, p.v_gate, p.v_first, p.w0, p.a0, p.v0, p.k_k, p.k_a,
                                             p.r_k, p.ln_weight, p.ln_bias, p.S, p.out};
            for (size_t i = 0; i < sizeof(device_arrays) / sizeof(device_arrays[0]); i++) {
                rwkv_cuda_free((void *) device_arrays[i]);
            }
            free(r); free(w); free(k); free(v); free(a); free(g); free(v_gate); free(v_first); free(w0); free(a0); free(v0);
            free(k_k); free(k_a); free(r_k); free(lnw); free(lnb); free(S); free(want); free(out); free(got_S); free(got_v_first);
        }
    }
}

/* ---- whole models ---- */

/* A random model of arch "4", "5.1", "5.2", "6" or "7": n_vocab V, n_embed C, L layers, head
 * size N, FFN 4C, low-rank widths 32; matrices in type (F32 or F16), vectors F32. */
static void make_model(struct tw_model * m, const char * arch, int32_t V, int32_t C, int32_t L, int32_t N, int32_t type) {
    if (strcmp(arch, "4") == 0) {
        tw_make_v4(m, V, C, L, 4 * C, type);
        return;
    }
    const int32_t H = C / N, F = 4 * C, D = 32;
    const float s = 2.0f / sqrtf((float) C), sf = 2.0f / sqrtf((float) F), sd = 2.0f / sqrtf((float) D);
    char name[128];
    tw_init(m, 100, V, C, L, type);
    tw_add(m, "emb.weight", type, C, V, -1.0f, 1.0f);
    tw_add(m, "blocks.0.ln0.weight", TW_F32, C, 1, 0.5f, 1.5f);
    tw_add(m, "blocks.0.ln0.bias", TW_F32, C, 1, -0.1f, 0.1f);
#define LAYER(suffix) (snprintf(name, sizeof(name), "blocks.%d.%s", (int) i, suffix), name)
    for (int32_t i = 0; i < L; i++) {
        tw_add(m, LAYER("ln1.weight"), TW_F32, C, 1, 0.5f, 1.5f);
        tw_add(m, LAYER("ln1.bias"), TW_F32, C, 1, -0.1f, 0.1f);
        tw_add(m, LAYER("ln2.weight"), TW_F32, C, 1, 0.5f, 1.5f);
        tw_add(m, LAYER("ln2.bias"), TW_F32, C, 1, -0.1f, 0.1f);
        tw_add(m, LAYER("att.key.weight"), type, C, C, -s, s);
        tw_add(m, LAYER("att.value.weight"), type, C, C, -s, s);
        tw_add(m, LAYER("att.receptance.weight"), type, C, C, -s, s);
        tw_add(m, LAYER("att.output.weight"), type, C, C, -s, s);
        tw_add(m, LAYER("ffn.key.weight"), type, C, F, -s, s);
        tw_add(m, LAYER("ffn.value.weight"), type, F, C, -sf, sf);
        if (arch[0] != '7') {
            tw_add(m, LAYER("ffn.receptance.weight"), type, C, C, -s, s);
        }
        if (arch[0] == '5') {
            tw_add(m, LAYER("att.time_mix_k"), TW_F32, C, 1, 0.0f, 1.0f);
            tw_add(m, LAYER("att.time_mix_v"), TW_F32, C, 1, 0.0f, 1.0f);
            tw_add(m, LAYER("att.time_mix_r"), TW_F32, C, 1, 0.0f, 1.0f);
            tw_add(m, LAYER("att.ln_x.weight"), TW_F32, C, 1, 0.5f, 1.5f);
            tw_add(m, LAYER("att.ln_x.bias"), TW_F32, C, 1, -0.1f, 0.1f);
            tw_add(m, LAYER("ffn.time_mix_k"), TW_F32, C, 1, 0.0f, 1.0f);
            tw_add(m, LAYER("ffn.time_mix_r"), TW_F32, C, 1, 0.0f, 1.0f);
            if (strcmp(arch, "5.1") == 0) {  /* per head; the file holds exp(u) and exp(-exp(w)) */
                tw_add(m, LAYER("att.time_first"), TW_F32, H, 1, 0.5f, 1.5f);
                tw_add(m, LAYER("att.time_decay"), TW_F32, H, 1, 0.5f, 0.99f);
            } else {
                tw_add(m, LAYER("att.time_faaaa"), TW_F32, N, H, -0.5f, 0.5f);
                tw_add(m, LAYER("att.time_decay"), TW_F32, C, 1, 0.5f, 0.99f);
                tw_add(m, LAYER("att.time_mix_g"), TW_F32, C, 1, 0.0f, 1.0f);
                tw_add(m, LAYER("att.gate.weight"), type, C, C, -s, s);
            }
        } else if (arch[0] == '6') {
            static const char * const maa[] = {"att.time_maa_x", "att.time_maa_w", "att.time_maa_k", "att.time_maa_v",
                                               "att.time_maa_r", "att.time_maa_g", "ffn.time_maa_k", "ffn.time_maa_r"};
            for (int j = 0; j < 8; j++) {
                tw_add(m, LAYER(maa[j]), TW_F32, C, 1, 0.0f, 1.0f);
            }
            tw_add(m, LAYER("att.time_maa_w1"), type, C, 5 * D, -s, s);
            tw_add(m, LAYER("att.time_maa_w2"), type, D, 5 * C, -sd, sd);
            tw_add(m, LAYER("att.time_decay_w1"), type, C, D, -s, s);
            tw_add(m, LAYER("att.time_decay_w2"), type, D, C, -sd, sd);
            tw_add(m, LAYER("att.time_faaaa"), TW_F32, N, H, -0.5f, 0.5f);
            tw_add(m, LAYER("att.time_decay"), TW_F32, C, 1, -2.0f, 0.5f);
            tw_add(m, LAYER("att.ln_x.weight"), TW_F32, C, 1, 0.5f, 1.5f);
            tw_add(m, LAYER("att.ln_x.bias"), TW_F32, C, 1, -0.1f, 0.1f);
            tw_add(m, LAYER("att.gate.weight"), type, C, C, -s, s);
        } else {
            tw_add(m, LAYER("att.x_rwkvag"), TW_F32, 6 * C, 1, 0.0f, 1.0f);
            tw_add(m, LAYER("att.w0"), TW_F32, C, 1, -1.0f, 1.0f);
            tw_add(m, LAYER("att.a0"), TW_F32, C, 1, -1.0f, 1.0f);
            static const char * const loras[][2] = {{"att.w1", "att.w2"}, {"att.a1", "att.a2"}, {"att.g1", "att.g2"}, {"att.v1", "att.v2"}};
            for (int j = 0; j < (i > 0 ? 4 : 3); j++) {
                tw_add(m, LAYER(loras[j][0]), type, C, D, -s, s);
                tw_add(m, LAYER(loras[j][1]), type, D, C, -sd, sd);
            }
            if (i > 0) {
                tw_add(m, LAYER("att.v0"), TW_F32, C, 1, -1.0f, 1.0f);
            }
            tw_add(m, LAYER("att.k_k"), TW_F32, C, 1, 0.5f, 1.5f);
            tw_add(m, LAYER("att.k_a"), TW_F32, C, 1, 0.0f, 1.0f);
            tw_add(m, LAYER("att.r_k"), TW_F32, N, H, -0.5f, 0.5f);
            tw_add(m, LAYER("att.ln_x.weight"), TW_F32, C, 1, 0.5f, 1.5f);
            tw_add(m, LAYER("att.ln_x.bias"), TW_F32, C, 1, -0.1f, 0.1f);
            tw_add(m, LAYER("ffn.x_k"), TW_F32, C, 1, 0.0f, 1.0f);
        }
    }
#undef LAYER
    tw_add(m, "ln_out.weight", TW_F32, C, 1, 0.5f, 1.5f);
    tw_add(m, "ln_out.bias", TW_F32, C, 1, -0.1f, 0.1f);
    tw_add(m, "head.weight", type, C, V, -0.5f, 0.5f);
}

/* The same model with every quantized tensor dequantized to F32 (the values the GPU computes with). */
static void dequantized_copy(const struct tw_model * src, struct tw_model * dst) {
    tw_copy(dst, src);
    dst->header[5] = TW_F32;
    for (size_t i = 0; i < dst->n_tensors; i++) {
        struct tw_tensor * t = &dst->tensors[i];
        if (!rwkv_type_is_quantized((uint32_t) t->type)) {
            continue;
        }
        const size_t n = (size_t) t->ne[0] * (t->n_dims > 1 ? (size_t) t->ne[1] : 1) * (t->n_dims > 2 ? (size_t) t->ne[2] : 1);
        float * values = malloc(n * sizeof(float));
        rwkv_dequantize_row((uint32_t) t->type, t->data, values, n);
        free(t->data);
        t->data = (uint8_t *) values;
        t->n_bytes = n * sizeof(float);
        t->type = TW_F32;
    }
}

/* Only the first n_layers layers (the CPU then ends where a partial offload hands over). */
static void truncated_copy(const struct tw_model * src, struct tw_model * dst, int32_t n_layers) {
    tw_copy(dst, src);
    dst->header[4] = n_layers;
    for (size_t i = 0; i < dst->n_tensors;) {
        int layer;
        if (sscanf(dst->tensors[i].name, "blocks.%d.", &layer) == 1 && layer >= n_layers) {
            tw_remove(dst, dst->tensors[i].name);
        } else {
            i++;
        }
    }
}

static struct rwkv_model * load_model(const char * path) {
    struct rwkv_error err;
    struct rwkv_model * m = rwkv_model_load(path, &err, true);
    if (!m) {
        fprintf(stderr, "test_cuda: cannot load %s: %s\n", path, err.message);
        exit(1);
    }
    return m;
}

/* eval.c's start of a chunk: embedding row, then ln0. */
static void embed(const struct rwkv_model * m, const uint32_t * tokens, size_t T, float * x) {
    float * row = malloc(m->n_embed * sizeof(float));
    for (size_t t = 0; t < T; t++) {
        rwkv_matrix_row_to_f32(&m->emb, tokens[t], row);
        rwkv_layer_norm(row, m->ln0_weight, m->ln0_bias, m->n_embed, x + t * m->n_embed);
    }
    free(row);
}

/* What eval.c does with a gpu context (docs/cuda.md): state to the device, the offloaded
 * layers (and head), state back. */
static bool gpu_eval(struct rwkv_gpu_context * gc, const struct rwkv_model * m, const uint32_t * tokens, size_t T,
                     float * state, float * x, float * v_first, float * logits) {
    struct rwkv_error err;
    embed(m, tokens, T, x);
    return rwkv_gpu_state_upload(gc, state, &err, true)
        && rwkv_gpu_eval_layers(gc, x, T, v_first, logits, &err, true)
        && rwkv_gpu_state_download(gc, state, &err, true);
}

static void compare_model(const char * label, const char * gpu_path, const char * cpu_path) {
    struct rwkv_model * gm = load_model(gpu_path), * cm = load_model(cpu_path);
    struct rwkv_error err;
    struct rwkv_context * cpu = rwkv_context_create(cm, 2, &err, true);
    CHECK_MSG(cpu != NULL, "%s: CPU context: %s", label, err.message);
    const size_t C = gm->n_embed, V = gm->n_vocab, S = gm->state_len, L = gm->n_layer;
    const size_t n_seq = 150;
    uint32_t * tokens = malloc(n_seq * sizeof(uint32_t));
    for (size_t i = 0; i < n_seq; i++) {
        tokens[i] = (uint32_t) (uniform(0, 1) * (double) V) % (uint32_t) V;
    }
    float * cpu_state = malloc(S * sizeof(float)), * gpu_state = malloc(S * sizeof(float));
    float * cpu_logits = malloc(V * sizeof(float)), * gpu_logits = malloc(V * sizeof(float));
    float * x = malloc(n_seq * C * sizeof(float)), * v_first = malloc(n_seq * C * sizeof(float));

    /* Every layer and the head. */
    struct rwkv_gpu_model * full = rwkv_gpu_model_create(gm, (uint32_t) L + 1, &err, true);
    CHECK_MSG(full != NULL, "%s: GPU model: %s", label, err.message);
    struct rwkv_gpu_context * gc = full ? rwkv_gpu_context_create(full, &err, true) : NULL;
    rwkv_gpu_model_release(full);  /* the context keeps it */
    if (cpu && gc) {
        /* One token at a time (the CUDA graph path), 24 tokens. */
        rwkv_model_init_state(gm, cpu_state);
        rwkv_model_init_state(gm, gpu_state);
        double worst_logits = 0, worst_state = 0;
        for (size_t i = 0; i < 24; i++) {
            rwkv_eval_tokens(cpu, &tokens[i], 1, 1, cpu_state, cpu_state, cpu_logits);
            CHECK_MSG(gpu_eval(gc, gm, &tokens[i], 1, gpu_state, x, NULL, gpu_logits), "%s: GPU eval failed", label);
            for (size_t j = 0; j < V; j++) {
                worst_logits = fmax(worst_logits, fabs(gpu_logits[j] - cpu_logits[j]));
            }
            worst_state = fmax(worst_state, scaled_diff(gpu_state, cpu_state, S));
        }
        printf("%s: one token at a time: logits %.2e, state %.2e\n", label, worst_logits, worst_state);
        CHECK_MSG(worst_logits <= MODEL_LOGITS_BOUND, "%s one token: logits differ by %.3g", label, worst_logits);
        CHECK_MSG(worst_state <= MODEL_STATE_RELATIVE_BOUND, "%s one token: state differs by %.3g", label, worst_state);
        /* Sequences: 40 tokens (the tiled kernels), 150 (more than one GPU chunk), from the state above. */
        static const size_t lengths[] = {40, 150};
        for (size_t li = 0; li < 2; li++) {
            memcpy(gpu_state, cpu_state, S * sizeof(float));
            rwkv_eval_tokens(cpu, tokens, lengths[li], 0, cpu_state, cpu_state, cpu_logits);
            CHECK_MSG(gpu_eval(gc, gm, tokens, lengths[li], gpu_state, x, NULL, gpu_logits), "%s: GPU eval failed", label);
            double diff = 0;
            for (size_t j = 0; j < V; j++) {
                diff = fmax(diff, fabs(gpu_logits[j] - cpu_logits[j]));
            }
            const double state_diff = scaled_diff(gpu_state, cpu_state, S);
            printf("%s: %zu tokens at once: logits %.2e, state %.2e\n", label, lengths[li], diff, state_diff);
            CHECK_MSG(diff <= MODEL_LOGITS_BOUND, "%s %zu tokens: logits differ by %.3g", label, lengths[li], diff);
            CHECK_MSG(state_diff <= MODEL_STATE_RELATIVE_BOUND, "%s %zu tokens: state differs by %.3g", label, lengths[li], state_diff);
        }
    }
    rwkv_gpu_context_free(gc);

    /* The first k layers only: their state, the activations handed to the CPU, and v7's v_first,
     * against the CPU on a model cut after k layers. */
    struct tw_model file, cut;
    CHECK(tw_read(&file, cpu_path));
    for (size_t k = 1; k <= L && cpu; k++) {
        truncated_copy(&file, &cut, (int32_t) k);
        const char * cut_path = test_temp_path("cut.bin");
        CHECK(tw_write(&cut, cut_path));
        tw_free(&cut);
        struct rwkv_model * cut_model = load_model(cut_path);
        struct rwkv_context * cut_cpu = rwkv_context_create(cut_model, 2, &err, true);
        rwkv_model_release(cut_model);
        struct rwkv_gpu_model * part = rwkv_gpu_model_create(gm, (uint32_t) k, &err, true);
        struct rwkv_gpu_context * pc = part ? rwkv_gpu_context_create(part, &err, true) : NULL;
        rwkv_gpu_model_release(part);
        CHECK_MSG(cut_cpu && pc, "%s: %zu layers: %s", label, k, err.message);
        if (cut_cpu && pc) {
            const size_t T = 20;  /* one CPU chunk, so the CPU's v_first buffer holds all of it */
            float * cut_state = malloc(cut_model->state_len * sizeof(float));
            rwkv_model_init_state(cut_model, cut_state);
            rwkv_eval_tokens(cut_cpu, tokens, T, 0, NULL, cut_state, NULL);
            rwkv_model_init_state(gm, gpu_state);
            const bool needs_v_first = gm->arch_major == 7 && k < L;
            CHECK_MSG(gpu_eval(pc, gm, tokens, T, gpu_state, x, needs_v_first ? v_first : NULL, NULL), "%s: GPU eval failed", label);
            const double x_diff = scaled_diff(x + (T - 1) * C, cut_cpu->last_x, C);
            const double state_diff = scaled_diff(gpu_state, cut_state, cut_model->state_len);
            CHECK_MSG(x_diff <= MODEL_STATE_RELATIVE_BOUND, "%s %zu GPU layers: activations differ by %.3g", label, k, x_diff);
            CHECK_MSG(state_diff <= MODEL_STATE_RELATIVE_BOUND, "%s %zu GPU layers: state differs by %.3g", label, k, state_diff);
            if (needs_v_first) {
                const double v_diff = scaled_diff(v_first, cut_cpu->buffers[BUF_V_FIRST], T * C);
                CHECK_MSG(v_diff <= MODEL_STATE_RELATIVE_BOUND, "%s %zu GPU layers: v_first differs by %.3g", label, k, v_diff);
            }
            free(cut_state);
        }
        rwkv_gpu_context_free(pc);
        rwkv_context_free(cut_cpu);
    }
    tw_free(&file);

    rwkv_context_free(cpu);
    rwkv_model_release(gm);
    rwkv_model_release(cm);
    free(tokens); free(cpu_state); free(gpu_state); free(cpu_logits); free(gpu_logits); free(x); free(v_first);
}

static void test_models(const char * fixture_dir) {
    static const struct {
        const char * arch;
        int32_t C, N;
    } shapes[] = {
        {"4", 64, 0}, {"5.1", 64, 16}, {"5.2", 64, 16}, {"6", 64, 16}, {"7", 64, 16},
        {"5.2", 128, 64}, {"6", 128, 64}, {"7", 128, 64},  /* head size 64 (the usual one) */
        {"7", 96, 48},                                     /* a head size not compiled for */
    };
    static const char * const formats[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"};
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        for (int32_t float_type = TW_F32; float_type <= TW_F16; float_type++) {
            struct tw_model m;
            make_model(&m, shapes[si].arch, 96, shapes[si].C, 3, shapes[si].N, float_type);
            const char * path = test_temp_path("model.bin");
            CHECK(tw_write(&m, path));
            tw_free(&m);
            char label[96];
            snprintf(label, sizeof(label), "v%s C %d %s", shapes[si].arch, (int) shapes[si].C, float_type == TW_F32 ? "F32" : "F16");
            compare_model(label, path, path);
            if (float_type != TW_F32 || shapes[si].C % 32 != 0) {
                continue;
            }
            for (size_t fi = 0; fi < sizeof(formats) / sizeof(formats[0]); fi++) {
                struct rwkv_quantize_params params = rwkv_quantize_default_params();
                params.format_name = formats[fi];
                params.head_format_name = formats[fi];
                const char * quantized_path = test_temp_path("quantized.bin");
                CHECK(rwkv_quantize_model_file_ex(path, quantized_path, &params));
                struct tw_model q, dq;
                CHECK(tw_read(&q, quantized_path));
                dequantized_copy(&q, &dq);
                const char * dequantized_path = test_temp_path("dequantized.bin");
                CHECK(tw_write(&dq, dequantized_path));
                tw_free(&q);
                tw_free(&dq);
                snprintf(label, sizeof(label), "v%s C %d %s", shapes[si].arch, (int) shapes[si].C, formats[fi]);
                compare_model(label, quantized_path, dequantized_path);
            }
        }
    }
    const char * dir = test_fixture_dir(fixture_dir);
    if (!dir) {
        printf("test_cuda: rwkv.cpp fixtures not found: their models skipped\n");
        return;
    }
    static const char * const fixtures[] = {"tiny-rwkv-4v0-660K-FP32.bin", "tiny-rwkv-4v0-660K-FP16.bin",
                                            "tiny-rwkv-5v2-730K-FP32.bin", "tiny-rwkv-5v2-730K-FP16.bin"};
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        const char * path = test_fixture_path(dir, fixtures[i]);
        if (test_file_exists(path)) {
            compare_model(fixtures[i], path, path);
        }
    }
}

/* ---- the integrated path: the public API with n_gpu_layers ---- */

/* rwkv_cpp's public API on a file loaded with n_gpu_layers (0, 1, n_layer, n_layer + 1) against
 * the CPU on reference_path: the same file for float files, the dequantized copy for quantized
 * ones (the values the GPU computes with; the CPU rounds activations to 8-bit blocks for its
 * integer dots, the GPU keeps them float32). Bounds: 0 layers is the CPU itself, so identical for
 * float files. On a quantized file its distance from the reference (the 8-bit rounding, R) is
 * measured first. Runs with CPU work left (1 or n_layer GPU layers: the head stays on the CPU)
 * round too, on activations a little different from the reference's, so their rounding errors
 * are not the same ones: allowed ROUNDING_ALLOWANCE x R plus MODEL_LOGITS_BOUND. Layers and head
 * on the GPU: MODEL_LOGITS_BOUND alone, as for float files. */
/* Two roundings of the same size differ by up to twice either; the worst single token over 16
 * measured here is at most 2.5 x R (v6, one GPU layer, random weights). Empirical, not derived. */
#define ROUNDING_ALLOWANCE 4.0
static double max_abs_diff(const float * got, const float * want, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        worst = isnan(got[i]) ? INFINITY : fmax(worst, fabs((double) got[i] - want[i]));
    }
    return worst;
}

static void compare_api(const char * label, const char * path, const char * reference_path) {
    double rounding_logits = 0, rounding_state = 0;  /* the CPU's 8-bit rounding, from 0 GPU layers */
    struct rwkv_context * cpu = rwkv_init_from_file(reference_path, 2, 0);
    CHECK_MSG(cpu != NULL, "%s: %s", label, rwkv_get_last_error_message(NULL));
    if (!cpu) {
        return;
    }
    const size_t V = rwkv_get_n_vocab(cpu), S = rwkv_get_state_len(cpu), L = rwkv_get_n_layer(cpu);
    enum { N_ONE = 16, N_SEQ = 40 };  /* N_SEQ > RWKV_MAX_CHUNK: two CPU chunks */
    uint32_t tokens[N_SEQ];
    for (size_t i = 0; i < N_SEQ; i++) {
        tokens[i] = (uint32_t) (uniform(0, 1) * (double) V) % (uint32_t) V;
    }
    float * cpu_state = malloc(S * sizeof(float)), * gpu_state = malloc(S * sizeof(float));
    float * cpu_logits = malloc(N_SEQ * V * sizeof(float)), * gpu_logits = malloc(N_SEQ * V * sizeof(float));
    float * clone_logits = malloc(V * sizeof(float));
    const uint32_t requests[] = {0, 1, (uint32_t) L, (uint32_t) L + 1};
    for (size_t ri = 0; ri < sizeof(requests) / sizeof(requests[0]); ri++) {
        const uint32_t n_gpu = requests[ri];
        struct rwkv_context * gpu = rwkv_init_from_file(path, 2, n_gpu);
        CHECK_MSG(gpu != NULL, "%s, %u GPU layers: %s", label, n_gpu, rwkv_get_last_error_message(NULL));
        if (!gpu) {
            continue;
        }
        CHECK_MSG(rwkv_get_gpu_layer_count(gpu) == n_gpu, "%s: %u GPU layers asked, %u reported", label, n_gpu,
                  rwkv_get_gpu_layer_count(gpu));
        const bool partial = n_gpu > 0 && n_gpu <= L;
        const double bound = n_gpu == 0 ? rounding_logits : MODEL_LOGITS_BOUND + (partial ? ROUNDING_ALLOWANCE * rounding_logits : 0);
        const double state_bound = n_gpu == 0 ? rounding_state : MODEL_STATE_RELATIVE_BOUND + (partial ? ROUNDING_ALLOWANCE * rounding_state : 0);
        /* One token at a time (the GPU's graph path), state carried by the caller. */
        double worst_logits = 0, worst_state = 0;
        bool ok = true;
        for (size_t i = 0; i < N_ONE; i++) {
            ok &= rwkv_eval(cpu, tokens[i], i ? cpu_state : NULL, cpu_state, cpu_logits);
            ok &= rwkv_eval(gpu, tokens[i], i ? gpu_state : NULL, gpu_state, gpu_logits);
            worst_logits = fmax(worst_logits, max_abs_diff(gpu_logits, cpu_logits, V));
            worst_state = fmax(worst_state, scaled_diff(gpu_state, cpu_state, S));
        }
        CHECK_MSG(ok, "%s, %u GPU layers: rwkv_eval failed: %s", label, n_gpu, rwkv_get_last_error_message(gpu));
        /* Sequences from that state: whole, in chunks of 5, and with every token's logits. */
        double seq_logits = 0, seq_state = 0;
        float * start = malloc(S * sizeof(float));
        memcpy(start, cpu_state, S * sizeof(float));
        for (int mode = 0; mode < 3; mode++) {
            const size_t n_logits = mode == 2 ? N_SEQ : 1;
            if (mode == 0) {
                ok &= rwkv_eval_sequence(cpu, tokens, N_SEQ, start, cpu_state, cpu_logits);
                ok &= rwkv_eval_sequence(gpu, tokens, N_SEQ, start, gpu_state, gpu_logits);
            } else if (mode == 1) {
                ok &= rwkv_eval_sequence_in_chunks(cpu, tokens, N_SEQ, 5, start, cpu_state, cpu_logits);
                ok &= rwkv_eval_sequence_in_chunks(gpu, tokens, N_SEQ, 5, start, gpu_state, gpu_logits);
            } else {
                ok &= rwkv_eval_sequence_all_logits(cpu, tokens, N_SEQ, start, cpu_state, cpu_logits);
                ok &= rwkv_eval_sequence_all_logits(gpu, tokens, N_SEQ, start, gpu_state, gpu_logits);
            }
            seq_logits = fmax(seq_logits, max_abs_diff(gpu_logits, cpu_logits, n_logits * V));
            seq_state = fmax(seq_state, scaled_diff(gpu_state, cpu_state, S));
        }
        free(start);
        CHECK_MSG(ok, "%s, %u GPU layers: a sequence failed: %s", label, n_gpu, rwkv_get_last_error_message(gpu));
        if (n_gpu == 0 && strcmp(path, reference_path) != 0) {
            rounding_logits = fmax(worst_logits, seq_logits);
            rounding_state = fmax(worst_state, seq_state);
            printf("%s: the CPU's 8-bit activations against the dequantized weights: logits %.2e, state %.2e\n",
                   label, rounding_logits, rounding_state);
            rwkv_free(gpu);
            continue;
        }
        printf("%s, %u GPU layers (API): one token logits %.2e state %.2e; sequences logits %.2e state %.2e\n",
               label, n_gpu, worst_logits, worst_state, seq_logits, seq_state);
        CHECK_MSG(worst_logits <= bound && seq_logits <= bound, "%s, %u GPU layers: logits differ by %.3g / %.3g (bound %.3g)",
                  label, n_gpu, worst_logits, seq_logits, bound);
        CHECK_MSG(worst_state <= state_bound && seq_state <= state_bound, "%s, %u GPU layers: state differs by %.3g / %.3g",
                  label, n_gpu, worst_state, seq_state);
        /* A clone works on the same device weights with its own workspace: the same numbers. */
        struct rwkv_context * clone = rwkv_clone_context(gpu, 1);
        CHECK_MSG(clone != NULL, "%s, %u GPU layers: clone: %s", label, n_gpu, rwkv_get_last_error_message(gpu));
        if (clone) {
            CHECK(rwkv_get_gpu_layer_count(clone) == n_gpu);
            ok = rwkv_eval_sequence(gpu, tokens, N_ONE, NULL, NULL, gpu_logits)
                && rwkv_eval_sequence(clone, tokens, N_ONE, NULL, NULL, clone_logits);
            CHECK_MSG(ok && max_abs_diff(clone_logits, gpu_logits, V) == 0, "%s, %u GPU layers: the clone differs", label, n_gpu);
            rwkv_free(clone);
        }
        rwkv_free(gpu);
    }
    rwkv_free(cpu);
    free(cpu_state); free(gpu_state); free(cpu_logits); free(gpu_logits); free(clone_logits);
}

static void test_api(void) {
    static const char * const archs[] = {"4", "5.1", "5.2", "6", "7"};
    for (size_t ai = 0; ai < sizeof(archs) / sizeof(archs[0]); ai++) {
        struct tw_model m;
        make_model(&m, archs[ai], 96, 64, 3, 16, TW_F16);
        const char * path = test_temp_path("api.bin");
        CHECK(tw_write(&m, path));
        tw_free(&m);
        char label[64];
        snprintf(label, sizeof(label), "v%s F16", archs[ai]);
        compare_api(label, path, path);
        struct rwkv_quantize_params params = rwkv_quantize_default_params();
        params.format_name = "Q5_1";
        params.head_format_name = "Q5_1";
        const char * quantized_path = test_temp_path("api-q5_1.bin");
        CHECK(rwkv_quantize_model_file_ex(path, quantized_path, &params));
        struct tw_model q, dq;
        CHECK(tw_read(&q, quantized_path));
        dequantized_copy(&q, &dq);
        const char * dequantized_path = test_temp_path("api-dequantized.bin");
        CHECK(tw_write(&dq, dequantized_path));
        tw_free(&q);
        tw_free(&dq);
        snprintf(label, sizeof(label), "v%s Q5_1", archs[ai]);
        compare_api(label, quantized_path, dequantized_path);
    }
    /* rwkv_get_gpu_info describes the device the layers went to. */
    struct rwkv_gpu_info info;
    CHECK_MSG(rwkv_get_gpu_info(&info), "rwkv_get_gpu_info: %s", rwkv_get_last_error_message(NULL));
    CHECK(info.name[0] != '\0');
    CHECK(!rwkv_get_gpu_info(NULL) && rwkv_get_last_error(NULL) == RWKV_ERROR_ARGS);
}

int main(int argc, char ** argv) {
    char why[512];
    if (!rwkv_gpu_available(why, sizeof(why))) {
        printf("test_cuda: skipped: %s\n", why);
        return TEST_SKIPPED;
    }
    struct rwkv_gpu_device_info info;
    if (rwkv_gpu_device_info(&info, why, sizeof(why))) {
        printf("test_cuda: %s (compute %d.%d, %d SMs, %.0f GB/s, %.1f FP32 TFLOP/s)\n", info.name, info.compute_major,
               info.compute_minor, info.sm_count, info.memory_bandwidth_gbs, info.fp32_tflops);
    }
    const char * group = argc > 1 ? argv[1] : "all";
    const bool all = strcmp(group, "all") == 0;
    if (all || strcmp(group, "kernels") == 0) {
        test_matmul();
        test_norms();
        test_token_mix();
        test_wkv4();
        test_wkv5();
        test_wkv7();
    }
    if (all || strcmp(group, "models") == 0 || strcmp(group, "api") == 0) {
        test_make_temp_dir();
        if (all || strcmp(group, "models") == 0) {
            test_models(argc > 2 ? argv[2] : NULL);
        }
        rwkv_set_print_errors(NULL, false);
        test_api();
        test_remove_temp_dir();
    }
    return test_finish("test_cuda");
}
