/* gpu.cu: gpu.h on CUDA: the device check and its peaks, the shared device model, per-context
 * workspaces, state transfers, and the eval call, which replays a CUDA graph for single tokens
 * (the whole per-token forward is one launch) and enqueues kernels directly for longer chunks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <new>
#include "forward.cuh"

#ifndef RWKV_CUDA_ARCHITECTURES
#define RWKV_CUDA_ARCHITECTURES "unknown"
#endif

static bool fail_cuda(cudaError_t status, const char * what, struct rwkv_error * err, bool print) {
    return rwkv_fail(err, print, RWKV_ERROR_GRAPH, "CUDA: %s failed: %s (%s)", what, cudaGetErrorString(status),
                     cudaGetErrorName(status));
}

/* ---- the device ---- */

__global__ void probe_kernel(void) {}

extern "C" bool rwkv_gpu_available(char * why, size_t why_size) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess || count == 0) {
        cudaGetLastError();
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        if (driver == 0) {
            snprintf(why, why_size, "no NVIDIA driver found (libcuda.so.1 / nvcuda.dll cannot be loaded)");
        } else if (driver < runtime) {
            snprintf(why, why_size, "the NVIDIA driver supports CUDA %d.%d, older than the CUDA %d.%d this build needs",
                     driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
        } else {
            snprintf(why, why_size, "no usable CUDA device: %s", status != cudaSuccess ? cudaGetErrorString(status) : "none found");
        }
        return false;
    }
    int device = 0;
    cudaGetDevice(&device);
    /* A device this build has no code for fails every launch: say so now. */
    cudaFuncAttributes attributes;
    status = cudaFuncGetAttributes(&attributes, probe_kernel);
    if (status != cudaSuccess) {
        cudaGetLastError();
        int major = 0, minor = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
        snprintf(why, why_size, "CUDA device %d (compute capability %d.%d) cannot run this build (CUDA architectures %s): %s",
                 device, major, minor, RWKV_CUDA_ARCHITECTURES, cudaGetErrorString(status));
        return false;
    }
    if (why_size > 0) {
        why[0] = '\0';
    }
    return true;
}

/* FP32 lanes per SM by compute capability (CUDA programming guide, arithmetic instructions). */
static int fp32_lanes_per_sm(int major, int minor) {
    if (major < 8 || (major == 8 && minor == 0)) {
        return 64;  /* 7.x, 8.0 (A100) */
    }
    return 128;     /* 8.6, 8.7, 8.9, 9.0, 10.x, 12.x */
}

extern "C" bool rwkv_gpu_device_info(struct rwkv_gpu_device_info * info, char * why, size_t why_size) {
    memset(info, 0, sizeof(*info));
    if (!rwkv_gpu_available(why, why_size)) {
        return false;
    }
    cudaGetDevice(&info->device);
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, info->device) != cudaSuccess) {
        cudaGetLastError();
        snprintf(why, why_size, "cannot read the properties of CUDA device %d", info->device);
        return false;
    }
    /* Clocks are attributes: CUDA 13 dropped them from cudaDeviceProp. */
    int clock_khz = 0, memory_clock_khz = 0, bus_width_bits = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, info->device);
    cudaDeviceGetAttribute(&memory_clock_khz, cudaDevAttrMemoryClockRate, info->device);
    cudaDeviceGetAttribute(&bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, info->device);
    snprintf(info->name, sizeof(info->name), "%s", prop.name);
    info->compute_major = prop.major;
    info->compute_minor = prop.minor;
    info->sm_count = prop.multiProcessorCount;
    info->clock_ghz = clock_khz * 1e-6;
    info->memory_bytes = prop.totalGlobalMem;
    info->memory_bandwidth_gbs = 2.0 * memory_clock_khz * 1e3 * (bus_width_bits / 8.0) * 1e-9;
    info->fp32_tflops = info->sm_count * info->clock_ghz * 1e9 * fp32_lanes_per_sm(prop.major, prop.minor) * 2.0 * 1e-12;
    return true;
}

/* ---- the model ---- */

extern "C" struct rwkv_gpu_model * rwkv_cuda_gpu_model_create(const struct rwkv_cuda_weights * host, struct rwkv_error * err, bool print) {
    char why[RWKV_ERROR_MESSAGE_SIZE];
    if (!rwkv_gpu_available(why, sizeof(why))) {
        rwkv_fail(err, print, (enum rwkv_error_flags) (RWKV_ERROR_CTX | RWKV_ERROR_UNSUPPORTED), "%s", why);
        return NULL;
    }
    if (host->arch_major < 4 || host->arch_major > 7) {
        rwkv_fail(err, print, (enum rwkv_error_flags) (RWKV_ERROR_MODEL | RWKV_ERROR_UNSUPPORTED),
                  "CUDA: RWKV-%u is not supported", host->arch_major);
        return NULL;
    }
    if (host->arch_major >= 5 && (host->head_size == 0 || host->head_size > 1024)) {
        rwkv_fail(err, print, (enum rwkv_error_flags) (RWKV_ERROR_MODEL | RWKV_ERROR_UNSUPPORTED),
                  "CUDA: head size %zu is not supported (1 to 1024: a thread block per head)", host->head_size);
        return NULL;
    }
    struct rwkv_gpu_model * model = (struct rwkv_gpu_model *) calloc(1, sizeof(*model));
    if (!model) {
        rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory allocating the GPU model");
        return NULL;
    }
    new (&model->reference_count) std::atomic<int>(1);
    cudaGetDevice(&model->device);
    if (!rwkv_cuda_weights_upload(host, &model->weights, &model->arena, &model->arena_bytes, err, print)) {
        free(model);
        return NULL;
    }
    return model;
}

extern "C" void rwkv_gpu_model_retain(struct rwkv_gpu_model * model) {
    model->reference_count.fetch_add(1);
}

extern "C" void rwkv_gpu_model_release(struct rwkv_gpu_model * model) {
    if (model && model->reference_count.fetch_sub(1) == 1) {
        cudaSetDevice(model->device);
        rwkv_cuda_weights_free(&model->weights, model->arena);
        free(model);
    }
}

extern "C" size_t rwkv_gpu_model_layer_count(const struct rwkv_gpu_model * model) {
    return model->weights.n_gpu_layers;
}

extern "C" bool rwkv_gpu_model_has_head(const struct rwkv_gpu_model * model) {
    return model->weights.has_head;
}

extern "C" size_t rwkv_gpu_model_bytes(const struct rwkv_gpu_model * model) {
    return model->arena_bytes;
}

/* ---- contexts ---- */

extern "C" struct rwkv_gpu_context * rwkv_gpu_context_create(struct rwkv_gpu_model * model, struct rwkv_error * err, bool print) {
    const struct rwkv_cuda_weights * w = &model->weights;
    const size_t C = w->n_embed, T = RWKV_GPU_MAX_CHUNK;
    struct rwkv_gpu_context * ctx = (struct rwkv_gpu_context *) calloc(1, sizeof(*ctx));
    if (!ctx) {
        rwkv_fail(err, print, (enum rwkv_error_flags) (RWKV_ERROR_CTX | RWKV_ERROR_ALLOC), "out of memory allocating a GPU context");
        return NULL;
    }
    cudaSetDevice(model->device);
    ctx->model = model;
    rwkv_gpu_model_retain(model);
    cudaError_t status = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
    if (status != cudaSuccess) {
        fail_cuda(status, "creating a stream", err, print);
        ctx->stream = NULL;
        rwkv_gpu_context_free(ctx);
        return NULL;
    }
    const size_t state_floats = w->n_gpu_layers * w->layer_floats;
    const size_t n_floats = GPU_BUFFER_COUNT * T * C + T * w->n_ffn + T * 5 * w->lora_max + state_floats + w->n_vocab;
    ctx->device_memory = rwkv_cuda_malloc(n_floats * sizeof(float), err, print);
    const size_t pinned_floats = 2 * T * C + w->n_vocab;
    status = cudaMallocHost(&ctx->pinned, pinned_floats * sizeof(float));
    if (!ctx->device_memory || status != cudaSuccess) {
        if (status != cudaSuccess) {
            cudaGetLastError();
            ctx->pinned = NULL;
            rwkv_fail(err, print, (enum rwkv_error_flags) (RWKV_ERROR_CTX | RWKV_ERROR_ALLOC),
                      "CUDA: cannot allocate %zu KiB of page-locked host memory: %s", pinned_floats * sizeof(float) >> 10,
                      cudaGetErrorString(status));
        }
        rwkv_gpu_context_free(ctx);
        return NULL;
    }
    float * next = (float *) ctx->device_memory;
    for (int i = 0; i < GPU_BUFFER_COUNT; i++) {
        ctx->buffers[i] = next;
        next += T * C;
    }
    ctx->ffn_hidden = next;
    next += T * w->n_ffn;
    ctx->lora_hidden = next;
    next += T * 5 * w->lora_max;
    ctx->state = next;
    next += state_floats;
    ctx->logits = next;
    ctx->host_x = (float *) ctx->pinned;
    ctx->host_v_first = ctx->host_x + T * C;
    ctx->host_logits = ctx->host_v_first + T * C;
    ctx->copy_v_first = w->arch_major == 7 && w->n_gpu_layers < w->n_layer;
    const char * graphs = getenv("RWKV_CUDA_GRAPHS");  /* "0": launch kernel by kernel (debugging, profiling) */
    ctx->use_graphs = !(graphs && strcmp(graphs, "0") == 0);
    return ctx;
}

extern "C" void rwkv_gpu_context_free(struct rwkv_gpu_context * ctx) {
    if (!ctx) {
        return;
    }
    cudaSetDevice(ctx->model->device);
    for (int i = 0; i < 2; i++) {
        if (ctx->graphs[i]) {
            cudaGraphExecDestroy(ctx->graphs[i]);
        }
    }
    if (ctx->stream) {
        cudaStreamSynchronize(ctx->stream);
        cudaStreamDestroy(ctx->stream);
    }
    rwkv_cuda_free(ctx->device_memory);
    if (ctx->pinned) {
        cudaFreeHost(ctx->pinned);
    }
    rwkv_gpu_model_release(ctx->model);
    free(ctx);
}

extern "C" struct rwkv_gpu_model * rwkv_gpu_context_model(const struct rwkv_gpu_context * ctx) {
    return ctx->model;
}

/* ---- state ---- */

static size_t state_bytes(const struct rwkv_gpu_context * ctx) {
    return ctx->model->weights.n_gpu_layers * ctx->model->weights.layer_floats * sizeof(float);
}

extern "C" bool rwkv_gpu_state_upload(struct rwkv_gpu_context * ctx, const float * state, struct rwkv_error * err, bool print) {
    cudaSetDevice(ctx->model->device);
    const cudaError_t status = cudaMemcpyAsync(ctx->state, state, state_bytes(ctx), cudaMemcpyHostToDevice, ctx->stream);
    if (status != cudaSuccess) {
        return fail_cuda(status, "copying the state to the device", err, print);
    }
    return rwkv_cuda_synchronize(ctx->stream, err, print);
}

extern "C" bool rwkv_gpu_state_download(struct rwkv_gpu_context * ctx, float * state, struct rwkv_error * err, bool print) {
    cudaSetDevice(ctx->model->device);
    const cudaError_t status = cudaMemcpyAsync(state, ctx->state, state_bytes(ctx), cudaMemcpyDeviceToHost, ctx->stream);
    if (status != cudaSuccess) {
        return fail_cuda(status, "copying the state from the device", err, print);
    }
    return rwkv_cuda_synchronize(ctx->stream, err, print);
}

/* ---- evaluation ---- */

/* The one-token forward as a graph, captured on first use. False (graphs then stay off for this
 * context, and the error is cleared) when capture is not possible. */
static bool one_token_graph(struct rwkv_gpu_context * ctx, bool with_logits, cudaGraphExec_t * out) {
    cudaGraphExec_t * exec = &ctx->graphs[with_logits ? 1 : 0];
    if (*exec) {
        *out = *exec;
        return true;
    }
    cudaGraph_t graph = NULL;
    cudaError_t status = cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal);
    if (status == cudaSuccess) {
        rwkv_gpu_enqueue_chunk(ctx, 1, with_logits);
        status = cudaStreamEndCapture(ctx->stream, &graph);
    }
    if (status == cudaSuccess) {
        status = cudaGraphInstantiate(exec, graph, 0);
    }
    if (graph) {
        cudaGraphDestroy(graph);
    }
    if (status != cudaSuccess) {
        cudaGetLastError();
        *exec = NULL;
        ctx->use_graphs = false;
        return false;
    }
    *out = *exec;
    return true;
}

extern "C" bool rwkv_gpu_eval_layers(struct rwkv_gpu_context * ctx, float * x, size_t n_tokens, float * v_first,
                                     float * logits, struct rwkv_error * err, bool print) {
    const struct rwkv_cuda_weights * w = &ctx->model->weights;
    const size_t C = w->n_embed;
    if (logits && !w->has_head) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "GPU: logits asked of %zu offloaded layers without the head", w->n_gpu_layers);
    }
    if (ctx->copy_v_first && !v_first) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "GPU: RWKV-7 with CPU layers after the GPU ones needs v_first");
    }
    cudaSetDevice(ctx->model->device);
    for (size_t done = 0; done < n_tokens;) {
        const size_t T = n_tokens - done < RWKV_GPU_MAX_CHUNK ? n_tokens - done : RWKV_GPU_MAX_CHUNK;
        const bool with_logits = logits && done + T == n_tokens;
        memcpy(ctx->host_x, x + done * C, T * C * sizeof(float));
        cudaGraphExec_t graph = NULL;
        if (T == 1 && ctx->use_graphs && one_token_graph(ctx, with_logits, &graph)) {
            const cudaError_t status = cudaGraphLaunch(graph, ctx->stream);
            if (status != cudaSuccess) {
                return fail_cuda(status, "launching the one-token graph", err, print);
            }
        } else {
            rwkv_gpu_enqueue_chunk(ctx, T, with_logits);
        }
        if (!rwkv_cuda_synchronize(ctx->stream, err, print)) {
            return false;
        }
        if (!with_logits) {
            memcpy(x + done * C, ctx->host_x, T * C * sizeof(float));
        }
        if (ctx->copy_v_first) {
            memcpy(v_first + done * C, ctx->host_v_first, T * C * sizeof(float));
        }
        if (with_logits) {
            memcpy(logits, ctx->host_logits, w->n_vocab * sizeof(float));
        }
        done += T;
    }
    return true;
}
