/* rwkv.h: the public C API of rwkv_cpp, the only header a host needs.
 *
 * Drop-in compatible with rwkv.cpp's rwkv.h (same function names, signatures,
 * error flags and flat state layout): a host built against rwkv.cpp works by
 * swapping the library file. Functions marked "addition" do not exist in rwkv.cpp.
 */
#ifndef RWKV_H
#define RWKV_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#if defined(_WIN32)
#    ifdef RWKV_BUILD
#        define RWKV_API __declspec(dllexport)
#    else
#        define RWKV_API __declspec(dllimport)
#    endif
#else
#    define RWKV_API __attribute__((visibility("default")))
#endif

/* 'ggmf' in hex. */
#define RWKV_FILE_MAGIC 0x67676d66

#define RWKV_FILE_VERSION_0 100
#define RWKV_FILE_VERSION_1 101
#define RWKV_FILE_VERSION_MIN RWKV_FILE_VERSION_0
#define RWKV_FILE_VERSION_MAX RWKV_FILE_VERSION_1
#define RWKV_FILE_VERSION RWKV_FILE_VERSION_MAX

/* Version of this library (addition). */
#define RWKV_CPP_VERSION_MAJOR 0
#define RWKV_CPP_VERSION_MINOR 1
#define RWKV_CPP_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* Errors are a category OR-ed with a detail; e.g. a missing file is
 * RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN = 514. */
enum rwkv_error_flags {
    RWKV_ERROR_NONE = 0,

    RWKV_ERROR_ARGS = 1 << 8,
    RWKV_ERROR_FILE = 2 << 8,
    RWKV_ERROR_MODEL = 3 << 8,
    RWKV_ERROR_MODEL_PARAMS = 4 << 8,
    RWKV_ERROR_GRAPH = 5 << 8,
    RWKV_ERROR_CTX = 6 << 8,

    RWKV_ERROR_ALLOC = 1,
    RWKV_ERROR_FILE_OPEN = 2,
    RWKV_ERROR_FILE_STAT = 3,
    RWKV_ERROR_FILE_READ = 4,
    RWKV_ERROR_FILE_WRITE = 5,
    RWKV_ERROR_FILE_MAGIC = 6,
    RWKV_ERROR_FILE_VERSION = 7,
    RWKV_ERROR_DATA_TYPE = 8,
    RWKV_ERROR_UNSUPPORTED = 9,
    RWKV_ERROR_SHAPE = 10,
    RWKV_ERROR_DIMENSION = 11,
    RWKV_ERROR_KEY = 12,
    RWKV_ERROR_DATA = 13,
    RWKV_ERROR_PARAM_MISSING = 14
};

/* One caller's handle on a loaded model: scratch memory, threads and last error.
 * The weights are shared by every context cloned from it. One eval at a time per
 * context; different contexts may evaluate concurrently. */
struct rwkv_context;

/* Whether errors are printed to stderr as they happen (default: true).
 * ctx NULL: the setting for rwkv_init_from_file / rwkv_quantize_model_file on
 * this thread, and the default for new contexts. */
RWKV_API void rwkv_set_print_errors(struct rwkv_context * ctx, bool print_errors);
RWKV_API bool rwkv_get_print_errors(const struct rwkv_context * ctx);

/* Returns and clears the error flags of ctx; ctx NULL: those of the last failed
 * rwkv_init_from_file / rwkv_quantize_model_file on this thread. */
RWKV_API enum rwkv_error_flags rwkv_get_last_error(struct rwkv_context * ctx);

/* Loads a model file. n_threads 0 means "pick for me". n_gpu_layers: the first N
 * layers (then the head, when N > n_layer) go to the GPU; a build without GPU
 * support loads everything on the CPU and says so in rwkv_get_last_error_message.
 * Returns NULL on error. */
RWKV_API struct rwkv_context * rwkv_init_from_file(const char * model_file_path, uint32_t n_threads, uint32_t n_gpu_layers);

/* A new context sharing ctx's weights (never copied). Free it with rwkv_free. */
RWKV_API struct rwkv_context * rwkv_clone_context(struct rwkv_context * ctx, uint32_t n_threads);

/* Older rwkv.cpp hosts: offload the first n layers. Without GPU support this is a
 * successful no-op, noted in the error message. */
RWKV_API bool rwkv_gpu_offload_layers(struct rwkv_context * ctx, uint32_t n_layers);

/* Evaluates one token. state_in NULL: the fresh state. state_out / logits_out NULL:
 * not written (logits_out NULL also skips the head). state_in may equal state_out. */
RWKV_API bool rwkv_eval(struct rwkv_context * ctx, uint32_t token, const float * state_in, float * state_out, float * logits_out);

/* Evaluates many tokens; logits_out receives the logits after the last one.
 * Equal to calling rwkv_eval for each token in turn. */
RWKV_API bool rwkv_eval_sequence(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len, const float * state_in, float * state_out, float * logits_out);

/* rwkv_eval_sequence in pieces of at most chunk_size tokens (bounded scratch memory). */
RWKV_API bool rwkv_eval_sequence_in_chunks(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len, size_t chunk_size, const float * state_in, float * state_out, float * logits_out);

RWKV_API size_t rwkv_get_n_vocab(const struct rwkv_context * ctx);
RWKV_API size_t rwkv_get_n_embed(const struct rwkv_context * ctx);
RWKV_API size_t rwkv_get_n_layer(const struct rwkv_context * ctx);
/* Number of floats in the state buffer / logits buffer. */
RWKV_API size_t rwkv_get_state_len(const struct rwkv_context * ctx);
RWKV_API size_t rwkv_get_logits_len(const struct rwkv_context * ctx);

/* Writes the fresh state (what state_in == NULL means) into state. */
RWKV_API void rwkv_init_state(const struct rwkv_context * ctx, float * state);

/* Frees ctx; the weights go when the last context sharing them is freed.
 * rwkv_free(NULL) does nothing. */
RWKV_API void rwkv_free(struct rwkv_context * ctx);

/* Quantizes an FP32/FP16 model file to Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0. */
RWKV_API bool rwkv_quantize_model_file(const char * model_file_path_in, const char * model_file_path_out, const char * format_name);

/* Which CPU features the library detected and uses. */
RWKV_API const char * rwkv_get_system_info_string(void);

/* Deprecated rwkv.cpp names, kept for old hosts. */
RWKV_API uint32_t rwkv_get_state_buffer_element_count(const struct rwkv_context * ctx);
RWKV_API uint32_t rwkv_get_logits_buffer_element_count(const struct rwkv_context * ctx);

/* ---- Additions ---- */

/* Human-readable message for the last error of ctx, naming the cause and the
 * offending value ("" when none). ctx NULL: the last failed init/quantize on this
 * thread. The pointer stays valid until the next call on the same ctx/thread.
 * Unlike rwkv_get_last_error this does not clear anything. */
RWKV_API const char * rwkv_get_last_error_message(const struct rwkv_context * ctx);

/* "MAJOR.MINOR.PATCH" and the same as one number MAJOR*10000 + MINOR*100 + PATCH. */
RWKV_API const char * rwkv_get_version_string(void);
RWKV_API uint32_t rwkv_get_version(void);

/* Architecture of the loaded model: major 4, 5, 6 or 7; minor 0, 1 or 2 (v5.1, v5.2). */
RWKV_API uint32_t rwkv_get_arch_version_major(const struct rwkv_context * ctx);
RWKV_API uint32_t rwkv_get_arch_version_minor(const struct rwkv_context * ctx);

/* Number of GPU layers actually in use (0 on a CPU-only build). */
RWKV_API uint32_t rwkv_get_gpu_layer_count(const struct rwkv_context * ctx);

/* Options of rwkv_quantize_model_file_ex. Get the defaults from
 * rwkv_quantize_default_params() and change what you need: new fields are only ever
 * appended, so code written against this version keeps working. */
struct rwkv_quantize_params {
    /* "Q4_0", "Q4_1", "Q5_0", "Q5_1" or "Q8_0": the type of the 2-D matrices. */
    const char * format_name;
    /* NULL (default): emb.weight and head.weight keep their type, as rwkv.cpp does.
     * A format name: head.weight is quantized to it too (its row length must be a
     * multiple of 32). */
    const char * head_format_name;
    /* Called after each tensor with the count done and the total; may be NULL. */
    void (*progress)(void * user_data, size_t n_done, size_t n_total);
    void * user_data;
};

RWKV_API struct rwkv_quantize_params rwkv_quantize_default_params(void);

/* rwkv_quantize_model_file with options. The output is written to a temporary file next
 * to it and renamed at the end: on any error nothing is left at model_file_path_out. */
RWKV_API bool rwkv_quantize_model_file_ex(const char * model_file_path_in, const char * model_file_path_out,
                                          const struct rwkv_quantize_params * params);

#ifdef __cplusplus
}
#endif

#endif
