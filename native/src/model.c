/* model.c: from a validated tensor table to typed per-layer structs. Detects the architecture
 * from tensor names as rwkv.cpp does, checks every shape against the header, and copies small
 * vectors to float32; weight matrices stay in the mapped file. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_features.h"
#include "kernels.h"
#include "quant.h"
#include "tensor_types.h"

/* Binding runs twice: once counting the floats the vectors need, once filling them. */
struct binder {
    const struct rwkv_model_file * file;
    struct rwkv_error * err;
    bool print;
    bool ok;
    bool filling;
    float * next;
    size_t n_floats;
    char name[RWKV_MAX_KEY_LENGTH + 1];
};

static const char * layer_name(struct binder * b, size_t layer, const char * suffix) {
    snprintf(b->name, sizeof(b->name), "blocks.%zu.%s", layer, suffix);
    return b->name;
}

static const struct rwkv_file_tensor * find_required(struct binder * b, const char * name) {
    if (!b->ok) {
        return NULL;
    }
    const struct rwkv_file_tensor * t = rwkv_model_file_find(b->file, name);
    if (!t) {
        b->ok = rwkv_fail(b->err, b->print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_PARAM_MISSING, "model parameter %s not found", name);
    }
    return t;
}

static void shape_string(const struct rwkv_file_tensor * t, char * out, size_t size) {
    /* PyTorch order, as users see it in checkpoints. */
    if (t->n_dims == 1) {
        snprintf(out, size, "(%llu)", (unsigned long long) t->ne[0]);
    } else if (t->n_dims == 2) {
        snprintf(out, size, "(%llu, %llu)", (unsigned long long) t->ne[1], (unsigned long long) t->ne[0]);
    } else {
        snprintf(out, size, "(%llu, %llu, %llu)", (unsigned long long) t->ne[2], (unsigned long long) t->ne[1], (unsigned long long) t->ne[0]);
    }
}

static bool fail_shape(struct binder * b, const struct rwkv_file_tensor * t, const char * expected) {
    char shape[96];
    shape_string(t, shape, sizeof(shape));
    b->ok = rwkv_fail(b->err, b->print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
        "tensor %s: shape %s does not match %s", t->name, shape, expected);
    return false;
}

/* Vectors may come in any type: rwkv.cpp's quantizer quantizes every 2-D tensor, v7's r_k too. */
static void convert_to_f32(const struct rwkv_file_tensor * t, float * out) {
    rwkv_dequantize_row(t->type, t->data, out, t->n_elements);
}

/* A vector parameter of n floats, in any shape with n elements (files store e.g. (C), (1,1,C)
 * or (H,N,1)). Each of its n values is repeated `repeat` times (v5.1's per-head decays). */
static const float * bind_vector_repeated(struct binder * b, const char * name, size_t n, size_t repeat) {
    const struct rwkv_file_tensor * t = find_required(b, name);
    if (!t) {
        return NULL;
    }
    if (t->n_elements != n) {
        char expected[96];
        snprintf(expected, sizeof(expected), "%zu elements", n);
        fail_shape(b, t, expected);
        return NULL;
    }
    if (!b->filling) {
        b->n_floats += n * repeat;
        return NULL;
    }
    float * out = b->next;
    b->next += n * repeat;
    convert_to_f32(t, out);
    for (size_t i = n; i-- > 0;) {  /* backwards, so expansion in place never overwrites unread values */
        for (size_t j = repeat; j-- > 0;) {
            out[i * repeat + j] = out[i];
        }
    }
    return out;
}

static const float * bind_vector(struct binder * b, const char * name, size_t n) {
    return bind_vector_repeated(b, name, n, 1);
}

/* A [n_out][n_in] matrix; a 3-D tensor [k][rows][n_in] counts as k * rows output rows. */
static void bind_matrix(struct binder * b, const char * name, size_t n_in, size_t n_out, struct rwkv_matrix * m) {
    const struct rwkv_file_tensor * t = find_required(b, name);
    if (!t) {
        return;
    }
    if (t->ne[0] != n_in || t->ne[1] * t->ne[2] != n_out) {
        char expected[96];
        snprintf(expected, sizeof(expected), "%zu x %zu (out x in)", n_out, n_in);
        fail_shape(b, t, expected);
        return;
    }
    m->type = t->type;
    m->data = t->data;
    m->n_in = n_in;
    m->n_out = n_out;
    m->row_bytes = n_in / rwkv_type_block_size(t->type) * rwkv_type_block_bytes(t->type);
}

/* Reads a dimension the header does not give (FFN width, low-rank widths) from a tensor. */
static size_t tensor_dim(struct binder * b, const char * name, int dim) {
    const struct rwkv_file_tensor * t = find_required(b, name);
    return t ? (size_t) t->ne[dim] : 0;
}

static bool has(const struct rwkv_model_file * file, const char * name) {
    return rwkv_model_file_find(file, name) != NULL;
}

/* Sets arch, head count/size and the widths that come from tensor shapes. */
static bool detect_architecture(struct binder * b, struct rwkv_model * m) {
    const struct rwkv_model_file * file = b->file;
    m->arch_major = 4;
    m->arch_minor = 0;
    if (has(file, "blocks.0.att.k_k")) {
        m->arch_major = 7;
    } else if (has(file, "blocks.0.att.time_maa_x")) {
        m->arch_major = 6;
    } else if (has(file, "blocks.0.att.ln_x.weight")) {
        m->arch_major = 5;
        m->arch_minor = has(file, "blocks.0.att.gate.weight") ? 2 : 1;
    }

    const size_t C = m->n_embed;
    if (m->arch_major == 4) {
        m->head_count = 0;
        m->head_size = 0;
    } else {
        const char * name = m->arch_major == 7 ? "blocks.0.att.r_k"
            : (m->arch_major == 5 && m->arch_minor == 1) ? "blocks.0.att.time_decay" : "blocks.0.att.time_faaaa";
        const struct rwkv_file_tensor * t = find_required(b, name);
        if (!t) {
            return false;
        }
        if (m->arch_major == 5 && m->arch_minor == 1) {
            m->head_count = t->n_elements;  /* one decay per head */
        } else if (m->arch_major == 7) {
            m->head_count = t->ne[1];  /* r_k: (H, N) */
        } else {
            m->head_count = t->n_dims == 3 ? t->ne[2] : t->ne[1];  /* (H, N, 1) or (H, N) */
        }
        if (m->head_count == 0 || C % m->head_count != 0 || t->n_elements % m->head_count != 0) {
            char expected[96];
            snprintf(expected, sizeof(expected), "a head count dividing n_embed %zu", C);
            return fail_shape(b, t, expected);
        }
        m->head_size = C / m->head_count;
        if (m->arch_major != 5 || m->arch_minor != 1) {
            if (t->n_elements != C) {
                char expected[96];
                snprintf(expected, sizeof(expected), "n_embed %zu elements (heads x head size)", C);
                return fail_shape(b, t, expected);
            }
        }
    }
    m->n_ffn = tensor_dim(b, "blocks.0.ffn.key.weight", 1);
    if (b->ok && (m->n_ffn == 0 || m->n_ffn > (size_t) 1 << 20)) {
        b->ok = rwkv_fail(b->err, b->print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
            "tensor blocks.0.ffn.key.weight: FFN width %zu out of range", m->n_ffn);
    }
    return b->ok;
}

static void bind_layer_v4_v5(struct binder * b, struct rwkv_model * m, size_t i, struct rwkv_layer * l) {
    const size_t C = m->n_embed;
    l->att_mix_k = bind_vector(b, layer_name(b, i, "att.time_mix_k"), C);
    l->att_mix_v = bind_vector(b, layer_name(b, i, "att.time_mix_v"), C);
    l->att_mix_r = bind_vector(b, layer_name(b, i, "att.time_mix_r"), C);
    if (m->arch_major == 4) {
        l->att_time_first = bind_vector(b, layer_name(b, i, "att.time_first"), C);
        l->att_time_decay = bind_vector(b, layer_name(b, i, "att.time_decay"), C);
        return;
    }
    l->att_ln_x_weight = bind_vector(b, layer_name(b, i, "att.ln_x.weight"), C);
    l->att_ln_x_bias = bind_vector(b, layer_name(b, i, "att.ln_x.bias"), C);
    if (m->arch_minor == 1) {
        l->att_time_first = bind_vector_repeated(b, layer_name(b, i, "att.time_first"), m->head_count, m->head_size);
        l->att_time_decay = bind_vector_repeated(b, layer_name(b, i, "att.time_decay"), m->head_count, m->head_size);
    } else {
        l->att_time_first = bind_vector(b, layer_name(b, i, "att.time_faaaa"), C);
        l->att_time_decay = bind_vector(b, layer_name(b, i, "att.time_decay"), C);
        l->att_mix_g = bind_vector(b, layer_name(b, i, "att.time_mix_g"), C);
        bind_matrix(b, layer_name(b, i, "att.gate.weight"), C, C, &l->att_gate);
    }
}

/* The five v6 mixing vectors are stored as one 5 x C block (w, k, v, r, g). */
static void bind_v6_maa(struct binder * b, size_t i, size_t C, struct rwkv_layer * l) {
    static const char * const names[5] = {"att.time_maa_w", "att.time_maa_k", "att.time_maa_v", "att.time_maa_r", "att.time_maa_g"};
    const float * first = NULL;
    for (int j = 0; j < 5; j++) {
        const float * v = bind_vector(b, layer_name(b, i, names[j]), C);
        if (j == 0) {
            first = v;
        }
    }
    l->att_maa_wkvrg = first;  /* consecutive: the binder hands out memory in order */
}

static void bind_layer_v6(struct binder * b, struct rwkv_model * m, size_t i, struct rwkv_layer * l) {
    const size_t C = m->n_embed;
    l->att_maa_x = bind_vector(b, layer_name(b, i, "att.time_maa_x"), C);
    bind_v6_maa(b, i, C, l);
    const size_t d_mix5 = tensor_dim(b, layer_name(b, i, "att.time_maa_w1"), 1);
    if (b->ok && (d_mix5 == 0 || d_mix5 % 5 != 0)) {
        b->ok = rwkv_fail(b->err, b->print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
            "tensor %s: output width %zu is not a multiple of 5", b->name, d_mix5);
        return;
    }
    const size_t d_mix = d_mix5 / 5;
    const size_t d_decay = tensor_dim(b, layer_name(b, i, "att.time_decay_w1"), 1);
    if (d_mix > m->lora_max) m->lora_max = d_mix;
    if (d_decay > m->lora_max) m->lora_max = d_decay;
    bind_matrix(b, layer_name(b, i, "att.time_maa_w1"), C, 5 * d_mix, &l->att_maa_w1);
    bind_matrix(b, layer_name(b, i, "att.time_maa_w2"), d_mix, 5 * C, &l->att_maa_w2);
    bind_matrix(b, layer_name(b, i, "att.time_decay_w1"), C, d_decay, &l->att_decay_w1);
    bind_matrix(b, layer_name(b, i, "att.time_decay_w2"), d_decay, C, &l->att_decay_w2);
    l->att_time_first = bind_vector(b, layer_name(b, i, "att.time_faaaa"), C);
    l->att_time_decay = bind_vector(b, layer_name(b, i, "att.time_decay"), C);
    l->att_ln_x_weight = bind_vector(b, layer_name(b, i, "att.ln_x.weight"), C);
    l->att_ln_x_bias = bind_vector(b, layer_name(b, i, "att.ln_x.bias"), C);
    bind_matrix(b, layer_name(b, i, "att.gate.weight"), C, C, &l->att_gate);
}

/* A low-rank pair: first C -> D, then D -> C, D read from the file. */
static void bind_lora(struct binder * b, struct rwkv_model * m, size_t i, const char * down, const char * up,
                      struct rwkv_matrix * down_m, struct rwkv_matrix * up_m) {
    const size_t C = m->n_embed;
    const size_t d = tensor_dim(b, layer_name(b, i, down), 1);
    if (d > m->lora_max) m->lora_max = d;
    bind_matrix(b, layer_name(b, i, down), C, d, down_m);
    bind_matrix(b, layer_name(b, i, up), d, C, up_m);
}

static void bind_layer_v7(struct binder * b, struct rwkv_model * m, size_t i, struct rwkv_layer * l) {
    const size_t C = m->n_embed;
    l->att_x_rwkvag = bind_vector(b, layer_name(b, i, "att.x_rwkvag"), 6 * C);
    l->att_w0 = bind_vector(b, layer_name(b, i, "att.w0"), C);
    l->att_a0 = bind_vector(b, layer_name(b, i, "att.a0"), C);
    bind_lora(b, m, i, "att.w1", "att.w2", &l->att_w1, &l->att_w2);
    bind_lora(b, m, i, "att.a1", "att.a2", &l->att_a1, &l->att_a2);
    bind_lora(b, m, i, "att.g1", "att.g2", &l->att_g1, &l->att_g2);
    if (i > 0) {  /* layer 0 keeps v as the "first v"; its v0/v1/v2 are unused if present */
        l->att_v0 = bind_vector(b, layer_name(b, i, "att.v0"), C);
        bind_lora(b, m, i, "att.v1", "att.v2", &l->att_v1, &l->att_v2);
    }
    l->att_k_k = bind_vector(b, layer_name(b, i, "att.k_k"), C);
    l->att_k_a = bind_vector(b, layer_name(b, i, "att.k_a"), C);
    l->att_r_k = bind_vector(b, layer_name(b, i, "att.r_k"), C);
    l->att_ln_x_weight = bind_vector(b, layer_name(b, i, "att.ln_x.weight"), C);
    l->att_ln_x_bias = bind_vector(b, layer_name(b, i, "att.ln_x.bias"), C);
}

static void bind_model(struct binder * b, struct rwkv_model * m) {
    const size_t C = m->n_embed, F = m->n_ffn;
    bind_matrix(b, "emb.weight", C, m->n_vocab, &m->emb);
    m->ln0_weight = bind_vector(b, "blocks.0.ln0.weight", C);
    m->ln0_bias = bind_vector(b, "blocks.0.ln0.bias", C);
    for (size_t i = 0; i < m->n_layer && b->ok; i++) {
        struct rwkv_layer * l = &m->layers[i];
        l->ln1_weight = bind_vector(b, layer_name(b, i, "ln1.weight"), C);
        l->ln1_bias = bind_vector(b, layer_name(b, i, "ln1.bias"), C);
        l->ln2_weight = bind_vector(b, layer_name(b, i, "ln2.weight"), C);
        l->ln2_bias = bind_vector(b, layer_name(b, i, "ln2.bias"), C);
        if (m->arch_major == 7) {
            bind_layer_v7(b, m, i, l);
        } else if (m->arch_major == 6) {
            bind_layer_v6(b, m, i, l);
        } else {
            bind_layer_v4_v5(b, m, i, l);
        }
        bind_matrix(b, layer_name(b, i, "att.key.weight"), C, C, &l->att_key);
        bind_matrix(b, layer_name(b, i, "att.value.weight"), C, C, &l->att_value);
        bind_matrix(b, layer_name(b, i, "att.receptance.weight"), C, C, &l->att_receptance);
        bind_matrix(b, layer_name(b, i, "att.output.weight"), C, C, &l->att_output);

        if (m->arch_major == 7) {
            l->ffn_mix_k = bind_vector(b, layer_name(b, i, "ffn.x_k"), C);
        } else if (m->arch_major == 6) {
            l->ffn_mix_k = bind_vector(b, layer_name(b, i, "ffn.time_maa_k"), C);
            l->ffn_mix_r = bind_vector(b, layer_name(b, i, "ffn.time_maa_r"), C);
        } else {
            l->ffn_mix_k = bind_vector(b, layer_name(b, i, "ffn.time_mix_k"), C);
            l->ffn_mix_r = bind_vector(b, layer_name(b, i, "ffn.time_mix_r"), C);
        }
        bind_matrix(b, layer_name(b, i, "ffn.key.weight"), C, F, &l->ffn_key);
        bind_matrix(b, layer_name(b, i, "ffn.value.weight"), F, C, &l->ffn_value);
        if (m->arch_major != 7) {
            bind_matrix(b, layer_name(b, i, "ffn.receptance.weight"), C, C, &l->ffn_receptance);
        }
    }
    m->ln_out_weight = bind_vector(b, "ln_out.weight", C);
    m->ln_out_bias = bind_vector(b, "ln_out.bias", C);
    bind_matrix(b, "head.weight", C, m->n_vocab, &m->head);
}

static void model_free(struct rwkv_model * m) {
    free(m->layers);
    free(m->vectors);
    if (!m->file_borrowed) {
        rwkv_unmap_file(&m->file);
    }
    free(m);
}

/* Parses and binds the file in m->file; frees m on error. */
static struct rwkv_model * model_build(struct rwkv_model * m, struct rwkv_error * err, bool print) {
    struct rwkv_model_file file;
    if (!rwkv_model_file_parse(m->file.data, m->file.n_bytes, &file, err, print)) {
        model_free(m);
        return NULL;
    }
    m->n_vocab = file.header.n_vocab;
    m->n_embed = file.header.n_embed;
    m->n_layer = file.header.n_layer;
    m->file_data_type = file.header.data_type;

    struct binder b = {.file = &file, .err = err, .print = print, .ok = true};
    bool ok = detect_architecture(&b, m);
    if (ok) {
        m->layers = calloc(m->n_layer, sizeof(*m->layers));
        ok = m->layers != NULL;
        if (!ok) {
            rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory allocating %zu layers", m->n_layer);
        }
    }
    if (ok) {
        bind_model(&b, m);  /* counting pass: validates everything, allocates nothing */
        ok = b.ok;
    }
    if (ok && has(&file, layer_name(&b, m->n_layer, "ln1.weight"))) {
        ok = rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
            "the file has a layer %zu but its header says n_layer %zu", m->n_layer, m->n_layer);
    }
    if (ok) {
        m->vectors = malloc(b.n_floats * sizeof(float));
        ok = m->vectors != NULL;
        if (!ok) {
            rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory allocating %zu floats of vectors", b.n_floats);
        }
    }
    if (ok) {
        b.filling = true;
        b.next = m->vectors;
        bind_model(&b, m);
        ok = b.ok;
    }
    rwkv_model_file_free(&file);
    if (!ok) {
        model_free(m);
        return NULL;
    }
    const size_t C = m->n_embed;
    m->state_len = m->arch_major == 4 ? m->n_layer * 5 * C : m->n_layer * (2 + m->head_size) * C;
    return m;
}

static struct rwkv_model * model_alloc(struct rwkv_error * err, bool print) {
    struct rwkv_model * m = calloc(1, sizeof(*m));
    if (!m) {
        rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory allocating the model");
        return NULL;
    }
    atomic_init(&m->reference_count, 1);
    return m;
}

struct rwkv_model * rwkv_model_load(const char * path, struct rwkv_error * err, bool print) {
    struct rwkv_model * m = model_alloc(err, print);
    if (!m) {
        return NULL;
    }
    if (!rwkv_map_file(path, &m->file, err, print)) {
        free(m);
        return NULL;
    }
    return model_build(m, err, print);
}

struct rwkv_model * rwkv_model_load_from_buffer(const uint8_t * data, uint64_t n_bytes, struct rwkv_error * err, bool print) {
    struct rwkv_model * m = model_alloc(err, print);
    if (!m) {
        return NULL;
    }
    m->file.data = data;
    m->file.n_bytes = n_bytes;
    m->file_borrowed = true;
    return model_build(m, err, print);
}

void rwkv_model_retain(struct rwkv_model * model) {
    atomic_fetch_add(&model->reference_count, 1);
}

void rwkv_model_release(struct rwkv_model * model) {
    if (model && atomic_fetch_sub(&model->reference_count, 1) == 1) {
        model_free(model);
    }
}

void rwkv_matrix_row_to_f32(const struct rwkv_matrix * m, size_t row, float * out) {
    const uint8_t * src = m->data + row * m->row_bytes;
    if (m->type == RWKV_TYPE_F16) {
        rwkv_best_kernels()->f16_to_f32(src, out, m->n_in);
    } else {
        rwkv_dequantize_row(m->type, src, out, m->n_in);
    }
}

void rwkv_model_init_state(const struct rwkv_model * model, float * state) {
    const size_t C = model->n_embed;
    if (model->arch_major == 4) {
        for (size_t i = 0; i < model->n_layer; i++) {
            float * layer = state + i * 5 * C;
            memset(layer, 0, 4 * C * sizeof(float));
            for (size_t j = 0; j < C; j++) {
                layer[4 * C + j] = -1e30f;  /* att_pp: log of an empty sum */
            }
        }
    } else {
        memset(state, 0, model->state_len * sizeof(float));
    }
}
