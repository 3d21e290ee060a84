/* gpu.h: the GPU backend as the CPU engine sees it. A gpu model is a device copy of the first
 * layers' weights (and the head when every layer is offloaded), uploaded once and shared, reference
 * counted, by every context of a model; a gpu context is one caller's stream, scratch memory,
 * device copy of the offloaded layers' state and CUDA graph. Built without CUDA (cuda/gpu_none.c),
 * rwkv_gpu_available says so and the other calls fail with that message. */
#ifndef RWKV_GPU_H
#define RWKV_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "errors.h"

struct rwkv_model;
struct rwkv_gpu_model;
struct rwkv_gpu_context;

/* Tokens a gpu context evaluates at once (its scratch memory is sized for this); longer calls
 * are split. */
#define RWKV_GPU_MAX_CHUNK 128

/* True when this build has a GPU backend and a usable device; otherwise why (a full sentence,
 * e.g. "rwkv_cpp was built without CUDA", "no CUDA device: ...") goes to why. */
bool rwkv_gpu_available(char * why, size_t why_size);

/* The device the backend uses and its peaks, for benchmarks. */
struct rwkv_gpu_device_info {
    int device;
    char name[256];
    int compute_major, compute_minor;
    int sm_count;
    double clock_ghz;              /* peak SM clock */
    uint64_t memory_bytes;
    double memory_bandwidth_gbs;   /* memory clock x 2 (double data rate) x bus width / 8 */
    double fp32_tflops;            /* SMs x clock x FP32 lanes per SM x 2 (an FMA is two FLOPs) */
};
bool rwkv_gpu_device_info(struct rwkv_gpu_device_info * info, char * why, size_t why_size);

/* Uploads layers [0, min(n_layers, n_layer)) of model, and ln_out + head when n_layers > n_layer
 * (rwkv.cpp's and llama.cpp's convention). model may be released afterwards: nothing on the
 * device points into it. NULL on error (no device, out of device memory, a head size over 1024). */
struct rwkv_gpu_model * rwkv_gpu_model_create(const struct rwkv_model * model, uint32_t n_layers,
                                              struct rwkv_error * err, bool print);
void rwkv_gpu_model_retain(struct rwkv_gpu_model * gpu_model);
/* Frees the device weights with the last reference. NULL does nothing. */
void rwkv_gpu_model_release(struct rwkv_gpu_model * gpu_model);
size_t rwkv_gpu_model_layer_count(const struct rwkv_gpu_model * gpu_model);
bool rwkv_gpu_model_has_head(const struct rwkv_gpu_model * gpu_model);
/* Device memory holding the weights. */
size_t rwkv_gpu_model_bytes(const struct rwkv_gpu_model * gpu_model);

/* A workspace on gpu_model (retained until rwkv_gpu_context_free). One call at a time per context. */
struct rwkv_gpu_context * rwkv_gpu_context_create(struct rwkv_gpu_model * gpu_model, struct rwkv_error * err, bool print);
/* NULL does nothing. */
void rwkv_gpu_context_free(struct rwkv_gpu_context * gpu_context);
/* The gpu model a context works on (for rwkv_clone_context: a new context on the same weights). */
struct rwkv_gpu_model * rwkv_gpu_context_model(const struct rwkv_gpu_context * gpu_context);

/* The offloaded layers' part of a flat host state (the first layer_count x state_len / n_layer
 * floats, rwkv.cpp's layout) to the device and back. Between the two the device copy is the one
 * rwkv_gpu_eval_layers reads and updates, so the state crosses the bus once per eval call, not
 * once per chunk. */
bool rwkv_gpu_state_upload(struct rwkv_gpu_context * gpu_context, const float * state, struct rwkv_error * err, bool print);
bool rwkv_gpu_state_download(struct rwkv_gpu_context * gpu_context, float * state, struct rwkv_error * err, bool print);

/* Runs the offloaded layers over n_tokens tokens. x: n_tokens x n_embed host floats, in: the
 * activations after ln0, out: after the last offloaded layer (when logits is given, the last
 * chunk of RWKV_GPU_MAX_CHUNK tokens' are left as they were). v_first (RWKV-7 only, else NULL):
 * n_tokens x n_embed host floats receiving layer 0's v, which the CPU layers that follow need;
 * NULL when every layer is offloaded. logits (NULL: none): n_vocab floats of the last token's
 * logits; only when the gpu model has the head. */
bool rwkv_gpu_eval_layers(struct rwkv_gpu_context * gpu_context, float * x, size_t n_tokens, float * v_first,
                          float * logits, struct rwkv_error * err, bool print);

#ifdef __cplusplus
}
#endif

#endif
