/* context.c: creating and freeing contexts: one scratch allocation sized from the model. */
#include "context.h"

#include <stdlib.h>
#include <string.h>
#include "cpu_features.h"
#include "gpu.h"
#include "platform.h"

static size_t max_size(size_t a, size_t b) {
    return a > b ? a : b;
}

struct rwkv_context * rwkv_context_create(struct rwkv_model * model, uint32_t n_threads, struct rwkv_error * err, bool print) {
    if (n_threads == 0) {
        n_threads = rwkv_cpu_count();
    }
    if (n_threads > 256) {
        n_threads = 256;
    }
    struct rwkv_context * ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        rwkv_fail(err, print, RWKV_ERROR_CTX | RWKV_ERROR_ALLOC, "out of memory allocating a context");
        return NULL;
    }
    const size_t C = model->n_embed, T = RWKV_MAX_CHUNK;
    const size_t widest_row = max_size(max_size(C, model->n_ffn), model->lora_max);
    const size_t row_scratch = RWKV_ROW_TILE * widest_row;
    const size_t n_floats = BUF_COUNT * T * C + T * model->n_ffn + T * 5 * model->lora_max
        + n_threads * row_scratch + model->state_len + C;
    const size_t n_q8_blocks = T * (widest_row / RWKV_QUANT_BLOCK_SIZE + 1);
    /* The q8 blocks go first: they need the alignment malloc gives. */
    ctx->memory = malloc(n_q8_blocks * sizeof(struct rwkv_q8_block) + n_floats * sizeof(float));
    ctx->pool = rwkv_threadpool_create(n_threads);
    if (!ctx->memory || !ctx->pool) {
        rwkv_threadpool_free(ctx->pool);
        free(ctx->memory);
        free(ctx);
        rwkv_fail(err, print, RWKV_ERROR_CTX | RWKV_ERROR_ALLOC,
            "cannot allocate a context: %zu MiB of scratch memory and %u threads", n_floats * sizeof(float) >> 20, n_threads);
        return NULL;
    }
    ctx->activations_q8 = ctx->memory;
    float * next = (float *) (ctx->activations_q8 + n_q8_blocks);
    for (int i = 0; i < BUF_COUNT; i++) {
        ctx->buffers[i] = next;
        next += T * C;
    }
    ctx->ffn_hidden = next;
    next += T * model->n_ffn;
    ctx->lora_hidden = next;
    next += T * 5 * model->lora_max;
    ctx->row_scratch = next;
    ctx->row_scratch_floats = row_scratch;
    next += n_threads * row_scratch;
    ctx->state = next;
    next += model->state_len;
    ctx->last_x = next;

    rwkv_model_retain(model);
    ctx->model = model;
    ctx->kernels = rwkv_best_kernels();
    ctx->n_threads = n_threads;
    ctx->print_errors = print;
    rwkv_error_clear(&ctx->error);
    return ctx;
}

void rwkv_context_free(struct rwkv_context * ctx) {
    if (!ctx) {
        return;
    }
    rwkv_gpu_context_free(ctx->gpu);
    rwkv_threadpool_free(ctx->pool);
    rwkv_model_release(ctx->model);
    free(ctx->memory);
    free(ctx);
}
