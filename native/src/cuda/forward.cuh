/* forward.cuh: the device model and a context's workspace, shared by forward.cu (which enqueues
 * the layers) and gpu.cu (the gpu.h calls: lifetime, transfers, CUDA graphs). */
#ifndef RWKV_CUDA_FORWARD_CUH
#define RWKV_CUDA_FORWARD_CUH

#include <atomic>
#include "common.cuh"
#include "gpu.h"

struct rwkv_gpu_model {
    std::atomic<int> reference_count;
    int device;
    struct rwkv_cuda_weights weights;  /* device pointers */
    void * arena;
    size_t arena_bytes;
};

/* Activation buffers of RWKV_GPU_MAX_CHUNK x n_embed floats, named as eval.c names its own. */
enum rwkv_gpu_buffer {
    GPU_X, GPU_XX, GPU_SX,
    GPU_IN0, GPU_IN1, GPU_IN2, GPU_IN3, GPU_IN4, GPU_IN5,
    GPU_R, GPU_W, GPU_K, GPU_V, GPU_A, GPU_G,
    GPU_V_FIRST, GPU_WKV,
    GPU_MIX0, GPU_MIX1, GPU_MIX2, GPU_MIX3, GPU_MIX4,
    GPU_BUFFER_COUNT
};

struct rwkv_gpu_context {
    struct rwkv_gpu_model * model;
    cudaStream_t stream;
    void * device_memory;  /* one allocation behind the device pointers below */
    float * buffers[GPU_BUFFER_COUNT];
    float * ffn_hidden;    /* RWKV_GPU_MAX_CHUNK x n_ffn */
    float * lora_hidden;   /* RWKV_GPU_MAX_CHUNK x 5 x lora_max */
    float * state;         /* n_gpu_layers x layer_floats */
    float * logits;        /* n_vocab */
    void * pinned;         /* one page-locked host allocation behind the three below */
    float * host_x;        /* RWKV_GPU_MAX_CHUNK x n_embed */
    float * host_v_first;  /* RWKV_GPU_MAX_CHUNK x n_embed */
    float * host_logits;   /* n_vocab */
    bool copy_v_first;     /* v7 with CPU layers after the GPU ones: they need layer 0's v */
    bool use_graphs;
    cudaGraphExec_t graphs[2];  /* one token, [without, with] logits */
};

/* Enqueues one chunk of T tokens on the context's stream: host_x to the device, every offloaded
 * layer, the head on the last token when with_logits, and the results back to the pinned buffers.
 * Capturable in a CUDA graph: launches and asynchronous copies only. */
void rwkv_gpu_enqueue_chunk(struct rwkv_gpu_context * ctx, size_t T, bool with_logits);

#endif
