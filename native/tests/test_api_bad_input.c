/* test_api_bad_input.c: every function of rwkv.h against bad arguments: NULL for each pointer,
 * zero counts and "negative" ones ((size_t) -1 and other counts no array can hold), token ids
 * out of range, directories and missing files as paths, frees of NULL (twice). Each call must
 * fail cleanly: false / NULL / 0, the documented flags in the right slot (the context, the
 * sampler or the thread's), a message naming the argument, outputs untouched, and the handle
 * still working afterwards. What C cannot check (a state or logits buffer shorter than
 * rwkv_get_state_len / _logits_len floats) the Python binding checks; see
 * tests/bad_input_cases.md.
 *
 * Usage: test_api_bad_input VOCAB_FILE */
#include <stddef.h>
#include "rwkv.h"
#include "test_util.h"

#define N_VOCAB 50
#define SENTINEL 1234.5f

/* (size_t) -1: what a negative count becomes on the way in. */
#define NEGATIVE_COUNT ((size_t) -1)

static bool contains(const char * haystack, const char * needle) {
    return haystack && strstr(haystack, needle) != NULL;
}

/* The call failed with exactly `flags` in the thread's slot (the context's, the sampler's) and a
 * message containing needle. */
#define CHECK_ERROR_IN(get_flags, get_message, call, flags, needle)                   \
    do {                                                                              \
        const bool failed_ = !(call);                                                 \
        check_error(failed_, #call, get_flags, get_message, flags, needle, __LINE__); \
    } while (0)
#define CHECK_THREAD_ERROR(call, flags, needle) \
    CHECK_ERROR_IN(rwkv_get_last_error(NULL), rwkv_get_last_error_message(NULL), call, flags, needle)
#define CHECK_CTX_ERROR(ctx, call, flags, needle) \
    CHECK_ERROR_IN(rwkv_get_last_error(ctx), rwkv_get_last_error_message(ctx), call, flags, needle)
#define CHECK_SAMPLER_ERROR(s, call, flags, needle) \
    CHECK_ERROR_IN(rwkv_sampler_get_last_error(s), rwkv_sampler_get_last_error_message(s), call, flags, needle)

static void check_error(bool failed, const char * call, enum rwkv_error_flags got, const char * message,
                        enum rwkv_error_flags expected, const char * needle, int line) {
    CHECK_MSG(failed, "line %d: %s succeeded", line, call);
    CHECK_MSG(got == expected, "line %d: %s: flags %d, expected %d (message \"%s\")", line, call, (int) got, (int) expected, message);
    CHECK_MSG(contains(message, needle), "line %d: %s: message \"%s\" lacks \"%s\"", line, call, message, needle);
}

static float * sentinels(size_t n) {
    float * p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        p[i] = SENTINEL;
    }
    return p;
}

static bool untouched(const float * p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != SENTINEL) {
            return false;
        }
    }
    return true;
}

static void test_frees_of_null(void) {
    printf("frees of NULL, twice\n");
    rwkv_free(NULL);
    rwkv_free(NULL);
    rwkv_tokenizer_free(NULL);
    rwkv_tokenizer_free(NULL);
    rwkv_sampler_free(NULL);
    rwkv_sampler_free(NULL);
    rwkv_sampler_reset(NULL);
    rwkv_sampler_reset(NULL);
}

static void test_without_a_context(const char * model_path) {
    printf("functions without a context\n");
    const uint32_t tokens[2] = {1, 2};
    float out[4] = {SENTINEL, SENTINEL, SENTINEL, SENTINEL};
    CHECK_THREAD_ERROR(rwkv_eval_sequence_all_logits(NULL, tokens, 2, NULL, out, out), RWKV_ERROR_ARGS, "ctx is NULL");
    CHECK_THREAD_ERROR(rwkv_state_save(NULL, "x.state", out), RWKV_ERROR_ARGS, "ctx is NULL");
    CHECK_THREAD_ERROR(rwkv_state_load(NULL, "x.state", out), RWKV_ERROR_ARGS, "ctx is NULL");
    CHECK(untouched(out, 4));
    CHECK(rwkv_get_model_file_hash(NULL) == 0);
    CHECK(rwkv_get_print_errors(NULL) == false);
    CHECK(rwkv_get_last_error_message(NULL) != NULL);

    /* Loading: an empty path, a directory. */
    CHECK_THREAD_ERROR(rwkv_init_from_file("", 1, 0), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot open");
    CHECK_THREAD_ERROR(rwkv_init_from_file(test_temp_dir, 1, 0), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "not a regular file");

    /* Quantizing: every pointer NULL in turn, bad head format, directories as paths. */
    const char * out_path = test_temp_path("quantized.bin");
    struct rwkv_quantize_params params = rwkv_quantize_default_params();
    CHECK(params.format_name != NULL && params.head_format_name == NULL && params.progress == NULL);
    CHECK_THREAD_ERROR(rwkv_quantize_model_file_ex(NULL, out_path, &params), RWKV_ERROR_ARGS, "model_file_path_in is NULL");
    CHECK_THREAD_ERROR(rwkv_quantize_model_file_ex(model_path, NULL, &params), RWKV_ERROR_ARGS, "model_file_path_out is NULL");
    CHECK_THREAD_ERROR(rwkv_quantize_model_file_ex(model_path, out_path, NULL), RWKV_ERROR_ARGS, "params is NULL");
    params.format_name = NULL;
    CHECK_THREAD_ERROR(rwkv_quantize_model_file_ex(model_path, out_path, &params), RWKV_ERROR_ARGS, "format_name is NULL");
    CHECK_THREAD_ERROR(rwkv_quantize_model_file(model_path, out_path, NULL), RWKV_ERROR_ARGS, "format_name is NULL");
    params = rwkv_quantize_default_params();
    params.head_format_name = "Q3_K";
    CHECK_THREAD_ERROR(rwkv_quantize_model_file_ex(model_path, out_path, &params), RWKV_ERROR_ARGS | RWKV_ERROR_DATA_TYPE, "Q3_K");
    params.head_format_name = NULL;
    CHECK_THREAD_ERROR(rwkv_quantize_model_file_ex(test_temp_dir, out_path, &params), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "not a regular file");
    CHECK_THREAD_ERROR(rwkv_quantize_model_file_ex(model_path, test_temp_dir, &params), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "is a directory");
    CHECK_MSG(!test_file_exists(out_path), "a failed quantization left %s", out_path);
}

static void test_eval_arguments(struct rwkv_context * ctx) {
    printf("evaluation arguments\n");
    const size_t state_len = rwkv_get_state_len(ctx), logits_len = rwkv_get_logits_len(ctx);
    CHECK(logits_len == N_VOCAB);
    float * state = sentinels(state_len);
    float * logits = sentinels(logits_len * 4);
    const uint32_t good[3] = {1, 2, 3};

    /* Token ids out of range, for each entry. */
    const uint32_t bad_ids[3] = {N_VOCAB, N_VOCAB + 1, UINT32_MAX};
    for (int i = 0; i < 3; i++) {
        const uint32_t seq[3] = {1, bad_ids[i], 2};
        CHECK_CTX_ERROR(ctx, rwkv_eval(ctx, bad_ids[i], NULL, state, logits), RWKV_ERROR_ARGS, "out of range");
        CHECK_CTX_ERROR(ctx, rwkv_eval_sequence(ctx, seq, 3, NULL, state, logits), RWKV_ERROR_ARGS, "at position 1");
        CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_in_chunks(ctx, seq, 3, 2, NULL, state, logits), RWKV_ERROR_ARGS, "at position 1");
        CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_all_logits(ctx, seq, 3, NULL, state, logits), RWKV_ERROR_ARGS, "at position 1");
    }

    /* NULL tokens with a count, zero counts, negative counts. */
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence(ctx, NULL, 3, NULL, state, logits), RWKV_ERROR_ARGS, "tokens is NULL");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_in_chunks(ctx, NULL, 3, 1, NULL, state, logits), RWKV_ERROR_ARGS, "tokens is NULL");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_all_logits(ctx, NULL, 3, NULL, state, logits), RWKV_ERROR_ARGS, "tokens is NULL");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence(ctx, good, 0, NULL, state, logits), RWKV_ERROR_ARGS, "sequence_len is 0");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_all_logits(ctx, good, 0, NULL, state, logits), RWKV_ERROR_ARGS, "sequence_len is 0");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_in_chunks(ctx, good, 3, 0, NULL, state, logits), RWKV_ERROR_ARGS, "chunk_size is 0");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence(ctx, good, NEGATIVE_COUNT, NULL, state, logits), RWKV_ERROR_ARGS, "larger than any array");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_in_chunks(ctx, good, NEGATIVE_COUNT, 2, NULL, state, logits), RWKV_ERROR_ARGS, "larger than any array");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_all_logits(ctx, good, NEGATIVE_COUNT, NULL, state, logits), RWKV_ERROR_ARGS, "larger than any array");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence(ctx, good, (size_t) PTRDIFF_MAX / 2, NULL, state, logits), RWKV_ERROR_ARGS, "larger than any array");
    /* A count whose logits (count x n_vocab floats) no array can hold. */
    const size_t too_many_rows = (size_t) PTRDIFF_MAX / sizeof(float) / N_VOCAB + 1;
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_all_logits(ctx, good, too_many_rows, NULL, state, logits), RWKV_ERROR_ARGS, "larger than any array");
    CHECK_CTX_ERROR(ctx, rwkv_eval_sequence_all_logits(ctx, good, 3, NULL, state, NULL), RWKV_ERROR_ARGS, "logits_out is NULL");
    CHECK_MSG(untouched(state, state_len) && untouched(logits, logits_len * 4), "a refused call wrote an output");

    /* Harmless extremes: a chunk larger than the sequence, GPU layers on a CPU build, a NULL
     * buffer for the fresh state. */
    CHECK(rwkv_eval_sequence_in_chunks(ctx, good, 3, NEGATIVE_COUNT, NULL, state, logits));
    CHECK(rwkv_gpu_offload_layers(ctx, UINT32_MAX));
    rwkv_init_state(ctx, NULL);
    rwkv_init_state(NULL, NULL);

    /* After all that the context computes what a fresh one does. */
    float * expected = sentinels(logits_len);
    CHECK(rwkv_eval_sequence(ctx, good, 3, NULL, NULL, expected));
    struct rwkv_context * clone = rwkv_clone_context(ctx, 1);
    CHECK(clone != NULL);
    CHECK(rwkv_eval_sequence(clone, good, 3, NULL, NULL, logits));
    CHECK_MSG(memcmp(expected, logits, logits_len * sizeof(float)) == 0, "the context changed after refused calls");
    rwkv_free(clone);
    free(expected);
    free(state);
    free(logits);
}

static void test_state_files(struct rwkv_context * ctx, const char * other_model_path) {
    printf("state files\n");
    const size_t state_len = rwkv_get_state_len(ctx);
    float * state = sentinels(state_len);
    const char * path = test_temp_path("good.state");

    CHECK_CTX_ERROR(ctx, rwkv_state_save(ctx, NULL, state), RWKV_ERROR_ARGS, "path is NULL");
    CHECK_CTX_ERROR(ctx, rwkv_state_save(ctx, path, NULL), RWKV_ERROR_ARGS, "state is NULL");
    CHECK_CTX_ERROR(ctx, rwkv_state_load(ctx, NULL, state), RWKV_ERROR_ARGS, "path is NULL");
    CHECK_CTX_ERROR(ctx, rwkv_state_load(ctx, path, NULL), RWKV_ERROR_ARGS, "state_out is NULL");
    CHECK_CTX_ERROR(ctx, rwkv_state_save(ctx, test_temp_dir, state), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "is a directory");
    CHECK_CTX_ERROR(ctx, rwkv_state_save(ctx, test_temp_path("no-such-dir/x.state"), state), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN,
        "No such file or directory");
    CHECK_CTX_ERROR(ctx, rwkv_state_load(ctx, test_temp_dir, state), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "not a regular file");
    CHECK_CTX_ERROR(ctx, rwkv_state_load(ctx, test_temp_path("missing.state"), state), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN,
        "No such file or directory");
    const char * empty = test_temp_path("empty.state");
    CHECK(test_write_bytes(empty, "", 0));
    CHECK_CTX_ERROR(ctx, rwkv_state_load(ctx, empty, state), RWKV_ERROR_FILE | RWKV_ERROR_FILE_MAGIC, "not an rwkv_cpp state file");

    /* A good file, then the same cut short, then another model's. */
    rwkv_init_state(ctx, state);
    CHECK(rwkv_state_save(ctx, path, state));
    size_t n_bytes = 0;
    uint8_t * bytes = test_read_file(path, &n_bytes);
    CHECK(bytes != NULL && n_bytes > 8);
    const char * cut = test_temp_path("cut.state");
    CHECK(test_write_bytes(cut, bytes, n_bytes - 1));
    free(bytes);
    float * out = sentinels(state_len);
    CHECK_CTX_ERROR(ctx, rwkv_state_load(ctx, cut, out), RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ, "expected");
    struct rwkv_context * other = rwkv_init_from_file(other_model_path, 1, 0);
    CHECK(other != NULL);
    if (other) {
        const size_t other_len = rwkv_get_state_len(other);
        float * other_state = sentinels(other_len);
        CHECK_CTX_ERROR(other, rwkv_state_load(other, path, other_state), RWKV_ERROR_FILE | RWKV_ERROR_DATA, "another model");
        CHECK(untouched(other_state, other_len));
        free(other_state);
        rwkv_free(other);
    }
    CHECK_MSG(untouched(out, state_len), "a refused state file wrote the output");
    CHECK(rwkv_state_load(ctx, path, out));
    CHECK(memcmp(out, state, state_len * sizeof(float)) == 0);
    CHECK(rwkv_get_model_file_hash(ctx) != 0);
    free(out);
    free(state);
}

static void test_tokenizer(const char * vocab_path) {
    printf("tokenizer\n");
    CHECK_THREAD_ERROR(rwkv_tokenizer_load(NULL), RWKV_ERROR_ARGS | RWKV_ERROR_FILE_OPEN, "vocab_path is NULL");
    CHECK_THREAD_ERROR(rwkv_tokenizer_load(test_temp_path("missing.txt")), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot open");
    CHECK_THREAD_ERROR(rwkv_tokenizer_load(test_temp_dir), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "not a regular file");
#if !defined(_WIN32)
    const char * fifo = test_temp_path("vocab.fifo");  /* used to wait for a writer forever */
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_THREAD_ERROR(rwkv_tokenizer_load(fifo), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "not a regular file");
    CHECK_THREAD_ERROR(rwkv_init_from_file(fifo, 1, 0), RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "not a regular file");
#endif
    const char * empty = test_temp_path("empty.txt");
    CHECK(test_write_bytes(empty, "", 0));
    CHECK_THREAD_ERROR(rwkv_tokenizer_load(empty), RWKV_ERROR_FILE | RWKV_ERROR_DATA, "has no tokens");

    struct rwkv_tokenizer * tok = rwkv_tokenizer_load(vocab_path);
    CHECK_MSG(tok != NULL, "%s", rwkv_get_last_error_message(NULL));
    if (!tok) {
        return;
    }
    uint32_t ids[8];
    char text[8];
    size_t n = 99;
    CHECK_THREAD_ERROR(rwkv_tokenizer_encode(tok, "ab", NEGATIVE_COUNT, ids, 8, &n), RWKV_ERROR_ARGS, "n_bytes");
    CHECK(n == 0);
    CHECK_THREAD_ERROR(rwkv_tokenizer_encode(tok, "ab", 2, ids, NEGATIVE_COUNT, &n), RWKV_ERROR_ARGS, "capacity");
    CHECK_THREAD_ERROR(rwkv_tokenizer_decode(tok, ids, NEGATIVE_COUNT, text, 8, &n), RWKV_ERROR_ARGS, "n_tokens");
    CHECK_THREAD_ERROR(rwkv_tokenizer_decode(tok, ids, 1, text, NEGATIVE_COUNT, &n), RWKV_ERROR_ARGS, "capacity");
    const uint32_t bad[2] = {1, UINT32_MAX};
    CHECK_THREAD_ERROR(rwkv_tokenizer_decode(tok, bad, 2, text, 8, &n), RWKV_ERROR_ARGS | RWKV_ERROR_KEY, "position 1");
    const uint32_t past_end[1] = {(uint32_t) rwkv_tokenizer_vocab_size(tok)};
    CHECK_THREAD_ERROR(rwkv_tokenizer_decode(tok, past_end, 1, text, 8, &n), RWKV_ERROR_ARGS | RWKV_ERROR_KEY, "out of range");
    /* Still works. */
    CHECK(rwkv_tokenizer_encode(tok, "ab", 2, ids, 8, &n) && n >= 1);
    rwkv_tokenizer_free(tok);
}

static void test_sampler(void) {
    printf("sampler\n");
    CHECK_THREAD_ERROR(rwkv_sampler_create(0, NULL), RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION, "n_vocab");
    CHECK_THREAD_ERROR(rwkv_sampler_create(NEGATIVE_COUNT, NULL), RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION, "n_vocab");
    CHECK_THREAD_ERROR(rwkv_sampler_create((size_t) UINT32_MAX + 1, NULL), RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION, "n_vocab");
    CHECK(rwkv_sampler_get_seed(NULL) == 0);
    CHECK(rwkv_sampler_get_print_errors(NULL) == false);

    struct rwkv_sampling_params params = rwkv_sampling_default_params();
    params.seed = 1;
    struct rwkv_sampler * s = rwkv_sampler_create(8, &params);
    CHECK(s != NULL);
    if (!s) {
        return;
    }
    rwkv_sampler_set_print_errors(s, false);
    float logits[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    uint32_t token = 99;
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_sample(s, logits, 7, &token), RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION, "got 7 logits");
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_sample(s, logits, NEGATIVE_COUNT, &token), RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION, "logits");
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_apply(s, logits, 0, out), RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION, "logits");
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_get_probs(s, logits, 9, out), RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION, "logits");
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_accept(s, 8), RWKV_ERROR_ARGS, "out of range");
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_accept(s, UINT32_MAX), RWKV_ERROR_ARGS, "out of range");
    const uint32_t bias_tokens[2] = {1, 2};
    const float biases[2] = {1.0f, 2.0f};
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_set_logit_bias(s, bias_tokens, biases, NEGATIVE_COUNT), RWKV_ERROR_ARGS, "larger than any array");
    CHECK_SAMPLER_ERROR(s, rwkv_sampler_set_logit_bias(s, bias_tokens, NULL, 2), RWKV_ERROR_ARGS, "NULL");
    CHECK(token == 99);
    CHECK(rwkv_sampler_sample(s, logits, 8, &token) && token < 8);
    rwkv_sampler_free(s);
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VOCAB_FILE\n", argv[0]);
        return 2;
    }
    rwkv_set_print_errors(NULL, false);
    test_make_temp_dir();
    struct tw_model m;
    tw_make_v4(&m, N_VOCAB, 32, 2, 64, TW_F32);
    const char * path = test_temp_path("model.bin");
    CHECK(tw_write(&m, path));
    tw_free(&m);
    tw_make_v4(&m, N_VOCAB, 32, 1, 64, TW_F32);
    const char * other_path = test_temp_path("other.bin");
    CHECK(tw_write(&m, other_path));
    tw_free(&m);

    test_frees_of_null();
    test_without_a_context(path);
    struct rwkv_context * ctx = rwkv_init_from_file(path, 1, 0);
    CHECK_MSG(ctx != NULL, "%s", rwkv_get_last_error_message(NULL));
    if (ctx) {
        rwkv_set_print_errors(ctx, false);
        test_eval_arguments(ctx);
        test_state_files(ctx, other_path);
        rwkv_free(ctx);
    }
    test_tokenizer(argv[1]);
    test_sampler();
    test_remove_temp_dir();
    return test_finish("test_api_bad_input");
}
