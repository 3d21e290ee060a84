/* gpu_none.c: gpu.h in a build without CUDA (RWKV_CUDA=OFF): no device, and every call that
 * would need one fails saying so. The CPU engine checks rwkv_gpu_available first. */
#include <stdio.h>
#include <string.h>
#include "gpu.h"

#define NO_CUDA "rwkv_cpp was built without CUDA (configure with -DRWKV_CUDA=ON for the GPU backend)"

static bool fail_no_cuda(struct rwkv_error * err, bool print) {
    return rwkv_fail(err, print, RWKV_ERROR_CTX | RWKV_ERROR_UNSUPPORTED, "%s", NO_CUDA);
}

bool rwkv_gpu_available(char * why, size_t why_size) {
    snprintf(why, why_size, "%s", NO_CUDA);
    return false;
}

bool rwkv_gpu_device_info(struct rwkv_gpu_device_info * info, char * why, size_t why_size) {
    memset(info, 0, sizeof(*info));
    return rwkv_gpu_available(why, why_size);
}

struct rwkv_gpu_model * rwkv_gpu_model_create(const struct rwkv_model * model, uint32_t n_layers, struct rwkv_error * err, bool print) {
    fail_no_cuda(err, print);
    return NULL;
}

void rwkv_gpu_model_retain(struct rwkv_gpu_model * gpu_model) {
}

void rwkv_gpu_model_release(struct rwkv_gpu_model * gpu_model) {
}

size_t rwkv_gpu_model_layer_count(const struct rwkv_gpu_model * gpu_model) {
    return 0;
}

bool rwkv_gpu_model_has_head(const struct rwkv_gpu_model * gpu_model) {
    return false;
}

size_t rwkv_gpu_model_bytes(const struct rwkv_gpu_model * gpu_model) {
    return 0;
}

struct rwkv_gpu_context * rwkv_gpu_context_create(struct rwkv_gpu_model * gpu_model, struct rwkv_error * err, bool print) {
    fail_no_cuda(err, print);
    return NULL;
}

void rwkv_gpu_context_free(struct rwkv_gpu_context * gpu_context) {
}

struct rwkv_gpu_model * rwkv_gpu_context_model(const struct rwkv_gpu_context * gpu_context) {
    return NULL;
}

bool rwkv_gpu_state_upload(struct rwkv_gpu_context * gpu_context, const float * state, struct rwkv_error * err, bool print) {
    return fail_no_cuda(err, print);
}

bool rwkv_gpu_state_download(struct rwkv_gpu_context * gpu_context, float * state, struct rwkv_error * err, bool print) {
    return fail_no_cuda(err, print);
}

bool rwkv_gpu_eval_layers(struct rwkv_gpu_context * gpu_context, float * x, size_t n_tokens, float * v_first,
                          float * logits, struct rwkv_error * err, bool print) {
    return fail_no_cuda(err, print);
}
