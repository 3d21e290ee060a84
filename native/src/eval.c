/* eval.c: the forward pass. A chunk of T tokens goes through each layer together: matrix
 * products for all T tokens at once (each weight row is read once per chunk), the WKV
 * recurrence token by token. Activations are float32 throughout. */
#include "eval.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include "gpu.h"
#include "ops.h"
#include "quant.h"
#include "tensor_types.h"
#include "wkv.h"

/* ---- matrix products, split by rows across the thread pool ---- */

struct matmul_job {
    struct rwkv_context * ctx;
    const struct rwkv_matrix * m;
    size_t row_begin, n_rows;  /* the rows of m used, as outputs 0..n_rows-1 */
    const float * x;           /* T inputs of m->n_in floats, x_stride apart */
    size_t x_stride;
    float * y;                 /* T outputs of n_rows floats, y_stride apart */
    size_t y_stride;
    size_t T;
    atomic_size_t next_group;  /* the next ROW_ALIGN rows group to take */
    size_t groups_per_piece;
};

/* Rows per thread are split at multiples of 16 so threads never share a cache line of y. */
#define ROW_ALIGN 16

#define ROW_TILE RWKV_ROW_TILE

/* Quantized weights: integer dot products against the activations quantized once per call
 * (ggml's scheme). In sequence mode each unpacked weight block serves several tokens. */
static void quantized_rows(const struct matmul_job * job, size_t first, size_t last) {
    const struct rwkv_matrix * m = job->m;
    const struct rwkv_kernels * k = job->ctx->kernels;
    const size_t n_blocks = m->n_in / RWKV_QUANT_BLOCK_SIZE;
    const struct rwkv_q8_block * x = job->ctx->activations_q8;
    for (size_t row = first; row < last; row++) {
        const uint8_t * w = m->data + (job->row_begin + row) * m->row_bytes;
        if (job->T == 1) {
            job->y[row] = k->dot_quant[m->type](w, x, n_blocks);
        } else {
            k->dot_quant_tokens[m->type](w, x, n_blocks, job->T, job->y + row, job->y_stride);
        }
    }
}

/* Float weights in sequence mode: ROW_TILE rows widened (or copied: file data may be
 * unaligned) into the thread's scratch once, then multiplied with every token. */
static void float_rows_tiled(const struct matmul_job * job, size_t first, size_t last, float * scratch) {
    const struct rwkv_matrix * m = job->m;
    const struct rwkv_kernels * k = job->ctx->kernels;
    for (size_t row = first; row < last; row += ROW_TILE) {
        const size_t n_rows = last - row < ROW_TILE ? last - row : ROW_TILE;
        for (size_t r = 0; r < n_rows; r++) {
            rwkv_matrix_row_to_f32(m, job->row_begin + row + r, scratch + r * m->n_in);
        }
        k->gemm_f32(scratch, m->n_in, n_rows, job->x, job->x_stride, job->T, m->n_in, job->y + row, job->y_stride);
    }
}

/* Rows go in pieces of whole groups of 16, so threads never share a cache line of y. */
static void matmul_rows_range(const struct matmul_job * job, size_t first, size_t last, float * scratch) {
    const struct rwkv_matrix * m = job->m;
    if (rwkv_type_is_quantized(m->type)) {
        quantized_rows(job, first, last);
        return;
    }
    if (job->T > 1) {
        float_rows_tiled(job, first, last, scratch);
        return;
    }
    const struct rwkv_kernels * k = job->ctx->kernels;
    for (size_t row = first; row < last; row++) {
        const uint8_t * w = m->data + (job->row_begin + row) * m->row_bytes;
        job->y[row] = m->type == RWKV_TYPE_F16 ? k->dot_f16(w, job->x, m->n_in) : k->dot_f32(w, job->x, m->n_in);
    }
}

static void matmul_task(void * arg, uint32_t thread_index, uint32_t n_threads) {
    struct matmul_job * job = arg;
    const size_t n_groups = (job->n_rows + ROW_ALIGN - 1) / ROW_ALIGN;
    float * scratch = job->ctx->row_scratch + (size_t) thread_index * job->ctx->row_scratch_floats;
    size_t end_group;
    for (size_t group; (group = rwkv_work_claim(&job->next_group, n_groups, job->groups_per_piece, &end_group)) != SIZE_MAX;) {
        const size_t last = end_group * ROW_ALIGN < job->n_rows ? end_group * ROW_ALIGN : job->n_rows;
        matmul_rows_range(job, group * ROW_ALIGN, last, scratch);
    }
}

static void matmul_rows(struct rwkv_context * ctx, const struct rwkv_matrix * m, size_t row_begin, size_t n_rows,
                        const float * x, size_t x_stride, size_t T, float * y, size_t y_stride) {
    /* About four pieces per thread: enough to even out, few enough to keep rows together. */
    const size_t n_groups = (n_rows + ROW_ALIGN - 1) / ROW_ALIGN;
    const size_t per_piece = (n_groups + 4 * ctx->n_threads - 1) / (4 * ctx->n_threads);
    struct matmul_job job = {ctx, m, row_begin, n_rows, x, x_stride, y, y_stride, T, 0, per_piece ? per_piece : 1};
    if (rwkv_type_is_quantized(m->type)) {
        const size_t n_blocks = m->n_in / RWKV_QUANT_BLOCK_SIZE;
        for (size_t t = 0; t < T; t++) {
            rwkv_quantize_activations(x + t * x_stride, ctx->activations_q8 + t * n_blocks, m->n_in);
        }
    }
    rwkv_threadpool_run(ctx->pool, matmul_task, &job);
}

/* y[t] = m x[t] for contiguous inputs and outputs. */
static void matmul(struct rwkv_context * ctx, const struct rwkv_matrix * m, const float * x, size_t T, float * y) {
    matmul_rows(ctx, m, 0, m->n_out, x, m->n_in, T, y, m->n_out);
}

/* ---- element-wise helpers over T x C blocks ---- */

static void layer_norm_rows(const float * x, const float * w, const float * b, size_t T, size_t C, float * out) {
    for (size_t t = 0; t < T; t++) {
        rwkv_layer_norm(x + t * C, w, b, C, out + t * C);
    }
}

/* sx[t] = the previous token's normalized input: the state's for t = 0. Then the state keeps
 * the last one. */
static void token_shift(const float * xx, float * shift_state, size_t T, size_t C, float * sx) {
    memcpy(sx, shift_state, C * sizeof(float));
    memcpy(sx + C, xx, (T - 1) * C * sizeof(float));
    memcpy(shift_state, xx + (T - 1) * C, C * sizeof(float));
}

/* v4/v5: xx * mix + sx * (1 - mix), as the reference writes it. */
static void lerp_mix(const float * xx, const float * sx, const float * mix, size_t T, size_t C, float * out) {
    for (size_t t = 0; t < T; t++) {
        for (size_t c = 0; c < C; c++) {
            out[t * C + c] = xx[t * C + c] * mix[c] + sx[t * C + c] * (1.0f - mix[c]);
        }
    }
}

/* v6/v7: xx + (sx - xx) * mix, with mix per token when mix_stride is C (else shared). */
static void delta_mix(const float * xx, const float * delta, const float * mix, size_t mix_stride, size_t T, size_t C, float * out) {
    for (size_t t = 0; t < T; t++) {
        for (size_t c = 0; c < C; c++) {
            out[t * C + c] = xx[t * C + c] + delta[t * C + c] * mix[t * mix_stride + c];
        }
    }
}

static void sigmoid_inplace(float * x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        x[i] = rwkv_sigmoid(x[i]);
    }
}

static void silu_inplace(float * x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        x[i] = x[i] * rwkv_sigmoid(x[i]);
    }
}

static void tanh_inplace(float * x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        x[i] = tanhf(x[i]);
    }
}

static void add_inplace(float * x, const float * y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        x[i] += y[i];
    }
}

static void multiply_inplace(float * x, const float * y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        x[i] *= y[i];
    }
}

#define BUF(name) (ctx->buffers[name])

/* v6/v7 token shift as a difference: sx - xx, in place in BUF_SX. */
static float * shift_delta(struct rwkv_context * ctx, size_t n) {
    float * delta = BUF(BUF_SX);
    for (size_t i = 0; i < n; i++) {
        delta[i] -= BUF(BUF_XX)[i];
    }
    return delta;
}

/* ---- time mixing, one function per version ---- */

static void time_mix_v4(struct rwkv_context * ctx, const struct rwkv_layer * l, float * layer_state, size_t T) {
    const size_t C = ctx->model->n_embed;
    float * aa = layer_state + 2 * C, * bb = layer_state + 3 * C, * pp = layer_state + 4 * C;
    lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->att_mix_k, T, C, BUF(BUF_IN0));
    lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->att_mix_v, T, C, BUF(BUF_IN1));
    lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->att_mix_r, T, C, BUF(BUF_IN2));
    matmul(ctx, &l->att_key, BUF(BUF_IN0), T, BUF(BUF_K));
    matmul(ctx, &l->att_value, BUF(BUF_IN1), T, BUF(BUF_V));
    matmul(ctx, &l->att_receptance, BUF(BUF_IN2), T, BUF(BUF_R));
    sigmoid_inplace(BUF(BUF_R), T * C);
    for (size_t t = 0; t < T; t++) {
        rwkv_wkv4(C, l->att_time_first, l->att_time_decay, BUF(BUF_K) + t * C, BUF(BUF_V) + t * C, aa, bb, pp, BUF(BUF_WKV) + t * C);
    }
    multiply_inplace(BUF(BUF_WKV), BUF(BUF_R), T * C);
    matmul(ctx, &l->att_output, BUF(BUF_WKV), T, BUF(BUF_OUT));
}

/* ---- the WKV recurrence, heads split across the thread pool ---- */

/* Each thread runs its heads through all T tokens: heads are independent, and a head's
 * state stays in that thread's cache. Group norm (and v7's bonus term) are per head too. */
struct wkv_job {
    struct rwkv_context * ctx;
    const struct rwkv_layer * l;
    size_t T;
    float * kv_state;
    const float * decay;  /* v5/v6: per token when decay_stride is C */
    size_t decay_stride;
    const float * a;      /* v7 */
    const float * b;
    atomic_size_t next_head;
};

/* One head through all T tokens: heads are independent, and its state stays in one
 * thread's cache. */
static void wkv_head(const struct wkv_job * job, size_t h) {
    const struct rwkv_context * ctx = job->ctx;
    const struct rwkv_model * m = ctx->model;
    const struct rwkv_layer * l = job->l;
    const size_t N = m->head_size, C = m->n_embed;
    const size_t c0 = h * N;
    float * S = job->kv_state + h * N * N;
    for (size_t t = 0; t < job->T; t++) {
        const size_t o = t * C + c0;
        float * out = BUF(BUF_WKV) + o;
        const float * r = BUF(BUF_R) + o, * k = BUF(BUF_K) + o, * v = BUF(BUF_V) + o;
        if (m->arch_major == 7) {
            ctx->kernels->wkv7(1, N, r, BUF(BUF_W) + o, k, v, job->a + o, job->b + o, S, out);
        } else {
            ctx->kernels->wkv5(1, N, r, k, v, l->att_time_first + c0, job->decay + t * job->decay_stride + c0, S, out);
        }
        rwkv_group_norm(out, l->att_ln_x_weight + c0, l->att_ln_x_bias + c0, N, N, RWKV_GROUP_NORM_EPS, out);
        if (m->arch_major == 7) {  /* bonus: (r . (k * r_k)) v */
            float dot = 0.0f;
            for (size_t n = 0; n < N; n++) {
                dot += r[n] * k[n] * l->att_r_k[c0 + n];
            }
            for (size_t n = 0; n < N; n++) {
                out[n] += dot * v[n];
            }
        }
    }
}

static void wkv_task(void * arg, uint32_t thread_index, uint32_t n_threads) {
    struct wkv_job * job = arg;
    size_t end;
    for (size_t h; (h = rwkv_work_claim(&job->next_head, job->ctx->model->head_count, 1, &end)) != SIZE_MAX;) {
        wkv_head(job, h);
    }
}

static void run_wkv(struct rwkv_context * ctx, struct wkv_job * job) {
    rwkv_threadpool_run(ctx->pool, wkv_task, job);
}

/* v5 and v6 share the recurrence, the group norm, the gate and the output projection. */
static void wkv5_and_output(struct rwkv_context * ctx, const struct rwkv_layer * l, float * kv_state, size_t T,
                            const float * decay, size_t decay_stride, bool gated) {
    const size_t C = ctx->model->n_embed;
    struct wkv_job job = {.ctx = ctx, .l = l, .T = T, .kv_state = kv_state, .decay = decay, .decay_stride = decay_stride};
    run_wkv(ctx, &job);
    if (gated) {
        silu_inplace(BUF(BUF_G), T * C);
        multiply_inplace(BUF(BUF_WKV), BUF(BUF_G), T * C);
    }
    matmul(ctx, &l->att_output, BUF(BUF_WKV), T, BUF(BUF_OUT));
}

static void time_mix_v5(struct rwkv_context * ctx, const struct rwkv_layer * l, float * layer_state, size_t T) {
    const size_t C = ctx->model->n_embed;
    const bool gated = ctx->model->arch_minor >= 2;
    lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->att_mix_k, T, C, BUF(BUF_IN0));
    lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->att_mix_v, T, C, BUF(BUF_IN1));
    lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->att_mix_r, T, C, BUF(BUF_IN2));
    matmul(ctx, &l->att_key, BUF(BUF_IN0), T, BUF(BUF_K));
    matmul(ctx, &l->att_value, BUF(BUF_IN1), T, BUF(BUF_V));
    matmul(ctx, &l->att_receptance, BUF(BUF_IN2), T, BUF(BUF_R));
    if (gated) {
        lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->att_mix_g, T, C, BUF(BUF_IN3));
        matmul(ctx, &l->att_gate, BUF(BUF_IN3), T, BUF(BUF_G));
    }
    wkv5_and_output(ctx, l, layer_state + 2 * C, T, l->att_time_decay, 0, gated);
}

static void time_mix_v6(struct rwkv_context * ctx, const struct rwkv_layer * l, float * layer_state, size_t T) {
    const size_t C = ctx->model->n_embed;
    const size_t d_mix = l->att_maa_w2.n_in;
    float * delta = shift_delta(ctx, T * C);
    /* Data-dependent mixing: five corrections m_j = W2_j tanh(W1 (xx + delta * maa_x))_j. */
    delta_mix(BUF(BUF_XX), delta, l->att_maa_x, 0, T, C, BUF(BUF_IN5));
    float * hidden = ctx->lora_hidden;
    matmul(ctx, &l->att_maa_w1, BUF(BUF_IN5), T, hidden);
    tanh_inplace(hidden, T * 5 * d_mix);
    static const enum rwkv_buffer inputs[5] = {BUF_IN0, BUF_IN1, BUF_IN2, BUF_IN3, BUF_IN4};  /* w, k, v, r, g */
    static const enum rwkv_buffer mix[5] = {BUF_MIX0, BUF_MIX1, BUF_MIX2, BUF_MIX3, BUF_MIX4};
    for (size_t j = 0; j < 5; j++) {
        float * mj = BUF(mix[j]);
        matmul_rows(ctx, &l->att_maa_w2, j * C, C, hidden + j * d_mix, 5 * d_mix, T, mj, C);
        const float * maa = l->att_maa_wkvrg + j * C;
        for (size_t t = 0; t < T; t++) {
            for (size_t c = 0; c < C; c++) {
                mj[t * C + c] += maa[c];
            }
        }
        delta_mix(BUF(BUF_XX), delta, mj, C, T, C, BUF(inputs[j]));
    }
    matmul(ctx, &l->att_receptance, BUF(BUF_IN3), T, BUF(BUF_R));
    matmul(ctx, &l->att_key, BUF(BUF_IN1), T, BUF(BUF_K));
    matmul(ctx, &l->att_value, BUF(BUF_IN2), T, BUF(BUF_V));
    matmul(ctx, &l->att_gate, BUF(BUF_IN4), T, BUF(BUF_G));
    /* Decay per token: w = exp(-exp(time_decay + W2 tanh(W1 xw))). */
    matmul(ctx, &l->att_decay_w1, BUF(BUF_IN0), T, hidden);
    tanh_inplace(hidden, T * l->att_decay_w1.n_out);
    matmul(ctx, &l->att_decay_w2, hidden, T, BUF(BUF_W));
    float * w = BUF(BUF_W);
    for (size_t t = 0; t < T; t++) {
        for (size_t c = 0; c < C; c++) {
            w[t * C + c] = expf(-expf(l->att_time_decay[c] + w[t * C + c]));
        }
    }
    wkv5_and_output(ctx, l, layer_state + 2 * C, T, w, C, true);
}

/* v7: y = W2 f(W1 x) for a low-rank pair, f applied in place. */
static void lora(struct rwkv_context * ctx, const struct rwkv_matrix * down, const struct rwkv_matrix * up,
                 void (*f)(float *, size_t), const float * x, size_t T, float * y) {
    float * hidden = ctx->lora_hidden;
    matmul(ctx, down, x, T, hidden);
    if (f) {
        f(hidden, T * down->n_out);
    }
    matmul(ctx, up, hidden, T, y);
}

static void time_mix_v7(struct rwkv_context * ctx, const struct rwkv_layer * l, float * layer_state, size_t T, bool first_layer) {
    const struct rwkv_model * m = ctx->model;
    const size_t C = m->n_embed, H = m->head_count, N = m->head_size;
    float * delta = shift_delta(ctx, T * C);
    static const enum rwkv_buffer inputs[6] = {BUF_IN0, BUF_IN1, BUF_IN2, BUF_IN3, BUF_IN4, BUF_IN5};  /* r w k v a g */
    for (size_t j = 0; j < 6; j++) {
        delta_mix(BUF(BUF_XX), delta, l->att_x_rwkvag + j * C, 0, T, C, BUF(inputs[j]));
    }
    float * r = BUF(BUF_R), * w = BUF(BUF_W), * k = BUF(BUF_K), * v = BUF(BUF_V), * a = BUF(BUF_A), * g = BUF(BUF_G);
    matmul(ctx, &l->att_receptance, BUF(BUF_IN0), T, r);
    lora(ctx, &l->att_w1, &l->att_w2, tanh_inplace, BUF(BUF_IN1), T, w);
    matmul(ctx, &l->att_key, BUF(BUF_IN2), T, k);
    matmul(ctx, &l->att_value, BUF(BUF_IN3), T, v);
    lora(ctx, &l->att_a1, &l->att_a2, NULL, BUF(BUF_IN4), T, a);
    lora(ctx, &l->att_g1, &l->att_g2, sigmoid_inplace, BUF(BUF_IN5), T, g);
    float * v_first = BUF(BUF_V_FIRST);
    if (first_layer) {
        memcpy(v_first, v, T * C * sizeof(float));
    } else {
        float * gate = BUF(BUF_MIX0);
        lora(ctx, &l->att_v1, &l->att_v2, NULL, BUF(BUF_IN3), T, gate);
        for (size_t t = 0; t < T; t++) {
            for (size_t c = 0; c < C; c++) {
                const size_t i = t * C + c;
                v[i] = v[i] + (v_first[i] - v[i]) * rwkv_sigmoid(l->att_v0[c] + gate[i]);
            }
        }
    }
    float * kk = BUF(BUF_MIX1), * b = BUF(BUF_MIX2), * neg_kk = BUF(BUF_MIX3);
    for (size_t t = 0; t < T; t++) {
        for (size_t c = 0; c < C; c++) {
            const size_t i = t * C + c;
            a[i] = rwkv_sigmoid(l->att_a0[c] + a[i]);
            kk[i] = k[i] * l->att_k_k[c];
            k[i] = k[i] * (1.0f + (a[i] - 1.0f) * l->att_k_a[c]);
            w[i] = expf(-0.606531f * rwkv_sigmoid(l->att_w0[c] + w[i]));  /* 0.606531 = exp(-0.5) */
        }
        for (size_t h = 0; h < H; h++) {  /* L2-normalize kk per head, as F.normalize (eps 1e-12) */
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
    struct wkv_job job = {.ctx = ctx, .l = l, .T = T, .kv_state = layer_state + 2 * C, .a = neg_kk, .b = b};
    run_wkv(ctx, &job);
    multiply_inplace(BUF(BUF_WKV), g, T * C);
    matmul(ctx, &l->att_output, BUF(BUF_WKV), T, BUF(BUF_OUT));
}

/* ---- channel mixing ---- */

static void channel_mix(struct rwkv_context * ctx, const struct rwkv_layer * l, size_t T) {
    const struct rwkv_model * m = ctx->model;
    const size_t C = m->n_embed, F = m->n_ffn;
    float * key_in = BUF(BUF_IN0), * receptance_in = BUF(BUF_IN1);
    if (m->arch_major >= 6) {
        float * delta = shift_delta(ctx, T * C);
        delta_mix(BUF(BUF_XX), delta, l->ffn_mix_k, 0, T, C, key_in);
        if (m->arch_major == 6) {
            delta_mix(BUF(BUF_XX), delta, l->ffn_mix_r, 0, T, C, receptance_in);
        }
    } else {
        lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->ffn_mix_k, T, C, key_in);
        lerp_mix(BUF(BUF_XX), BUF(BUF_SX), l->ffn_mix_r, T, C, receptance_in);
    }
    float * hidden = ctx->ffn_hidden;
    matmul(ctx, &l->ffn_key, key_in, T, hidden);
    for (size_t i = 0; i < T * F; i++) {
        const float relu = hidden[i] > 0.0f ? hidden[i] : 0.0f;
        hidden[i] = relu * relu;
    }
    matmul(ctx, &l->ffn_value, hidden, T, BUF(BUF_OUT));
    if (m->arch_major != 7) {
        matmul(ctx, &l->ffn_receptance, receptance_in, T, BUF(BUF_R));
        sigmoid_inplace(BUF(BUF_R), T * C);
        multiply_inplace(BUF(BUF_OUT), BUF(BUF_R), T * C);
    }
}

/* ---- the whole model over one chunk ---- */

/* One chunk through every layer: the first ones on the GPU when the context has offloaded any
 * (their state already uploaded), the rest here. gpu_logits (NULL: none) receives the last
 * token's logits from the GPU, which then has the head; x is then not brought back. */
static bool eval_chunk(struct rwkv_context * ctx, float * state, const uint32_t * tokens, size_t T, float * gpu_logits) {
    const struct rwkv_model * m = ctx->model;
    const size_t C = m->n_embed;
    float * x = BUF(BUF_X);
    for (size_t t = 0; t < T; t++) {
        rwkv_matrix_row_to_f32(&m->emb, tokens[t], BUF(BUF_XX));
        rwkv_layer_norm(BUF(BUF_XX), m->ln0_weight, m->ln0_bias, C, x + t * C);
    }
    size_t first_cpu_layer = 0;
    if (ctx->gpu) {
        /* v_first: RWKV-7's layer-0 v, for the CPU layers after the GPU ones (ignored otherwise). */
        if (!rwkv_gpu_eval_layers(ctx->gpu, x, T, BUF(BUF_V_FIRST), gpu_logits, &ctx->error, ctx->print_errors)) {
            return false;
        }
        if (gpu_logits) {
            return true;
        }
        first_cpu_layer = rwkv_gpu_model_layer_count(rwkv_gpu_context_model(ctx->gpu));
    }
    const size_t layer_floats = m->state_len / m->n_layer;
    for (size_t i = first_cpu_layer; i < m->n_layer; i++) {
        const struct rwkv_layer * l = &m->layers[i];
        float * layer_state = state + i * layer_floats;
        float * ffn_shift = layer_state, * att_shift = layer_state + C;

        layer_norm_rows(x, l->ln1_weight, l->ln1_bias, T, C, BUF(BUF_XX));
        token_shift(BUF(BUF_XX), att_shift, T, C, BUF(BUF_SX));
        switch (m->arch_major) {
            case 4: time_mix_v4(ctx, l, layer_state, T); break;
            case 5: time_mix_v5(ctx, l, layer_state, T); break;
            case 6: time_mix_v6(ctx, l, layer_state, T); break;
            default: time_mix_v7(ctx, l, layer_state, T, i == 0); break;
        }
        add_inplace(x, BUF(BUF_OUT), T * C);

        layer_norm_rows(x, l->ln2_weight, l->ln2_bias, T, C, BUF(BUF_XX));
        token_shift(BUF(BUF_XX), ffn_shift, T, C, BUF(BUF_SX));
        channel_mix(ctx, l, T);
        add_inplace(x, BUF(BUF_OUT), T * C);
    }
    memcpy(ctx->last_x, x + (T - 1) * C, C * sizeof(float));
    return true;
}

/* Sets up the working state: state_out itself when given (no copy when it is also
 * state_in), else the context's buffer. */
static float * begin_state(struct rwkv_context * ctx, const float * state_in, float * state_out) {
    const struct rwkv_model * m = ctx->model;
    float * state = state_out ? state_out : ctx->state;
    if (!state_in) {
        rwkv_model_init_state(m, state);
    } else if (state_in != state) {
        memmove(state, state_in, m->state_len * sizeof(float));
    }
    return state;
}

/* logits[t] = head(ln_out(x[t])) for the T final activations in x. */
static void head_rows(struct rwkv_context * ctx, const float * x, size_t T, float * logits) {
    const struct rwkv_model * m = ctx->model;
    layer_norm_rows(x, m->ln_out_weight, m->ln_out_bias, T, m->n_embed, BUF(BUF_XX));
    matmul(ctx, &m->head, BUF(BUF_XX), T, logits);
}

/* The offloaded layers' state goes to the device once per call and comes back once at the end,
 * not once per chunk. */
static bool gpu_state_upload(struct rwkv_context * ctx, const float * state) {
    return !ctx->gpu || rwkv_gpu_state_upload(ctx->gpu, state, &ctx->error, ctx->print_errors);
}

static bool gpu_state_download(struct rwkv_context * ctx, float * state) {
    return !ctx->gpu || rwkv_gpu_state_download(ctx->gpu, state, &ctx->error, ctx->print_errors);
}

bool rwkv_eval_tokens(struct rwkv_context * ctx, const uint32_t * tokens, size_t n_tokens, size_t chunk_size,
                      const float * state_in, float * state_out, float * logits_out) {
    float * state = begin_state(ctx, state_in, state_out);
    if (chunk_size == 0 || chunk_size > RWKV_MAX_CHUNK) {
        chunk_size = RWKV_MAX_CHUNK;
    }
    /* The head goes to the GPU only with every layer (rwkv.cpp's convention). */
    const bool gpu_head = ctx->gpu && rwkv_gpu_model_has_head(rwkv_gpu_context_model(ctx->gpu)) && logits_out;
    if (!gpu_state_upload(ctx, state)) {
        return false;
    }
    for (size_t done = 0; done < n_tokens; done += chunk_size) {
        const size_t T = n_tokens - done < chunk_size ? n_tokens - done : chunk_size;
        float * gpu_logits = gpu_head && done + T == n_tokens ? logits_out : NULL;
        if (!eval_chunk(ctx, state, tokens + done, T, gpu_logits)) {
            return false;
        }
    }
    if (!gpu_state_download(ctx, state)) {
        return false;
    }
    if (logits_out && !gpu_head) {
        head_rows(ctx, ctx->last_x, 1, logits_out);
    }
    return true;
}

/* With the head offloaded too the GPU still hands back every token's activations here (no
 * logits asked of it), and the head runs on the CPU for each token. */
bool rwkv_eval_tokens_all_logits(struct rwkv_context * ctx, const uint32_t * tokens, size_t n_tokens,
                                 const float * state_in, float * state_out, float * logits_all) {
    float * state = begin_state(ctx, state_in, state_out);
    const size_t n_vocab = ctx->model->n_vocab;
    if (!gpu_state_upload(ctx, state)) {
        return false;
    }
    for (size_t done = 0; done < n_tokens; done += RWKV_MAX_CHUNK) {
        const size_t T = n_tokens - done < RWKV_MAX_CHUNK ? n_tokens - done : RWKV_MAX_CHUNK;
        if (!eval_chunk(ctx, state, tokens + done, T, NULL)) {
            return false;
        }
        head_rows(ctx, BUF(BUF_X), T, logits_all + done * n_vocab);
    }
    return gpu_state_download(ctx, state);
}
