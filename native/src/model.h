/* model.h: the loaded model: tensors of the file turned into typed per-layer structs.
 * Immutable after load and reference counted; every context cloned from one shares it. */
#ifndef RWKV_MODEL_H
#define RWKV_MODEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "file_format.h"
#include "platform.h"

/* A weight matrix in PyTorch layout [n_out][n_in], rows stored one after another, left in the
 * mapped file (any supported data type). */
struct rwkv_matrix {
    uint32_t type;
    const uint8_t * data;
    size_t n_in;
    size_t n_out;
    size_t row_bytes;
};

/* Vectors (norms, mixing coefficients, decays) are copied to float32 at load. Fields a version
 * does not use stay NULL / empty. */
struct rwkv_layer {
    const float * ln1_weight;
    const float * ln1_bias;
    const float * ln2_weight;
    const float * ln2_bias;

    /* v4, v5: token-shift mixing of the attention inputs. */
    const float * att_mix_k;
    const float * att_mix_v;
    const float * att_mix_r;
    const float * att_mix_g;  /* v5.2 */
    /* v4: time_first (C), time_decay = -exp(w) (C).
     * v5.1: per head, expanded here to C: time_first = exp(u), time_decay = exp(-exp(w)).
     * v5.2: time_faaaa (C) as time_first, time_decay = exp(-exp(w)) (C).
     * v6: time_faaaa (C) as time_first, time_decay raw (C); the decay depends on the token. */
    const float * att_time_first;
    const float * att_time_decay;
    const float * att_ln_x_weight;
    const float * att_ln_x_bias;

    /* v6: data-dependent token shift. */
    const float * att_maa_x;
    const float * att_maa_wkvrg;  /* 5 x C: w, k, v, r, g */
    struct rwkv_matrix att_maa_w1;  /* C -> 5 * D */
    struct rwkv_matrix att_maa_w2;  /* five D -> C matrices stacked: n_out = 5 * C */
    struct rwkv_matrix att_decay_w1;
    struct rwkv_matrix att_decay_w2;

    /* v7. */
    const float * att_x_rwkvag;  /* 6 x C: r, w, k, v, a, g */
    const float * att_w0;
    const float * att_a0;
    const float * att_v0;  /* NULL on layer 0 */
    const float * att_k_k;
    const float * att_k_a;
    const float * att_r_k;
    struct rwkv_matrix att_w1, att_w2, att_a1, att_a2, att_v1, att_v2, att_g1, att_g2;

    struct rwkv_matrix att_key;
    struct rwkv_matrix att_value;
    struct rwkv_matrix att_receptance;
    struct rwkv_matrix att_gate;
    struct rwkv_matrix att_output;

    /* v4/v5: ffn time_mix_k/r; v6: time_maa_k/r; v7: x_k (r unused). */
    const float * ffn_mix_k;
    const float * ffn_mix_r;
    struct rwkv_matrix ffn_key;
    struct rwkv_matrix ffn_value;
    struct rwkv_matrix ffn_receptance;  /* absent in v7 */
};

struct rwkv_model {
    atomic_int reference_count;
    struct rwkv_mapped_file file;
    bool file_borrowed;  /* file.data belongs to the caller of rwkv_model_load_from_buffer */

    uint32_t arch_major;  /* 4, 5, 6, 7 */
    uint32_t arch_minor;  /* 1, 2 for v5 */
    size_t n_vocab;
    size_t n_embed;
    size_t n_layer;
    size_t n_ffn;
    size_t head_count;  /* 0 for v4 */
    size_t head_size;
    size_t lora_max;    /* the largest low-rank width (v6, v7), for scratch sizing */
    size_t state_len;   /* floats */
    size_t file_data_type;

    struct rwkv_matrix emb;
    const float * ln0_weight;
    const float * ln0_bias;
    struct rwkv_layer * layers;
    const float * ln_out_weight;
    const float * ln_out_bias;
    struct rwkv_matrix head;

    float * vectors;  /* one allocation holding every float vector above */

    /* Hash of the file's bytes for state files, computed on first use. */
    atomic_bool file_hash_ready;
    _Atomic uint64_t file_hash;
};

/* Maps, validates and builds the model. NULL on error (err filled). */
struct rwkv_model * rwkv_model_load(const char * path, struct rwkv_error * err, bool print);
/* The same over a file's bytes in memory (the fuzzer's entry); data must outlive the model. */
struct rwkv_model * rwkv_model_load_from_buffer(const uint8_t * data, uint64_t n_bytes, struct rwkv_error * err, bool print);
void rwkv_model_retain(struct rwkv_model * model);
void rwkv_model_release(struct rwkv_model * model);

/* Widens row `row` of m to float32. */
void rwkv_matrix_row_to_f32(const struct rwkv_matrix * m, size_t row, float * out);

/* Writes the fresh state: zeros, and -1e30 in v4's att_pp. */
void rwkv_model_init_state(const struct rwkv_model * model, float * state);

#endif
