/* context.h: one caller's handle: a shared model plus private scratch memory, threads and error. */
#ifndef RWKV_CONTEXT_H
#define RWKV_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>
#include "errors.h"
#include "kernels.h"
#include "model.h"
#include "quant.h"
#include "threadpool.h"

/* Tokens evaluated together in sequence mode; longer sequences go in chunks of this size, so
 * scratch memory stays bounded whatever the prompt length. */
#define RWKV_MAX_CHUNK 32
/* Rows widened together per thread for sequence-mode matrix products. */
#define RWKV_ROW_TILE 4

/* Activation buffers of RWKV_MAX_CHUNK x n_embed floats, named by their use in eval.c. */
enum rwkv_buffer {
    BUF_X, BUF_XX, BUF_SX,
    BUF_IN0, BUF_IN1, BUF_IN2, BUF_IN3, BUF_IN4, BUF_IN5,
    BUF_R, BUF_W, BUF_K, BUF_V, BUF_A, BUF_G,
    BUF_V_FIRST, BUF_WKV, BUF_OUT,
    BUF_MIX0, BUF_MIX1, BUF_MIX2, BUF_MIX3, BUF_MIX4,
    BUF_COUNT
};

struct rwkv_gpu_context;  /* gpu.h */

struct rwkv_context {
    struct rwkv_model * model;
    const struct rwkv_kernels * kernels;
    struct rwkv_threadpool * pool;
    uint32_t n_threads;
    uint32_t gpu_layer_count;      /* layers on the GPU, + 1 when the head is too */
    struct rwkv_gpu_context * gpu;  /* NULL: every layer on the CPU */

    struct rwkv_error error;
    bool print_errors;

    float * buffers[BUF_COUNT];
    float * ffn_hidden;   /* RWKV_MAX_CHUNK x n_ffn */
    float * lora_hidden;  /* RWKV_MAX_CHUNK x 5 * lora_max */
    struct rwkv_q8_block * activations_q8;  /* RWKV_MAX_CHUNK x widest row / 32: quantized inputs */
    float * row_scratch;  /* n_threads x RWKV_ROW_TILE widest rows, widened once per chunk */
    size_t row_scratch_floats;
    float * state;        /* the state evaluated when the caller passes no state_out */
    float * last_x;       /* n_embed: final activation for the head */
    void * memory;        /* the single allocation behind every pointer above */
};

/* A context for model (retained). NULL on error, with err filled. */
struct rwkv_context * rwkv_context_create(struct rwkv_model * model, uint32_t n_threads, struct rwkv_error * err, bool print);
void rwkv_context_free(struct rwkv_context * ctx);

#endif
