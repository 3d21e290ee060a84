/* weights.cu: the offloaded weights copied once into one device allocation: every float vector
 * packed together (one copy), then each matrix with its rows padded to 16 bytes. Quantized
 * blocks keep ggml's layout byte for byte. */
#include <stdlib.h>
#include <string.h>
#include "common.cuh"
extern "C" {
#include "tensor_types.h"
}

#define ARENA_ALIGN 256

static size_t align_up(size_t n, size_t a) {
    return (n + a - 1) / a * a;
}

/* Two passes over the same fields: the first counts, the second copies and points the fields
 * of the device description at the copies. */
struct uploader {
    bool copying;
    bool ok;
    struct rwkv_error * err;
    bool print;
    size_t vector_floats;     /* pass 1: total; pass 2: next free */
    size_t matrix_bytes;      /* same, from the start of the matrix region */
    float * staging;          /* pass 2: host copy of the vector region */
    float * device_vectors;
    uint8_t * device_matrices;
};

static void visit_vector(struct uploader * u, const float ** field, size_t n) {
    if (!*field || !u->ok) {
        return;
    }
    if (u->copying) {
        memcpy(u->staging + u->vector_floats, *field, n * sizeof(float));
        *field = u->device_vectors + u->vector_floats;
    }
    u->vector_floats += n;
}

static void visit_matrix(struct uploader * u, struct rwkv_cuda_matrix * m, const char * name) {
    if (!m->data || !u->ok) {
        return;
    }
    if (!u->copying) {
        const bool known = rwkv_type_is_known(m->type);
        const size_t block = known ? rwkv_type_block_size(m->type) : 0;
        if (!known || m->n_in % block != 0 || m->row_bytes != m->n_in / block * rwkv_type_block_bytes(m->type)) {
            u->ok = rwkv_fail(u->err, u->print, (enum rwkv_error_flags) (RWKV_ERROR_MODEL | RWKV_ERROR_DATA_TYPE),
                "CUDA: matrix %s of type %s (%u) and %zu x %zu cannot be offloaded", name,
                rwkv_type_name(m->type), m->type, m->n_out, m->n_in);
            return;
        }
    }
    const size_t stride = rwkv_cuda_row_stride(m->row_bytes);
    if (u->copying) {
        uint8_t * dst = u->device_matrices + u->matrix_bytes;
        u->ok = rwkv_cuda_upload_rows(dst, stride, m->data, m->row_bytes, m->row_bytes, m->n_out, u->err, u->print);
        m->data = dst;
        m->row_stride = stride;
    }
    u->matrix_bytes += align_up(stride * m->n_out, ARENA_ALIGN);
}

static void visit_all(struct uploader * u, struct rwkv_cuda_weights * w) {
    const size_t C = w->n_embed;
    for (size_t i = 0; i < w->n_gpu_layers; i++) {
        struct rwkv_cuda_layer * l = &w->layers[i];
        const float ** c_vectors[] = {
            &l->ln1_weight, &l->ln1_bias, &l->ln2_weight, &l->ln2_bias,
            &l->att_mix_k, &l->att_mix_v, &l->att_mix_r, &l->att_mix_g,
            &l->att_time_first, &l->att_time_decay, &l->att_ln_x_weight, &l->att_ln_x_bias, &l->att_maa_x,
            &l->att_w0, &l->att_a0, &l->att_v0, &l->att_k_k, &l->att_k_a, &l->att_r_k,
            &l->ffn_mix_k, &l->ffn_mix_r,
        };
        for (size_t j = 0; j < sizeof(c_vectors) / sizeof(c_vectors[0]); j++) {
            visit_vector(u, c_vectors[j], C);
        }
        visit_vector(u, &l->att_maa_wkvrg, 5 * C);
        visit_vector(u, &l->att_x_rwkvag, 6 * C);
        struct {
            struct rwkv_cuda_matrix * m;
            const char * name;
        } matrices[] = {
            {&l->att_maa_w1, "att.time_maa_w1"}, {&l->att_maa_w2, "att.time_maa_w2"},
            {&l->att_decay_w1, "att.time_decay_w1"}, {&l->att_decay_w2, "att.time_decay_w2"},
            {&l->att_w1, "att.w1"}, {&l->att_w2, "att.w2"}, {&l->att_a1, "att.a1"}, {&l->att_a2, "att.a2"},
            {&l->att_v1, "att.v1"}, {&l->att_v2, "att.v2"}, {&l->att_g1, "att.g1"}, {&l->att_g2, "att.g2"},
            {&l->att_key, "att.key"}, {&l->att_value, "att.value"}, {&l->att_receptance, "att.receptance"},
            {&l->att_gate, "att.gate"}, {&l->att_output, "att.output"},
            {&l->ffn_key, "ffn.key"}, {&l->ffn_value, "ffn.value"}, {&l->ffn_receptance, "ffn.receptance"},
        };
        for (size_t j = 0; j < sizeof(matrices) / sizeof(matrices[0]); j++) {
            visit_matrix(u, matrices[j].m, matrices[j].name);
        }
    }
    if (w->has_head) {
        visit_vector(u, &w->ln_out_weight, C);
        visit_vector(u, &w->ln_out_bias, C);
        visit_matrix(u, &w->head, "head");
    }
}

extern "C" bool rwkv_cuda_weights_upload(const struct rwkv_cuda_weights * host, struct rwkv_cuda_weights * device,
                                         void ** arena, size_t * arena_bytes, struct rwkv_error * err, bool print) {
    *device = *host;
    *arena = NULL;
    *arena_bytes = 0;
    device->layers = (struct rwkv_cuda_layer *) malloc((host->n_gpu_layers ? host->n_gpu_layers : 1) * sizeof(*device->layers));
    if (!device->layers) {
        return rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory describing %zu GPU layers", host->n_gpu_layers);
    }
    memcpy(device->layers, host->layers, host->n_gpu_layers * sizeof(*device->layers));

    struct uploader u = {};
    u.ok = true;
    u.err = err;
    u.print = print;
    visit_all(&u, device);
    if (!u.ok) {
        free(device->layers);
        device->layers = NULL;
        return false;
    }
    const size_t vector_bytes = align_up(u.vector_floats * sizeof(float), ARENA_ALIGN);
    *arena_bytes = vector_bytes + u.matrix_bytes;
    *arena = rwkv_cuda_malloc(*arena_bytes, err, print);
    u.staging = (float *) malloc(vector_bytes ? vector_bytes : 1);
    if (!*arena || !u.staging) {
        if (*arena && !u.staging) {
            rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory staging %zu floats of vectors", u.vector_floats);
        }
        free(u.staging);
        rwkv_cuda_weights_free(device, *arena);
        *arena = NULL;
        return false;
    }
    u.copying = true;
    u.vector_floats = 0;
    u.matrix_bytes = 0;
    u.device_vectors = (float *) *arena;
    u.device_matrices = (uint8_t *) *arena + vector_bytes;
    visit_all(&u, device);
    if (u.ok) {
        u.ok = rwkv_cuda_upload(u.device_vectors, u.staging, u.vector_floats * sizeof(float), err, print);
    }
    free(u.staging);
    if (!u.ok) {
        rwkv_cuda_weights_free(device, *arena);
        *arena = NULL;
        return false;
    }
    return true;
}

extern "C" void rwkv_cuda_weights_free(struct rwkv_cuda_weights * device, void * arena) {
    rwkv_cuda_free(arena);
    free(device->layers);
    device->layers = NULL;
}
