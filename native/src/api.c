/* api.c: the exported functions: argument checks first, then calls inward. */
#include <stdio.h>
#include <string.h>
#include "context.h"
#include "cpu_features.h"
#include "errors.h"
#include "eval.h"
#include "gpu.h"
#include "model.h"
#include "quantize.h"
#include "state_file.h"
#include "rwkv.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define VERSION_STRING STRINGIFY(RWKV_CPP_VERSION_MAJOR) "." STRINGIFY(RWKV_CPP_VERSION_MINOR) "." STRINGIFY(RWKV_CPP_VERSION_PATCH)

/* ---- errors ---- */

void rwkv_set_print_errors(struct rwkv_context * ctx, bool print_errors) {
    if (ctx) {
        ctx->print_errors = print_errors;
    } else {
        *rwkv_thread_print_errors() = print_errors;
    }
}

bool rwkv_get_print_errors(const struct rwkv_context * ctx) {
    return ctx ? ctx->print_errors : *rwkv_thread_print_errors();
}

enum rwkv_error_flags rwkv_get_last_error(struct rwkv_context * ctx) {
    struct rwkv_error * err = ctx ? &ctx->error : rwkv_thread_error();
    const enum rwkv_error_flags flags = err->flags;
    err->flags = RWKV_ERROR_NONE;  /* rwkv.cpp clears the flags; the message stays for the getter */
    return flags;
}

const char * rwkv_get_last_error_message(const struct rwkv_context * ctx) {
    return ctx ? ctx->error.message : rwkv_thread_error()->message;
}

/* ---- loading ---- */

struct rwkv_context * rwkv_init_from_file(const char * model_file_path, uint32_t n_threads, uint32_t n_gpu_layers) {
    struct rwkv_error * err = rwkv_thread_error();
    const bool print = *rwkv_thread_print_errors();
    rwkv_error_clear(err);
    if (!model_file_path) {
        rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_FILE_OPEN, "model file path is NULL");
        return NULL;
    }
    struct rwkv_model * model = rwkv_model_load(model_file_path, err, print);
    if (!model) {
        return NULL;
    }
    struct rwkv_context * ctx = rwkv_context_create(model, n_threads, err, print);
    rwkv_model_release(model);  /* the context holds its own reference */
    /* No GPU is a notice (rwkv_gpu_offload_layers); a GPU that cannot take the layers (out of
     * device memory, say) fails the load rather than quietly running on the CPU. */
    if (ctx && n_gpu_layers > 0 && !rwkv_gpu_offload_layers(ctx, n_gpu_layers)) {
        *err = ctx->error;
        rwkv_context_free(ctx);
        return NULL;
    }
    return ctx;
}

struct rwkv_context * rwkv_clone_context(struct rwkv_context * ctx, uint32_t n_threads) {
    if (!ctx) {
        rwkv_fail(rwkv_thread_error(), *rwkv_thread_print_errors(), RWKV_ERROR_ARGS, "rwkv_clone_context: ctx is NULL");
        return NULL;
    }
    struct rwkv_context * clone = rwkv_context_create(ctx->model, n_threads, &ctx->error, ctx->print_errors);
    if (!clone) {
        return NULL;
    }
    clone->print_errors = ctx->print_errors;
    if (ctx->gpu) {  /* its own stream and scratch on the same device weights */
        clone->gpu = rwkv_gpu_context_create(rwkv_gpu_context_model(ctx->gpu), &ctx->error, ctx->print_errors);
        if (!clone->gpu) {
            rwkv_context_free(clone);
            return NULL;
        }
        clone->gpu_layer_count = ctx->gpu_layer_count;
    }
    return clone;
}

bool rwkv_gpu_offload_layers(struct rwkv_context * ctx, uint32_t n_layers) {
    if (!ctx) {
        return rwkv_fail(rwkv_thread_error(), *rwkv_thread_print_errors(), RWKV_ERROR_ARGS, "rwkv_gpu_offload_layers: ctx is NULL");
    }
    if (n_layers == 0) {
        return true;
    }
    char why[RWKV_ERROR_MESSAGE_SIZE / 2];
    if (!rwkv_gpu_available(why, sizeof(why))) {
        /* A notice, not a failure (as llama.cpp): the flags stay clear, everything runs on the CPU. */
        snprintf(ctx->error.message, sizeof(ctx->error.message),
            "%u GPU layers requested, but there is no GPU support here (%s): all layers run on the CPU", n_layers, why);
        return true;
    }
    struct rwkv_gpu_model * gpu_model = rwkv_gpu_model_create(ctx->model, n_layers, &ctx->error, ctx->print_errors);
    if (!gpu_model) {
        return false;
    }
    struct rwkv_gpu_context * gpu = rwkv_gpu_context_create(gpu_model, &ctx->error, ctx->print_errors);
    rwkv_gpu_model_release(gpu_model);  /* the gpu context holds it */
    if (!gpu) {
        return false;
    }
    rwkv_gpu_context_free(ctx->gpu);  /* a second call replaces the first */
    ctx->gpu = gpu;
    const size_t n_layer = ctx->model->n_layer;
    ctx->gpu_layer_count = n_layers > n_layer ? (uint32_t) (n_layer + 1) : n_layers;  /* + 1: the head */
    return true;
}

bool rwkv_get_gpu_info(struct rwkv_gpu_info * info) {
    struct rwkv_error * err = rwkv_thread_error();
    rwkv_error_clear(err);
    if (!info) {
        return rwkv_fail(err, *rwkv_thread_print_errors(), RWKV_ERROR_ARGS, "rwkv_get_gpu_info: info is NULL");
    }
    memset(info, 0, sizeof(*info));
    struct rwkv_gpu_device_info device;
    char why[RWKV_ERROR_MESSAGE_SIZE];
    if (!rwkv_gpu_device_info(&device, why, sizeof(why))) {
        /* Not an error either: the reason is the message, the flags stay clear. */
        snprintf(err->message, sizeof(err->message), "%s", why);
        return false;
    }
    snprintf(info->name, sizeof(info->name), "%s", device.name);
    info->compute_major = (uint32_t) device.compute_major;
    info->compute_minor = (uint32_t) device.compute_minor;
    info->sm_count = (uint32_t) device.sm_count;
    info->clock_ghz = device.clock_ghz;
    info->memory_bytes = device.memory_bytes;
    info->memory_bandwidth_gbs = device.memory_bandwidth_gbs;
    info->fp32_tflops = device.fp32_tflops;
    return true;
}

/* ---- evaluation ---- */

static bool check_eval_args(struct rwkv_context * ctx, const uint32_t * tokens, size_t n_tokens) {
    if (n_tokens == 0) {
        return rwkv_fail(&ctx->error, ctx->print_errors, RWKV_ERROR_ARGS, "sequence_len is 0: nothing to evaluate");
    }
    if (n_tokens > PTRDIFF_MAX / sizeof(uint32_t)) {  /* no array is that long: a negative count cast to size_t */
        return rwkv_fail(&ctx->error, ctx->print_errors, RWKV_ERROR_ARGS,
            "sequence_len %zu is larger than any array (a negative count?)", n_tokens);
    }
    if (!tokens) {
        return rwkv_fail(&ctx->error, ctx->print_errors, RWKV_ERROR_ARGS, "tokens is NULL but sequence_len is %zu", n_tokens);
    }
    const size_t n_vocab = ctx->model->n_vocab;
    for (size_t i = 0; i < n_tokens; i++) {
        if (tokens[i] >= n_vocab) {
            return rwkv_fail(&ctx->error, ctx->print_errors, RWKV_ERROR_ARGS,
                "token %u at position %zu is out of range: the vocabulary has %zu tokens (0..%zu)",
                tokens[i], i, n_vocab, n_vocab - 1);
        }
    }
    return true;
}

static bool eval_checked(struct rwkv_context * ctx, const uint32_t * tokens, size_t n_tokens, size_t chunk_size,
                         const float * state_in, float * state_out, float * logits_out) {
    if (!ctx) {
        return rwkv_fail(rwkv_thread_error(), *rwkv_thread_print_errors(), RWKV_ERROR_ARGS, "ctx is NULL");
    }
    if (!check_eval_args(ctx, tokens, n_tokens)) {
        return false;
    }
    rwkv_error_clear(&ctx->error);
    return rwkv_eval_tokens(ctx, tokens, n_tokens, chunk_size, state_in, state_out, logits_out);
}

bool rwkv_eval(struct rwkv_context * ctx, uint32_t token, const float * state_in, float * state_out, float * logits_out) {
    return eval_checked(ctx, &token, 1, 1, state_in, state_out, logits_out);
}

bool rwkv_eval_sequence(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len,
                        const float * state_in, float * state_out, float * logits_out) {
    return eval_checked(ctx, tokens, sequence_len, 0, state_in, state_out, logits_out);
}

bool rwkv_eval_sequence_all_logits(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len,
                                   const float * state_in, float * state_out, float * logits_out) {
    if (!ctx) {
        return rwkv_fail(rwkv_thread_error(), *rwkv_thread_print_errors(), RWKV_ERROR_ARGS, "ctx is NULL");
    }
    if (!logits_out) {
        return rwkv_fail(&ctx->error, ctx->print_errors, RWKV_ERROR_ARGS, "rwkv_eval_sequence_all_logits: logits_out is NULL");
    }
    if (sequence_len > PTRDIFF_MAX / sizeof(float) / ctx->model->n_vocab) {  /* before the tokens are read */
        return rwkv_fail(&ctx->error, ctx->print_errors, RWKV_ERROR_ARGS,
            "rwkv_eval_sequence_all_logits: %zu x %zu logits are larger than any array", sequence_len, ctx->model->n_vocab);
    }
    if (!check_eval_args(ctx, tokens, sequence_len)) {
        return false;
    }
    rwkv_error_clear(&ctx->error);
    return rwkv_eval_tokens_all_logits(ctx, tokens, sequence_len, state_in, state_out, logits_out);
}

bool rwkv_eval_sequence_in_chunks(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len, size_t chunk_size,
                                  const float * state_in, float * state_out, float * logits_out) {
    if (ctx && chunk_size == 0) {
        return rwkv_fail(&ctx->error, ctx->print_errors, RWKV_ERROR_ARGS, "chunk_size is 0");
    }
    return eval_checked(ctx, tokens, sequence_len, chunk_size, state_in, state_out, logits_out);
}

/* ---- shapes ---- */

size_t rwkv_get_n_vocab(const struct rwkv_context * ctx) {
    return ctx ? ctx->model->n_vocab : 0;
}

size_t rwkv_get_n_embed(const struct rwkv_context * ctx) {
    return ctx ? ctx->model->n_embed : 0;
}

size_t rwkv_get_n_layer(const struct rwkv_context * ctx) {
    return ctx ? ctx->model->n_layer : 0;
}

size_t rwkv_get_state_len(const struct rwkv_context * ctx) {
    return ctx ? ctx->model->state_len : 0;
}

size_t rwkv_get_logits_len(const struct rwkv_context * ctx) {
    return ctx ? ctx->model->n_vocab : 0;
}

uint32_t rwkv_get_state_buffer_element_count(const struct rwkv_context * ctx) {
    return (uint32_t) rwkv_get_state_len(ctx);
}

uint32_t rwkv_get_logits_buffer_element_count(const struct rwkv_context * ctx) {
    return (uint32_t) rwkv_get_logits_len(ctx);
}

uint32_t rwkv_get_arch_version_major(const struct rwkv_context * ctx) {
    return ctx ? ctx->model->arch_major : 0;
}

uint32_t rwkv_get_arch_version_minor(const struct rwkv_context * ctx) {
    return ctx ? ctx->model->arch_minor : 0;
}

uint32_t rwkv_get_gpu_layer_count(const struct rwkv_context * ctx) {
    return ctx ? ctx->gpu_layer_count : 0;
}

void rwkv_init_state(const struct rwkv_context * ctx, float * state) {
    if (ctx && state) {
        rwkv_model_init_state(ctx->model, state);
    }
}

void rwkv_free(struct rwkv_context * ctx) {
    rwkv_context_free(ctx);
}

/* ---- the rest ---- */

struct rwkv_quantize_params rwkv_quantize_default_params(void) {
    struct rwkv_quantize_params params = {.format_name = "Q5_1"};
    return params;
}

bool rwkv_quantize_model_file_ex(const char * model_file_path_in, const char * model_file_path_out,
                                 const struct rwkv_quantize_params * params) {
    struct rwkv_error * err = rwkv_thread_error();
    const bool print = *rwkv_thread_print_errors();
    rwkv_error_clear(err);
    if (!model_file_path_in || !model_file_path_out || !params || !params->format_name) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "rwkv_quantize_model_file: %s is NULL",
            !model_file_path_in ? "model_file_path_in" : !model_file_path_out ? "model_file_path_out"
            : !params ? "params" : "format_name");
    }
    return rwkv_quantize_file(model_file_path_in, model_file_path_out, params, err, print);
}

bool rwkv_quantize_model_file(const char * model_file_path_in, const char * model_file_path_out, const char * format_name) {
    struct rwkv_quantize_params params = rwkv_quantize_default_params();
    params.format_name = format_name;
    return rwkv_quantize_model_file_ex(model_file_path_in, model_file_path_out, &params);
}

bool rwkv_state_save(struct rwkv_context * ctx, const char * path, const float * state) {
    if (!ctx || !path || !state) {
        struct rwkv_error * err = ctx ? &ctx->error : rwkv_thread_error();
        return rwkv_fail(err, ctx ? ctx->print_errors : *rwkv_thread_print_errors(), RWKV_ERROR_ARGS,
            "rwkv_state_save: %s is NULL", !ctx ? "ctx" : !path ? "path" : "state");
    }
    rwkv_error_clear(&ctx->error);
    return rwkv_state_file_save(ctx->model, path, state, &ctx->error, ctx->print_errors);
}

bool rwkv_state_load(struct rwkv_context * ctx, const char * path, float * state_out) {
    if (!ctx || !path || !state_out) {
        struct rwkv_error * err = ctx ? &ctx->error : rwkv_thread_error();
        return rwkv_fail(err, ctx ? ctx->print_errors : *rwkv_thread_print_errors(), RWKV_ERROR_ARGS,
            "rwkv_state_load: %s is NULL", !ctx ? "ctx" : !path ? "path" : "state_out");
    }
    rwkv_error_clear(&ctx->error);
    return rwkv_state_file_load(ctx->model, path, state_out, &ctx->error, ctx->print_errors);
}

uint64_t rwkv_get_model_file_hash(struct rwkv_context * ctx) {
    return ctx ? rwkv_model_file_hash(ctx->model) : 0;
}

const char * rwkv_get_system_info_string(void) {
    return rwkv_cpu_features_string();
}

const char * rwkv_get_version_string(void) {
    return VERSION_STRING;
}

uint32_t rwkv_get_version(void) {
    return RWKV_CPP_VERSION_MAJOR * 10000 + RWKV_CPP_VERSION_MINOR * 100 + RWKV_CPP_VERSION_PATCH;
}
