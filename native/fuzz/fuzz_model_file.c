/* fuzz_model_file.c: model files, through the loader's buffer entry (the same parse and bind as
 * rwkv_init_from_file, without the mmap, so reading one byte past the input is caught). A file
 * that loads is evaluated: one token, then a sequence continuing its state in place, with a
 * kernel table (scalar, AVX2, AVX-512) chosen by the input so every variant meets odd weights.
 * Seeds: corpus/model_file, tiny valid files of every architecture and type. */
#include <stdbool.h>
#include <string.h>
#include "context.h"
#include "fuzz_targets.h"
#include "kernels.h"
#include "model.h"
#include "rwkv.h"

static const struct rwkv_kernels * kernel_table(unsigned choice) {
    const struct rwkv_kernels * tables[3] = {&rwkv_kernels_scalar, NULL, NULL};
    unsigned n = 1;
#if defined(RWKV_HAVE_AVX2_KERNELS) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        tables[n++] = &rwkv_kernels_avx2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512vnni")) {
            tables[n++] = &rwkv_kernels_avx512;
        }
    }
#endif
    return tables[choice % n];
}

int rwkv_fuzz_model_file(const uint8_t * data, size_t size) {
    struct rwkv_error err = {0};
    struct rwkv_model * model = rwkv_model_load_from_buffer(data, size, &err, false);
    if (!model) {
        RWKV_FUZZ_ASSERT(err.flags != RWKV_ERROR_NONE && err.message[0] != '\0',
            "refused without an error code and message (flags %d, message \"%s\")", (int) err.flags, err.message);
        return 0;
    }
    RWKV_FUZZ_ASSERT(model->n_vocab > 0 && model->n_embed > 0 && model->n_layer > 0 && model->state_len > 0,
        "loaded a model with an empty dimension");
    struct rwkv_context * ctx = rwkv_context_create(model, 1, &err, false);
    rwkv_model_release(model);  /* the context holds its own reference */
    RWKV_FUZZ_ASSERT(ctx != NULL, "no context for a loaded model: %s", err.message);
    ctx->kernels = kernel_table(data[size - 1]);

    const size_t n_vocab = rwkv_get_n_vocab(ctx), state_len = rwkv_get_state_len(ctx);
    float * state = malloc(state_len * sizeof(float));
    float * logits = malloc(n_vocab * sizeof(float));
    RWKV_FUZZ_ASSERT(state && logits, "out of memory");
    const uint32_t tokens[3] = {data[size - 1] % n_vocab, data[size / 2] % n_vocab, (uint32_t) (n_vocab - 1)};
    RWKV_FUZZ_ASSERT(rwkv_eval(ctx, tokens[0], NULL, state, logits), "eval failed: %s", rwkv_get_last_error_message(ctx));
    RWKV_FUZZ_ASSERT(rwkv_eval_sequence(ctx, tokens, 3, state, state, logits), "sequence failed: %s", rwkv_get_last_error_message(ctx));
    /* A bad token is refused and leaves the outputs alone. */
    state[0] = 42.0f;
    RWKV_FUZZ_ASSERT(!rwkv_eval(ctx, (uint32_t) n_vocab, NULL, state, logits), "token n_vocab accepted");
    RWKV_FUZZ_ASSERT(state[0] == 42.0f, "a refused eval wrote the state");
    free(state);
    free(logits);
    rwkv_free(ctx);
    return 0;
}

RWKV_FUZZ_ENTRY(rwkv_fuzz_model_file)
