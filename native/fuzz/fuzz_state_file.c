/* fuzz_state_file.c: state files, parsed against five small models of corpus/model_file (one
 * per architecture, so a header matches one of them). Checks: a refused file leaves the output
 * untouched and sets an error; an accepted one has exactly the model's size. The output buffer
 * is allocated to the state's exact size. Seeds: corpus/state_file, states of those models. */
#include <stdbool.h>
#include <string.h>
#include "fuzz_targets.h"
#include "model.h"
#include "state_file.h"

#ifndef RWKV_FUZZ_MODEL_DIR
#define RWKV_FUZZ_MODEL_DIR "native/fuzz/corpus/model_file"
#endif

/* make_corpus.py writes the seed states of these models. */
static const char * const model_names[] = {
    "v4-FP32.bin", "v5.1-Q4_0.bin", "v5.2-FP16.bin", "v6-Q8_0.bin", "v7-FP16-2layers.bin",
};
#define N_MODELS (sizeof(model_names) / sizeof(model_names[0]))

static struct rwkv_model ** models(void) {
    static struct rwkv_model * loaded[N_MODELS];
    if (!loaded[0]) {
        const char * dir = rwkv_fuzz_resource("RWKV_FUZZ_MODEL_DIR", RWKV_FUZZ_MODEL_DIR);
        for (size_t i = 0; i < N_MODELS; i++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, model_names[i]);
            struct rwkv_error err = {0};
            loaded[i] = rwkv_model_load(path, &err, false);
            RWKV_FUZZ_ASSERT(loaded[i] != NULL, "cannot load %s: %s", path, err.message);
        }
    }
    return loaded;
}

int rwkv_fuzz_state_file(const uint8_t * data, size_t size) {
    struct rwkv_model ** all = models();
    for (size_t i = 0; i < N_MODELS; i++) {
        struct rwkv_model * model = all[i];
        const size_t n_floats = model->state_len;
        float * state = malloc(n_floats * sizeof(float));
        RWKV_FUZZ_ASSERT(state != NULL, "out of memory");
        memset(state, 0x5A, n_floats * sizeof(float));
        struct rwkv_error err = {0};
        if (rwkv_state_file_parse(model, data, size, state, &err, false)) {
            RWKV_FUZZ_ASSERT(size == 48 + n_floats * sizeof(float) + 8, "accepted %zu bytes for %zu floats", size, n_floats);
        } else {
            RWKV_FUZZ_ASSERT(err.flags != RWKV_ERROR_NONE && err.message[0] != '\0', "refused without an error code and message");
            for (size_t j = 0; j < n_floats * sizeof(float); j++) {
                RWKV_FUZZ_ASSERT(((const uint8_t *) state)[j] == 0x5A, "a refused state file wrote byte %zu of the state", j);
            }
        }
        free(state);
    }
    return 0;
}

RWKV_FUZZ_ENTRY(rwkv_fuzz_state_file)
