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

/* rwkv_eval_sequence that also gives the logits after every token: logits_out holds
 * sequence_len x n_vocab floats (for perplexity and scoring). */
RWKV_API bool rwkv_eval_sequence_all_logits(struct rwkv_context * ctx, const uint32_t * tokens, size_t sequence_len,
                                            const float * state_in, float * state_out, float * logits_out);

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

/* ---- State files (addition) ----
 * A state saved to disk with a header naming the model it belongs to: magic "RWKVSTAT",
 * format version, architecture, n_vocab / n_embed / n_layer, state length and a 64-bit hash
 * of the model file's bytes, then the state as little-endian float32 and a checksum.
 * Loading refuses a state of another model (different shape or file hash) with a clear
 * message. Saving writes a temporary file and renames it. */
RWKV_API bool rwkv_state_save(struct rwkv_context * ctx, const char * path, const float * state);
RWKV_API bool rwkv_state_load(struct rwkv_context * ctx, const char * path, float * state_out);
/* The 64-bit hash of the model file stored in state files (computed once per model). */
RWKV_API uint64_t rwkv_get_model_file_hash(struct rwkv_context * ctx);

/* ---- Sampling (addition) ----
 *
 * A sampler picks the next token from the logits rwkv_eval wrote. Per call it works on a
 * copy of the logits, in this order:
 *
 *   1. logit bias      logit[t] += bias[t] (rwkv_sampler_set_logit_bias; -INFINITY bans t)
 *   2. penalties       for each token t accepted since the last reset:
 *                        repetition (llama.cpp): logit > 0 ? logit / repetition_penalty
 *                                                          : logit * repetition_penalty
 *                        then (ChatRWKV): logit -= presence_penalty + occurrence[t] * frequency_penalty
 *                      occurrence[t] = sum over the accepted copies of t of
 *                      penalty_decay^(number of tokens accepted after that copy); the presence
 *                      penalty never decays. (Computed in double, rounded to float once.)
 *   3. temperature     0: greedy, return the first largest logit (lowest id on ties); steps
 *                      4-6 and the random draw are skipped. Otherwise p = softmax(logit / temperature),
 *                      in float; a token more than 87.3 * temperature below the largest logit
 *                      (relative probability < 1.2e-38) gets p = 0 and is never drawn.
 *   4. top-k           keep the top_k largest logits (ties: lower ids first)
 *   5. top-p           keep the smallest prefix, largest first (ties: lower ids first), whose
 *                      probability (renormalized over what step 4 kept) is >= top_p
 *   6. min-p           keep tokens whose probability is >= min_p * the largest probability
 *   7. draw            one uniform number from the sampler's xoshiro256** generator, over the
 *                      kept tokens renormalized (sums in double).
 *
 * The temperature comes before the filters, as in most samplers. BlinkDL's rwkv package
 * (PIPELINE.sample_logits) applies top-p, then top-k, to softmax(logits) and the temperature
 * last, as probs ** (1 / temperature): at temperature 1 with top_k 0, and at any temperature
 * with neither top-p nor top-k, both give the same distribution.
 *
 * A seed gives the same tokens on every platform: e^x is computed with plain float arithmetic
 * (no libm), and the summation order is fixed.
 *
 * ChatRWKV / rwkv pip package PIPELINE_ARGS map as: alpha_presence -> presence_penalty,
 * alpha_frequency -> frequency_penalty, alpha_decay -> penalty_decay, token_ban -> a logit
 * bias of -INFINITY, token_stop -> left to the caller's generation loop (as are stop strings
 * and a token limit: the sampler only picks tokens). One difference: PIPELINE.generate counts
 * a token that decodes to a space, tab or digit with weight 0 (presence only); the sampler,
 * which knows no text, counts every accepted token with weight 1.
 *
 * Logits: NaN or +INFINITY is an error naming the token; -INFINITY means banned. If every
 * token is banned, sampling fails. Each sampler is used by one thread at a time; it allocates
 * everything in rwkv_sampler_create and nothing per call. A call costs O(n_vocab) (expected,
 * for top-k and top-p, which select by quickselect rather than sort).
 *
 * Errors: functions taking a sampler record flags (RWKV_ERROR_ARGS | detail) and a message in
 * it, read with rwkv_sampler_get_last_error / _message; a failed rwkv_sampler_create, or a
 * NULL sampler, records them in the per-thread slot read by rwkv_get_last_error(NULL). */

/* rwkv_sampling_params.seed: pick a seed from the clock and addresses (different every time;
 * rwkv_sampler_get_seed tells which, to replay a run). */
#define RWKV_SAMPLING_SEED_RANDOM UINT64_MAX

/* Get the defaults from rwkv_sampling_default_params() and change what you need: new fields
 * are only ever appended. The defaults are those of the rwkv pip package's PIPELINE_ARGS. */
struct rwkv_sampling_params {
    float temperature;         /* >= 0, finite; 0: greedy (argmax). Default 1.0 */
    uint32_t top_k;            /* 0: off. Default 0 */
    float top_p;               /* in (0, 1]; 1: off. Default 0.85 */
    float min_p;               /* in [0, 1]; 0: off. Default 0 */
    float repetition_penalty;  /* > 0, finite; 1: off (llama.cpp's repeat_penalty). Default 1.0 */
    float presence_penalty;    /* finite; 0: off; < 0 encourages repeats (alpha_presence). Default 0.2 */
    float frequency_penalty;   /* finite; 0: off (alpha_frequency). Default 0.2 */
    float penalty_decay;       /* in [0, 1]; 1: occurrences never fade (alpha_decay). Default 0.996 */
    uint64_t seed;             /* same seed, same tokens; default RWKV_SAMPLING_SEED_RANDOM */
};

struct rwkv_sampler;

RWKV_API struct rwkv_sampling_params rwkv_sampling_default_params(void);

/* A sampler for logits of n_vocab floats (1 .. UINT32_MAX). params NULL: the defaults.
 * Bad parameters give NULL with the reason in rwkv_get_last_error_message(NULL). Errors are
 * printed to stderr if rwkv_get_print_errors(NULL) is true at creation (change it per
 * sampler with rwkv_sampler_set_print_errors). */
RWKV_API struct rwkv_sampler * rwkv_sampler_create(size_t n_vocab, const struct rwkv_sampling_params * params);

/* rwkv_sampler_free(NULL) does nothing. */
RWKV_API void rwkv_sampler_free(struct rwkv_sampler * sampler);

/* Replaces the whole bias table: token tokens[i] gets biases[i] added to its logit (a token
 * listed twice gets the sum, as in llama.cpp). n 0 (tokens and biases may then be NULL)
 * removes every bias. A bias may be -INFINITY (ban), not NaN or +INFINITY. On error the old
 * table stays. The table survives rwkv_sampler_reset. */
RWKV_API bool rwkv_sampler_set_logit_bias(struct rwkv_sampler * sampler, const uint32_t * tokens, const float * biases, size_t n);

/* Steps 1-2: writes the biased and penalized logits to adjusted (n_vocab floats; may be the
 * same buffer as logits). On error adjusted may be partly written. */
RWKV_API bool rwkv_sampler_apply(struct rwkv_sampler * sampler, const float * logits, size_t n_vocab, float * adjusted);

/* Steps 1-6: writes the probabilities the next rwkv_sampler_sample would draw from (0 for
 * tokens it cannot return; one 1 at the argmax when temperature is 0). Does not draw. */
RWKV_API bool rwkv_sampler_get_probs(struct rwkv_sampler * sampler, const float * logits, size_t n_vocab, float * probs);

/* Steps 1-7: writes the chosen token to *token_out. Does not record it: call
 * rwkv_sampler_accept with the token the host actually keeps. */
RWKV_API bool rwkv_sampler_sample(struct rwkv_sampler * sampler, const float * logits, size_t n_vocab, uint32_t * token_out);

/* Records token for the penalties: every earlier occurrence decays by penalty_decay, then
 * occurrence[token] += 1. Prompt tokens may be accepted too, to penalize repeating them. */
RWKV_API bool rwkv_sampler_accept(struct rwkv_sampler * sampler, uint32_t token);

/* Forgets the accepted tokens and restarts the generator from params.seed (a new random seed
 * when that is RWKV_SAMPLING_SEED_RANDOM). Keeps the logit bias. NULL does nothing. */
RWKV_API void rwkv_sampler_reset(struct rwkv_sampler * sampler);

/* The seed in use: params.seed, or the one drawn for RWKV_SAMPLING_SEED_RANDOM. */
RWKV_API uint64_t rwkv_sampler_get_seed(const struct rwkv_sampler * sampler);

/* As rwkv_get_last_error / rwkv_get_last_error_message / rwkv_set_print_errors for a
 * context; sampler NULL: the per-thread slot. */
RWKV_API enum rwkv_error_flags rwkv_sampler_get_last_error(struct rwkv_sampler * sampler);
RWKV_API const char * rwkv_sampler_get_last_error_message(const struct rwkv_sampler * sampler);
RWKV_API void rwkv_sampler_set_print_errors(struct rwkv_sampler * sampler, bool print_errors);
RWKV_API bool rwkv_sampler_get_print_errors(const struct rwkv_sampler * sampler);

/* ---- Tokenizer (addition) ----
 *
 * The RWKV World tokenizer: greedy longest match over the vocabulary's bytes, token for token
 * what the reference rwkv.rwkv_tokenizer.TRIE_TOKENIZER produces. A loaded tokenizer is
 * immutable: any number of threads may use one at once. Errors go to the thread's slot, read
 * with rwkv_get_last_error(NULL) and rwkv_get_last_error_message(NULL).
 *
 * Sizing: encode and decode write at most `capacity` elements and always set *n_tokens /
 * *n_bytes to the number the whole result needs. When that is more than capacity they return
 * false with RWKV_ERROR_ARGS (never printed), so a call with capacity 0 (and a NULL buffer)
 * asks for the size. */

struct rwkv_tokenizer;

/* Loads a vocabulary file in rwkv_vocab_v20230424.txt's format: one line per token,
 * "<id> <Python str or bytes literal> <byte length>" (ids up to 8388607; when two ids have
 * the same bytes, encoding gives the one further down, as the reference does). NULL on error
 * (missing file, a malformed line: the message names the file and the line). */
RWKV_API struct rwkv_tokenizer * rwkv_tokenizer_load(const char * vocab_path);

/* rwkv_tokenizer_free(NULL) does nothing. */
RWKV_API void rwkv_tokenizer_free(struct rwkv_tokenizer * tokenizer);

/* The largest token id in the file + 1 (65530 for rwkv_vocab_v20230424.txt). Ids below it
 * that the file lacks (0, end of text in RWKV World) decode to no bytes. */
RWKV_API size_t rwkv_tokenizer_vocab_size(const struct rwkv_tokenizer * tokenizer);

/* Encodes n_bytes bytes of text (any bytes, UTF-8 or not) into token ids. Every token is at
 * least one byte, so capacity n_bytes always suffices. Fails (ARGS | KEY) only for a byte
 * the vocabulary has no token for, which the World vocabulary does not lack. */
RWKV_API bool rwkv_tokenizer_encode(const struct rwkv_tokenizer * tokenizer, const char * text, size_t n_bytes,
                                    uint32_t * tokens, size_t capacity, size_t * n_tokens);

/* Concatenates the bytes of n_tokens token ids (not NUL-terminated; the bytes may be invalid
 * UTF-8 where a character is split across tokens). An id >= the vocabulary size fails with
 * a message naming the id and its position. Bytes of out past *n_bytes (up to capacity)
 * may be overwritten. */
RWKV_API bool rwkv_tokenizer_decode(const struct rwkv_tokenizer * tokenizer, const uint32_t * tokens, size_t n_tokens,
                                    char * out, size_t capacity, size_t * n_bytes);

/* The GPU this library offloads to and its peaks, for benchmarks. False without one: the
 * reason ("rwkv_cpp was built without CUDA", "no NVIDIA driver found", ...) is then in
 * rwkv_get_last_error_message(NULL), and the flags stay clear unless info is NULL. Fields are
 * only ever appended. */
struct rwkv_gpu_info {
    char name[256];
    uint32_t compute_major, compute_minor;  /* compute capability, 9.0 for an H100 */
    uint32_t sm_count;
    double clock_ghz;                       /* peak SM clock */
    uint64_t memory_bytes;
    double memory_bandwidth_gbs;            /* memory clock x 2 x bus width / 8 */
    double fp32_tflops;                     /* SMs x clock x FP32 lanes per SM x 2 */
};
RWKV_API bool rwkv_get_gpu_info(struct rwkv_gpu_info * info);

#ifdef __cplusplus
}
#endif

#endif
