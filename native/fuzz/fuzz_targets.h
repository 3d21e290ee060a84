/* fuzz_targets.h: the fuzz targets' one-input functions. Each fuzz_*.c defines one and, in a
 * libFuzzer build, LLVMFuzzerTestOneInput calling it; native/tests/test_fuzz_regressions.c
 * compiles the same files with RWKV_FUZZ_REPLAY and replays saved inputs through them.
 *
 * A target returns 0 for any input the library handles as documented (loads, or refuses with an
 * error code and a message) and aborts, after printing why, when the library breaks a promise
 * (an output written on failure, a round trip that changes the bytes). Crashes and sanitizer
 * reports abort by themselves. */
#ifndef RWKV_FUZZ_TARGETS_H
#define RWKV_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Model files: parse and bind from a buffer; if that works, evaluate a few tokens. */
int rwkv_fuzz_model_file(const uint8_t * data, size_t size);
/* World tokenizer with the shipped vocabulary: encode, decode, round trips, small buffers. */
int rwkv_fuzz_tokenizer(const uint8_t * data, size_t size);
/* Vocabulary files (rwkv_tokenizer_load), written to a temporary file. */
int rwkv_fuzz_vocab(const uint8_t * data, size_t size);
/* State files against the small models of corpus/model_file named in fuzz_state_file.c. */
int rwkv_fuzz_state_file(const uint8_t * data, size_t size);

/* Where the targets find the vocabulary and the state target's models. The build passes the
 * source tree's paths; the environment variables override them. */
static inline const char * rwkv_fuzz_resource(const char * env_name, const char * built_in) {
    const char * value = getenv(env_name);
    return value && value[0] ? value : built_in;
}

#define RWKV_FUZZ_ASSERT(cond, ...)                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "fuzz target: %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
            abort();                                                  \
        }                                                             \
    } while (0)

#ifdef RWKV_FUZZ_REPLAY
#define RWKV_FUZZ_ENTRY(fn)
#else
#define RWKV_FUZZ_ENTRY(fn)                                            \
    int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);     \
    int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {    \
        return fn(data, size);                                        \
    }
#endif

#endif
