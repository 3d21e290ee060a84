/* fuzz_tokenizer.c: the World tokenizer with the shipped vocabulary (rwkv_vocab_v20230424.txt).
 * The input is text to encode (any bytes) and, read two bytes at a time, token ids to decode.
 * Checks: decode(encode(x)) == x (the vocabulary has every single byte); size queries and
 * buffers one element short give the full size and fail; every buffer is allocated to its
 * exact capacity, so a write past it is caught. Seeds: corpus/tokenizer. */
#include <stdbool.h>
#include <string.h>
#include "fuzz_targets.h"
#include "rwkv.h"

#ifndef RWKV_FUZZ_VOCAB_PATH
#define RWKV_FUZZ_VOCAB_PATH "rwkv_cpp/data/rwkv_vocab_v20230424.txt"
#endif

static const struct rwkv_tokenizer * tokenizer(void) {
    static struct rwkv_tokenizer * loaded;
    if (!loaded) {
        rwkv_set_print_errors(NULL, false);
        const char * path = rwkv_fuzz_resource("RWKV_FUZZ_VOCAB", RWKV_FUZZ_VOCAB_PATH);
        loaded = rwkv_tokenizer_load(path);
        RWKV_FUZZ_ASSERT(loaded != NULL, "cannot load the vocabulary %s: %s", path, rwkv_get_last_error_message(NULL));
    }
    return loaded;
}

/* malloc(n) that returns a distinct pointer for 0 too. */
static void * allocate(size_t n_bytes) {
    void * p = malloc(n_bytes ? n_bytes : 1);
    RWKV_FUZZ_ASSERT(p != NULL, "out of memory");
    return p;
}

/* Encodes text, checking the size query and a buffer one token short on the way. */
static uint32_t * encode(const uint8_t * text, size_t n_bytes, size_t * n_tokens) {
    const struct rwkv_tokenizer * tok = tokenizer();
    size_t needed = 0;
    const bool fits_nothing = rwkv_tokenizer_encode(tok, (const char *) text, n_bytes, NULL, 0, &needed);
    RWKV_FUZZ_ASSERT(fits_nothing == (needed == 0), "size query: returned %d for %zu tokens", fits_nothing, needed);
    RWKV_FUZZ_ASSERT(needed <= n_bytes, "%zu tokens for %zu bytes", needed, n_bytes);
    uint32_t * tokens = allocate(needed * sizeof(uint32_t));
    if (needed > 0) {
        size_t got = 0;
        RWKV_FUZZ_ASSERT(!rwkv_tokenizer_encode(tok, (const char *) text, n_bytes, tokens, needed - 1, &got) && got == needed,
            "encode into %zu of %zu tokens: reported %zu", needed - 1, needed, got);
    }
    size_t got = 0;
    RWKV_FUZZ_ASSERT(rwkv_tokenizer_encode(tok, (const char *) text, n_bytes, tokens, needed, &got) && got == needed,
        "encode failed: %s", rwkv_get_last_error_message(NULL));
    for (size_t i = 0; i < needed; i++) {
        RWKV_FUZZ_ASSERT(tokens[i] < rwkv_tokenizer_vocab_size(tok), "encode gave token %u", tokens[i]);
    }
    *n_tokens = needed;
    return tokens;
}

/* Decodes tokens, or returns NULL when an id is out of range (checked to be refused). */
static uint8_t * decode(const uint32_t * tokens, size_t n_tokens, size_t * n_bytes) {
    const struct rwkv_tokenizer * tok = tokenizer();
    bool in_range = true;
    for (size_t i = 0; i < n_tokens; i++) {
        in_range = in_range && tokens[i] < rwkv_tokenizer_vocab_size(tok);
    }
    size_t needed = 0;
    const bool fits_nothing = rwkv_tokenizer_decode(tok, tokens, n_tokens, NULL, 0, &needed);
    if (!in_range) {
        RWKV_FUZZ_ASSERT(!fits_nothing && needed == 0, "an out-of-range id was accepted");
        RWKV_FUZZ_ASSERT((rwkv_get_last_error(NULL) & RWKV_ERROR_ARGS) != 0, "no error flags for an out-of-range id");
        return NULL;
    }
    RWKV_FUZZ_ASSERT(fits_nothing == (needed == 0), "size query: returned %d for %zu bytes", fits_nothing, needed);
    uint8_t * out = allocate(needed);
    if (needed > 0) {
        size_t got = 0;
        RWKV_FUZZ_ASSERT(!rwkv_tokenizer_decode(tok, tokens, n_tokens, (char *) out, needed - 1, &got) && got == needed,
            "decode into %zu of %zu bytes: reported %zu", needed - 1, needed, got);
    }
    size_t got = 0;
    RWKV_FUZZ_ASSERT(rwkv_tokenizer_decode(tok, tokens, n_tokens, (char *) out, needed, &got) && got == needed,
        "decode failed: %s", rwkv_get_last_error_message(NULL));
    *n_bytes = needed;
    return out;
}

static void round_trip(const uint8_t * text, size_t n_bytes) {
    size_t n_tokens = 0, n_decoded = 0;
    uint32_t * tokens = encode(text, n_bytes, &n_tokens);
    uint8_t * decoded = decode(tokens, n_tokens, &n_decoded);
    RWKV_FUZZ_ASSERT(decoded != NULL && n_decoded == n_bytes && memcmp(decoded, text, n_bytes) == 0,
        "decode(encode(x)) != x for %zu bytes (%zu tokens, %zu bytes back)", n_bytes, n_tokens, n_decoded);
    free(tokens);
    free(decoded);
}

int rwkv_fuzz_tokenizer(const uint8_t * data, size_t size) {
    round_trip(data, size);

    /* The same bytes as ids: two bytes each, so about 1 in 10,000 is past the vocabulary
     * (65530..65535); 0xFFFF stands for the largest id. */
    const size_t n_ids = size / 2;
    uint32_t * ids = allocate(n_ids * sizeof(uint32_t));
    for (size_t i = 0; i < n_ids; i++) {
        const uint32_t id = (uint32_t) data[2 * i] | (uint32_t) data[2 * i + 1] << 8;
        ids[i] = id == 0xFFFF ? UINT32_MAX : id;
    }
    size_t n_bytes = 0;
    uint8_t * text = decode(ids, n_ids, &n_bytes);
    if (text) {
        round_trip(text, n_bytes);  /* encoding need not give back the same ids, only the same bytes */
    }
    free(text);
    free(ids);
    return 0;
}

RWKV_FUZZ_ENTRY(rwkv_fuzz_tokenizer)
