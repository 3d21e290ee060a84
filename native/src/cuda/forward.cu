/* forward.cu: the offloaded layers, per RWKV version, as eval.c computes them: the same buffers,
 * the same order, with the activations folded into the matrix products' epilogues and each
 * version's per-head work into its WKV kernel. */
#include "forward.cuh"
extern "C" {
#include "ops.h"
}

#define BUF(name) (ctx->buffers[name])

static const struct rwkv_cuda_epilogue STORE = {RWKV_EPILOGUE_STORE, NULL, 0};

static struct rwkv_cuda_epilogue epilogue(enum rwkv_cuda_epilogue_kind kind) {
    struct rwkv_cuda_epilogue e = {kind, NULL, 0};
    return e;
}

/* y[t] = m x[t] for contiguous inputs and outputs. */
static void matmul(struct rwkv_gpu_context * ctx, const struct rwkv_cuda_matrix * m, const float * x, size_t T, float * y,
                   struct rwkv_cuda_epilogue e) {
    rwkv_cuda_matmul(ctx->stream, m, 0, m->n_out, x, m->n_in, T, y, m->n_out, e);
}

static struct rwkv_cuda_mix mixes(bool lerp, float * delta_out) {
    struct rwkv_cuda_mix mix = {};
    mix.lerp = lerp;
    mix.delta_out = delta_out;
    return mix;
}

static void add_mix(struct rwkv_cuda_mix * mix, const float * coefficients, float * out) {
    mix->mix[mix->n] = coefficients;
    mix->out[mix->n] = out;
    mix->n++;
}

/* ---- time mixing ---- */

static void time_mix_v4(struct rwkv_gpu_context * ctx, const struct rwkv_cuda_layer * l, float * layer_state, size_t T) {
    const size_t C = ctx->model->weights.n_embed;
    struct rwkv_cuda_mix mix = mixes(true, NULL);
    add_mix(&mix, l->att_mix_k, BUF(GPU_IN0));
    add_mix(&mix, l->att_mix_v, BUF(GPU_IN1));
    add_mix(&mix, l->att_mix_r, BUF(GPU_IN2));
    rwkv_cuda_token_mix(ctx->stream, BUF(GPU_XX), layer_state + C, T, C, &mix);
    matmul(ctx, &l->att_key, BUF(GPU_IN0), T, BUF(GPU_K), STORE);
    matmul(ctx, &l->att_value, BUF(GPU_IN1), T, BUF(GPU_V), STORE);
    matmul(ctx, &l->att_receptance, BUF(GPU_IN2), T, BUF(GPU_R), epilogue(RWKV_EPILOGUE_SIGMOID));
    rwkv_cuda_wkv4(ctx->stream, T, C, l->att_time_first, l->att_time_decay, BUF(GPU_K), BUF(GPU_V), BUF(GPU_R),
                   layer_state + 2 * C, layer_state + 3 * C, layer_state + 4 * C, BUF(GPU_WKV));
}

static void time_mix_v5(struct rwkv_gpu_context * ctx, const struct rwkv_cuda_layer * l, float * layer_state, size_t T) {
    const struct rwkv_cuda_weights * m = &ctx->model->weights;
    const size_t C = m->n_embed;
    const bool gated = m->arch_minor >= 2;
    struct rwkv_cuda_mix mix = mixes(true, NULL);
    add_mix(&mix, l->att_mix_k, BUF(GPU_IN0));
    add_mix(&mix, l->att_mix_v, BUF(GPU_IN1));
    add_mix(&mix, l->att_mix_r, BUF(GPU_IN2));
    if (gated) {
        add_mix(&mix, l->att_mix_g, BUF(GPU_IN3));
    }
    rwkv_cuda_token_mix(ctx->stream, BUF(GPU_XX), layer_state + C, T, C, &mix);
    matmul(ctx, &l->att_key, BUF(GPU_IN0), T, BUF(GPU_K), STORE);
    matmul(ctx, &l->att_value, BUF(GPU_IN1), T, BUF(GPU_V), STORE);
    matmul(ctx, &l->att_receptance, BUF(GPU_IN2), T, BUF(GPU_R), STORE);
    if (gated) {
        matmul(ctx, &l->att_gate, BUF(GPU_IN3), T, BUF(GPU_G), epilogue(RWKV_EPILOGUE_SILU));
    }
    rwkv_cuda_wkv5(ctx->stream, T, m->head_count, m->head_size, BUF(GPU_R), BUF(GPU_K), BUF(GPU_V), l->att_time_first,
                   l->att_time_decay, 0, layer_state + 2 * C, l->att_ln_x_weight, l->att_ln_x_bias, RWKV_GROUP_NORM_EPS,
                   gated ? BUF(GPU_G) : NULL, BUF(GPU_WKV));
}

static void time_mix_v6(struct rwkv_gpu_context * ctx, const struct rwkv_cuda_layer * l, float * layer_state, size_t T) {
    const struct rwkv_cuda_weights * m = &ctx->model->weights;
    const size_t C = m->n_embed;
    const size_t d_mix = l->att_maa_w2.n_in;
    float * delta = BUF(GPU_SX);
    struct rwkv_cuda_mix mix = mixes(false, delta);
    add_mix(&mix, l->att_maa_x, BUF(GPU_IN5));
    rwkv_cuda_token_mix(ctx->stream, BUF(GPU_XX), layer_state + C, T, C, &mix);
    /* Data-dependent mixing: five corrections m_j = W2_j tanh(W1 (xx + delta maa_x))_j. */
    float * hidden = ctx->lora_hidden;
    matmul(ctx, &l->att_maa_w1, BUF(GPU_IN5), T, hidden, epilogue(RWKV_EPILOGUE_TANH));
    float * const corrections[5] = {BUF(GPU_MIX0), BUF(GPU_MIX1), BUF(GPU_MIX2), BUF(GPU_MIX3), BUF(GPU_MIX4)};
    float * const inputs[5] = {BUF(GPU_IN0), BUF(GPU_IN1), BUF(GPU_IN2), BUF(GPU_IN3), BUF(GPU_IN4)};  /* w k v r g */
    for (size_t j = 0; j < 5; j++) {
        rwkv_cuda_matmul(ctx->stream, &l->att_maa_w2, j * C, C, hidden + j * d_mix, 5 * d_mix, T, corrections[j], C, STORE);
    }
    rwkv_cuda_mix_v6(ctx->stream, BUF(GPU_XX), delta, corrections, l->att_maa_wkvrg, T, C, inputs);
    matmul(ctx, &l->att_receptance, BUF(GPU_IN3), T, BUF(GPU_R), STORE);
    matmul(ctx, &l->att_key, BUF(GPU_IN1), T, BUF(GPU_K), STORE);
    matmul(ctx, &l->att_value, BUF(GPU_IN2), T, BUF(GPU_V), STORE);
    matmul(ctx, &l->att_gate, BUF(GPU_IN4), T, BUF(GPU_G), epilogue(RWKV_EPILOGUE_SILU));
    /* Decay per token: w = exp(-exp(time_decay + W2 tanh(W1 xw))). */
    matmul(ctx, &l->att_decay_w1, BUF(GPU_IN0), T, hidden, epilogue(RWKV_EPILOGUE_TANH));
    const struct rwkv_cuda_epilogue decay = {RWKV_EPILOGUE_DECAY_V6, l->att_time_decay, 0};
    matmul(ctx, &l->att_decay_w2, hidden, T, BUF(GPU_W), decay);
    rwkv_cuda_wkv5(ctx->stream, T, m->head_count, m->head_size, BUF(GPU_R), BUF(GPU_K), BUF(GPU_V), l->att_time_first,
                   BUF(GPU_W), C, layer_state + 2 * C, l->att_ln_x_weight, l->att_ln_x_bias, RWKV_GROUP_NORM_EPS,
                   BUF(GPU_G), BUF(GPU_WKV));
}

/* v7: y = W2 f(W1 x) for a low-rank pair. */
static void lora(struct rwkv_gpu_context * ctx, const struct rwkv_cuda_matrix * down, const struct rwkv_cuda_matrix * up,
                 enum rwkv_cuda_epilogue_kind f, const float * x, size_t T, float * y) {
    matmul(ctx, down, x, T, ctx->lora_hidden, epilogue(f));
    matmul(ctx, up, ctx->lora_hidden, T, y, STORE);
}

static void time_mix_v7(struct rwkv_gpu_context * ctx, const struct rwkv_cuda_layer * l, float * layer_state, size_t T,
                        bool first_layer) {
    const struct rwkv_cuda_weights * m = &ctx->model->weights;
    const size_t C = m->n_embed;
    struct rwkv_cuda_mix mix = mixes(false, NULL);
    const enum rwkv_gpu_buffer inputs[6] = {GPU_IN0, GPU_IN1, GPU_IN2, GPU_IN3, GPU_IN4, GPU_IN5};  /* r w k v a g */
    for (size_t j = 0; j < 6; j++) {
        add_mix(&mix, l->att_x_rwkvag + j * C, BUF(inputs[j]));
    }
    rwkv_cuda_token_mix(ctx->stream, BUF(GPU_XX), layer_state + C, T, C, &mix);
    matmul(ctx, &l->att_receptance, BUF(GPU_IN0), T, BUF(GPU_R), STORE);
    lora(ctx, &l->att_w1, &l->att_w2, RWKV_EPILOGUE_TANH, BUF(GPU_IN1), T, BUF(GPU_W));
    matmul(ctx, &l->att_key, BUF(GPU_IN2), T, BUF(GPU_K), STORE);
    matmul(ctx, &l->att_value, BUF(GPU_IN3), T, BUF(GPU_V), STORE);
    lora(ctx, &l->att_a1, &l->att_a2, RWKV_EPILOGUE_STORE, BUF(GPU_IN4), T, BUF(GPU_A));
    lora(ctx, &l->att_g1, &l->att_g2, RWKV_EPILOGUE_SIGMOID, BUF(GPU_IN5), T, BUF(GPU_G));
    if (!first_layer) {
        lora(ctx, &l->att_v1, &l->att_v2, RWKV_EPILOGUE_STORE, BUF(GPU_IN3), T, BUF(GPU_MIX0));
    }
    struct rwkv_cuda_wkv7_args args = {};
    args.T = T;
    args.H = m->head_count;
    args.N = m->head_size;
    args.r = BUF(GPU_R);
    args.w = BUF(GPU_W);
    args.k = BUF(GPU_K);
    args.v = BUF(GPU_V);
    args.a = BUF(GPU_A);
    args.g = BUF(GPU_G);
    args.v_gate = first_layer ? NULL : BUF(GPU_MIX0);
    args.v_first = BUF(GPU_V_FIRST);
    args.w0 = l->att_w0;
    args.a0 = l->att_a0;
    args.v0 = l->att_v0;
    args.k_k = l->att_k_k;
    args.k_a = l->att_k_a;
    args.r_k = l->att_r_k;
    args.ln_weight = l->att_ln_x_weight;
    args.ln_bias = l->att_ln_x_bias;
    args.eps = RWKV_GROUP_NORM_EPS;
    args.S = layer_state + 2 * C;
    args.out = BUF(GPU_WKV);
    rwkv_cuda_wkv7(ctx->stream, &args);
}

/* ---- channel mixing: x += sigmoid(R xr) * (V relu(K xk)^2), v7 without the receptance ---- */

static void channel_mix(struct rwkv_gpu_context * ctx, const struct rwkv_cuda_layer * l, float * ffn_shift, size_t T) {
    const struct rwkv_cuda_weights * m = &ctx->model->weights;
    const size_t C = m->n_embed;
    struct rwkv_cuda_mix mix = mixes(m->arch_major < 6, NULL);
    add_mix(&mix, l->ffn_mix_k, BUF(GPU_IN0));
    if (m->arch_major != 7) {
        add_mix(&mix, l->ffn_mix_r, BUF(GPU_IN1));
    }
    rwkv_cuda_token_mix(ctx->stream, BUF(GPU_XX), ffn_shift, T, C, &mix);
    matmul(ctx, &l->ffn_key, BUF(GPU_IN0), T, ctx->ffn_hidden, epilogue(RWKV_EPILOGUE_RELU_SQ));
    if (m->arch_major == 7) {
        matmul(ctx, &l->ffn_value, ctx->ffn_hidden, T, BUF(GPU_X), epilogue(RWKV_EPILOGUE_ADD));
        return;
    }
    matmul(ctx, &l->ffn_receptance, BUF(GPU_IN1), T, BUF(GPU_R), epilogue(RWKV_EPILOGUE_SIGMOID));
    const struct rwkv_cuda_epilogue gated_residual = {RWKV_EPILOGUE_MUL_ADD, BUF(GPU_R), C};
    matmul(ctx, &l->ffn_value, ctx->ffn_hidden, T, BUF(GPU_X), gated_residual);
}

/* ---- a chunk ---- */

void rwkv_gpu_enqueue_chunk(struct rwkv_gpu_context * ctx, size_t T, bool with_logits) {
    const struct rwkv_cuda_weights * m = &ctx->model->weights;
    const size_t C = m->n_embed;
    cudaStream_t stream = ctx->stream;
    float * x = BUF(GPU_X);
    cudaMemcpyAsync(x, ctx->host_x, T * C * sizeof(float), cudaMemcpyHostToDevice, stream);
    for (size_t i = 0; i < m->n_gpu_layers; i++) {
        const struct rwkv_cuda_layer * l = &m->layers[i];
        float * layer_state = ctx->state + i * m->layer_floats;
        rwkv_cuda_norm(stream, x, l->ln1_weight, l->ln1_bias, T, C, C, RWKV_LAYER_NORM_EPS, BUF(GPU_XX));
        switch (m->arch_major) {
            case 4: time_mix_v4(ctx, l, layer_state, T); break;
            case 5: time_mix_v5(ctx, l, layer_state, T); break;
            case 6: time_mix_v6(ctx, l, layer_state, T); break;
            default: time_mix_v7(ctx, l, layer_state, T, i == 0); break;
        }
        matmul(ctx, &l->att_output, BUF(GPU_WKV), T, x, epilogue(RWKV_EPILOGUE_ADD));
        rwkv_cuda_norm(stream, x, l->ln2_weight, l->ln2_bias, T, C, C, RWKV_LAYER_NORM_EPS, BUF(GPU_XX));
        channel_mix(ctx, l, layer_state, T);
    }
    if (with_logits) {
        float * normalized = BUF(GPU_XX);
        rwkv_cuda_norm(stream, x + (T - 1) * C, m->ln_out_weight, m->ln_out_bias, 1, C, C, RWKV_LAYER_NORM_EPS, normalized);
        matmul(ctx, &m->head, normalized, 1, ctx->logits, STORE);
        cudaMemcpyAsync(ctx->host_logits, ctx->logits, m->n_vocab * sizeof(float), cudaMemcpyDeviceToHost, stream);
    }
    if (!with_logits) {  /* the activations for the CPU's layers, or its head (all logits, no logits) */
        cudaMemcpyAsync(ctx->host_x, x, T * C * sizeof(float), cudaMemcpyDeviceToHost, stream);
    }
    if (ctx->copy_v_first) {
        cudaMemcpyAsync(ctx->host_v_first, BUF(GPU_V_FIRST), T * C * sizeof(float), cudaMemcpyDeviceToHost, stream);
    }
}
