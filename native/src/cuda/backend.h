/* backend.h: what the CUDA side offers the rest of the library and test_cuda.c, in plain C:
 * the device-side model (weights described by the same struct on the host before upload and
 * on the device after), device memory helpers, and one launcher per kernel. Launchers only
 * enqueue work on a stream; rwkv_cuda_check reports the first failure. */
#ifndef RWKV_CUDA_BACKEND_H
#define RWKV_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "errors.h"

/* cudaStream_t, spelled so that C files need no CUDA header. */
typedef struct CUstream_st * rwkv_cuda_stream;

/* A weight matrix [n_out][n_in] in any file type, ggml blocks unchanged. On the device each row
 * starts on a 16-byte boundary (row_stride >= row_bytes), so float rows load as 16-byte vectors. */
struct rwkv_cuda_matrix {
    uint32_t type;
    const uint8_t * data;
    size_t n_in;
    size_t n_out;
    size_t row_bytes;
    size_t row_stride;
};

/* One layer's parameters, field for field as struct rwkv_layer (model.h, which C++ cannot
 * include: C11 atomics); unused fields NULL / empty. */
struct rwkv_cuda_layer {
    const float * ln1_weight, * ln1_bias, * ln2_weight, * ln2_bias;
    const float * att_mix_k, * att_mix_v, * att_mix_r, * att_mix_g;
    const float * att_time_first, * att_time_decay, * att_ln_x_weight, * att_ln_x_bias;
    const float * att_maa_x;
    const float * att_maa_wkvrg;  /* 5 x C */
    struct rwkv_cuda_matrix att_maa_w1, att_maa_w2, att_decay_w1, att_decay_w2;
    const float * att_x_rwkvag;   /* 6 x C */
    const float * att_w0, * att_a0, * att_v0, * att_k_k, * att_k_a, * att_r_k;
    struct rwkv_cuda_matrix att_w1, att_w2, att_a1, att_a2, att_v1, att_v2, att_g1, att_g2;
    struct rwkv_cuda_matrix att_key, att_value, att_receptance, att_gate, att_output;
    const float * ffn_mix_k, * ffn_mix_r;
    struct rwkv_cuda_matrix ffn_key, ffn_value, ffn_receptance;
};

/* The offloaded part of a model: layers [0, n_gpu_layers), and the head when has_head. */
struct rwkv_cuda_weights {
    uint32_t arch_major, arch_minor;
    size_t n_vocab, n_embed, n_ffn, head_count, head_size, lora_max;
    size_t n_layer;       /* of the whole model */
    size_t n_gpu_layers;
    size_t layer_floats;  /* state floats per layer */
    bool has_head;
    struct rwkv_cuda_layer * layers;  /* n_gpu_layers, host memory (pointers inside: host or device) */
    const float * ln_out_weight, * ln_out_bias;
    struct rwkv_cuda_matrix head;
};

/* Copies the weights described by host (host pointers) to one device allocation; device gets the
 * same description with device pointers (device->layers is malloc'ed). *arena and *arena_bytes:
 * the allocation. False on error. */
bool rwkv_cuda_weights_upload(const struct rwkv_cuda_weights * host, struct rwkv_cuda_weights * device,
                              void ** arena, size_t * arena_bytes, struct rwkv_error * err, bool print);
void rwkv_cuda_weights_free(struct rwkv_cuda_weights * device, void * arena);

/* gpu.cu: a gpu model (gpu.h) from a host description, which gpu_model.c builds from a loaded
 * struct rwkv_model. */
struct rwkv_gpu_model;
struct rwkv_gpu_model * rwkv_cuda_gpu_model_create(const struct rwkv_cuda_weights * host, struct rwkv_error * err, bool print);

/* Row stride of a matrix on the device: row_bytes rounded up to 16 bytes. */
size_t rwkv_cuda_row_stride(size_t row_bytes);
/* n_rows rows of row_bytes bytes, src_stride apart on the host, to dst_stride apart on the device. */
bool rwkv_cuda_upload_rows(void * dst, size_t dst_stride, const void * src, size_t src_stride, size_t row_bytes,
                           size_t n_rows, struct rwkv_error * err, bool print);

/* ---- device memory and errors ---- */

/* The CUDA error pending on this thread (launch failures included), as an rwkv error naming `what`. */
bool rwkv_cuda_check(const char * what, struct rwkv_error * err, bool print);
void * rwkv_cuda_malloc(size_t n_bytes, struct rwkv_error * err, bool print);
void rwkv_cuda_free(void * device_pointer);
bool rwkv_cuda_upload(void * device_dst, const void * host_src, size_t n_bytes, struct rwkv_error * err, bool print);
bool rwkv_cuda_download(void * host_dst, const void * device_src, size_t n_bytes, struct rwkv_error * err, bool print);
/* Waits for the stream (NULL: the default stream) and reports any error of its work. */
bool rwkv_cuda_synchronize(rwkv_cuda_stream stream, struct rwkv_error * err, bool print);

/* ---- kernels ---- */

/* What a matrix product does with its result acc for output row `row` of token t. */
enum rwkv_cuda_epilogue_kind {
    RWKV_EPILOGUE_STORE,     /* y = acc */
    RWKV_EPILOGUE_TANH,      /* y = tanh(acc) */
    RWKV_EPILOGUE_SIGMOID,   /* y = sigmoid(acc) */
    RWKV_EPILOGUE_SILU,      /* y = acc sigmoid(acc) */
    RWKV_EPILOGUE_RELU_SQ,   /* y = max(acc, 0)^2 */
    RWKV_EPILOGUE_ADD,       /* y += acc (residual) */
    RWKV_EPILOGUE_MUL_ADD,   /* y += acc * aux[t * aux_stride + row] (gated residual) */
    RWKV_EPILOGUE_DECAY_V6,  /* y = exp(-exp(aux[t * aux_stride + row] + acc)) */
};

struct rwkv_cuda_epilogue {
    enum rwkv_cuda_epilogue_kind kind;
    const float * aux;
    size_t aux_stride;
};

/* y[t * y_stride + r] = epilogue(row (row_begin + r) of m . x[t * x_stride ...]) for r < n_rows,
 * t < T. Weights of any type, widened or dequantized in the kernel; activations and sums in
 * float32. T == 1: one warp per row; T > 1: a tiled kernel reusing each weight for 32 tokens. */
void rwkv_cuda_matmul(rwkv_cuda_stream stream, const struct rwkv_cuda_matrix * m, size_t row_begin, size_t n_rows,
                      const float * x, size_t x_stride, size_t T, float * y, size_t y_stride,
                      struct rwkv_cuda_epilogue epilogue);

/* Normalizes each group of group_size floats of each of T rows of C floats (statistics in double,
 * as ops.c), then per-channel weight and bias. Layer norm: group_size C, eps 1e-5; in place allowed. */
void rwkv_cuda_norm(rwkv_cuda_stream stream, const float * x, const float * weight, const float * bias,
                    size_t T, size_t C, size_t group_size, float eps, float * out);

/* Token shift fused with the mixes: sx[t] = xx[t - 1] (the shift state for t = 0; the state then
 * keeps xx[T - 1]). Lerp (v4, v5): out_j = xx mix_j + sx (1 - mix_j). Otherwise (v6, v7):
 * delta = sx - xx, out_j = xx + delta mix_j, and delta is stored when delta_out is not NULL. */
#define RWKV_CUDA_MAX_MIX 6
struct rwkv_cuda_mix {
    bool lerp;
    int n;
    const float * mix[RWKV_CUDA_MAX_MIX];
    float * out[RWKV_CUDA_MAX_MIX];
    float * delta_out;
};
void rwkv_cuda_token_mix(rwkv_cuda_stream stream, const float * xx, float * shift_state, size_t T, size_t C,
                         const struct rwkv_cuda_mix * mix);

/* v6's data-dependent mixes: out_j = xx + delta (m_j + maa_j) for j < 5, m_j T x C, maa 5 x C. */
void rwkv_cuda_mix_v6(rwkv_cuda_stream stream, const float * xx, const float * delta, float * const m[5],
                      const float * maa_wkvrg, size_t T, size_t C, float * const out[5]);

/* v4, per channel over T tokens: wkv (wkv.c's rwkv_wkv4) times r; updates aa, bb, pp. */
void rwkv_cuda_wkv4(rwkv_cuda_stream stream, size_t T, size_t C, const float * u, const float * w,
                    const float * k, const float * v, const float * r, float * aa, float * bb, float * pp, float * out);

/* v5 and v6, per head over T tokens: rwkv_wkv5, then the group norm of each head (ln_x, eps) and,
 * when gate is not NULL, times gate. w is read at t * w_stride (0: one decay for all tokens). */
void rwkv_cuda_wkv5(rwkv_cuda_stream stream, size_t T, size_t H, size_t N, const float * r, const float * k,
                    const float * v, const float * u, const float * w, size_t w_stride, float * S,
                    const float * ln_weight, const float * ln_bias, float eps, const float * gate, float * out);

/* v7, per head over T tokens, everything between the projections and the output matrix (eval.c's
 * time_mix_v7): a = sigmoid(a0 + a), kk = normalize(k k_k), k *= 1 + (a - 1) k_a,
 * w = exp(-e^-0.5 sigmoid(w0 + w)), v mixed with v_first (layers > 0, v_gate given) or stored as
 * v_first (layer 0, v_gate NULL), rwkv_wkv7 with a = -kk, b = kk a, group norm, the bonus
 * (r . k r_k) v, times g. */
struct rwkv_cuda_wkv7_args {
    size_t T, H, N;
    const float * r, * w, * k, * v, * a, * g;  /* T x C projections (w, a raw; g after its lora) */
    const float * v_gate;                      /* T x C, NULL on layer 0 */
    float * v_first;                           /* T x C: read, or written on layer 0 */
    const float * w0, * a0, * v0, * k_k, * k_a, * r_k, * ln_weight, * ln_bias;
    float eps;
    float * S;
    float * out;
};
void rwkv_cuda_wkv7(rwkv_cuda_stream stream, const struct rwkv_cuda_wkv7_args * args);

#ifdef __cplusplus
}
#endif

#endif
