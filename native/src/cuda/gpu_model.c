/* gpu_model.c: rwkv_gpu_model_create: the offloaded part of a loaded model described in plain
 * structs (cuda/backend.h) for the CUDA side to upload; C, because model.h uses C11 atomics,
 * which CUDA's C++ cannot include. */
#include <stdlib.h>
#include "backend.h"
#include "gpu.h"
#include "model.h"

static struct rwkv_cuda_matrix describe_matrix(const struct rwkv_matrix * m) {
    struct rwkv_cuda_matrix d = {m->type, m->data, m->n_in, m->n_out, m->row_bytes, m->row_bytes};
    return d;
}

static void describe_layer(const struct rwkv_layer * l, struct rwkv_cuda_layer * d) {
#define VECTOR(f) d->f = l->f
#define MATRIX(f) d->f = describe_matrix(&l->f)
    VECTOR(ln1_weight); VECTOR(ln1_bias); VECTOR(ln2_weight); VECTOR(ln2_bias);
    VECTOR(att_mix_k); VECTOR(att_mix_v); VECTOR(att_mix_r); VECTOR(att_mix_g);
    VECTOR(att_time_first); VECTOR(att_time_decay); VECTOR(att_ln_x_weight); VECTOR(att_ln_x_bias);
    VECTOR(att_maa_x); VECTOR(att_maa_wkvrg);
    MATRIX(att_maa_w1); MATRIX(att_maa_w2); MATRIX(att_decay_w1); MATRIX(att_decay_w2);
    VECTOR(att_x_rwkvag);
    VECTOR(att_w0); VECTOR(att_a0); VECTOR(att_v0); VECTOR(att_k_k); VECTOR(att_k_a); VECTOR(att_r_k);
    MATRIX(att_w1); MATRIX(att_w2); MATRIX(att_a1); MATRIX(att_a2);
    MATRIX(att_v1); MATRIX(att_v2); MATRIX(att_g1); MATRIX(att_g2);
    MATRIX(att_key); MATRIX(att_value); MATRIX(att_receptance); MATRIX(att_gate); MATRIX(att_output);
    VECTOR(ffn_mix_k); VECTOR(ffn_mix_r);
    MATRIX(ffn_key); MATRIX(ffn_value); MATRIX(ffn_receptance);
#undef VECTOR
#undef MATRIX
}

struct rwkv_gpu_model * rwkv_gpu_model_create(const struct rwkv_model * model, uint32_t n_layers,
                                              struct rwkv_error * err, bool print) {
    if (n_layers == 0 || model->n_layer == 0) {
        rwkv_fail(err, print, RWKV_ERROR_ARGS, "rwkv_gpu_model_create: nothing to offload (%u layers asked, the model has %zu)",
                  n_layers, model->n_layer);
        return NULL;
    }
    struct rwkv_cuda_weights host = {0};
    host.arch_major = model->arch_major;
    host.arch_minor = model->arch_minor;
    host.n_vocab = model->n_vocab;
    host.n_embed = model->n_embed;
    host.n_ffn = model->n_ffn;
    host.head_count = model->head_count;
    host.head_size = model->head_size;
    host.lora_max = model->lora_max;
    host.n_layer = model->n_layer;
    host.n_gpu_layers = n_layers < model->n_layer ? n_layers : model->n_layer;
    host.layer_floats = model->state_len / model->n_layer;
    host.has_head = n_layers > model->n_layer;
    host.layers = calloc(host.n_gpu_layers, sizeof(*host.layers));
    if (!host.layers) {
        rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory describing %zu layers for the GPU", host.n_gpu_layers);
        return NULL;
    }
    for (size_t i = 0; i < host.n_gpu_layers; i++) {
        describe_layer(&model->layers[i], &host.layers[i]);
    }
    if (host.has_head) {
        host.ln_out_weight = model->ln_out_weight;
        host.ln_out_bias = model->ln_out_bias;
        host.head = describe_matrix(&model->head);
    }
    struct rwkv_gpu_model * gpu_model = rwkv_cuda_gpu_model_create(&host, err, print);
    free(host.layers);
    return gpu_model;
}
