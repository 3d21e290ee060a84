/* fuzz_vocab.c: the vocabulary file reader (rwkv_tokenizer_load: Python str / bytes literals,
 * escapes, the id table, the double-array trie). The input is written to a temporary file and
 * loaded; a vocabulary that loads must encode every text made of its tokens and decode every
 * id below its size. Seeds: corpus/vocab, small vocabularies in rwkv_vocab_v20230424.txt's
 * format. */
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include "fuzz_targets.h"
#include "rwkv.h"

/* One temporary file, rewritten for every input. */
static const char * vocab_path(void) {
    static char path[256];
    if (!path[0]) {
        const char * dir = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/rwkv_fuzz_vocab_XXXXXX", dir && dir[0] ? dir : "/tmp");
        const int fd = mkstemp(path);
        RWKV_FUZZ_ASSERT(fd >= 0, "cannot create %s", path);
        close(fd);
        rwkv_set_print_errors(NULL, false);
    }
    return path;
}

int rwkv_fuzz_vocab(const uint8_t * data, size_t size) {
    const char * path = vocab_path();
    FILE * f = fopen(path, "wb");
    RWKV_FUZZ_ASSERT(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", path);
    struct rwkv_tokenizer * tok = rwkv_tokenizer_load(path);
    if (!tok) {
        RWKV_FUZZ_ASSERT(rwkv_get_last_error(NULL) != RWKV_ERROR_NONE && rwkv_get_last_error_message(NULL)[0] != '\0',
            "refused without an error code and message");
        return 0;
    }
    const size_t vocab_size = rwkv_tokenizer_vocab_size(tok);
    RWKV_FUZZ_ASSERT(vocab_size > 0, "loaded an empty vocabulary");
    /* Every id decodes; text made of ids that decode to bytes encodes again and decodes back. */
    const size_t n_ids = vocab_size < 512 ? vocab_size : 512;
    uint32_t * ids = malloc(n_ids * sizeof(uint32_t));
    RWKV_FUZZ_ASSERT(ids != NULL, "out of memory");
    for (size_t i = 0; i < n_ids; i++) {
        ids[i] = (uint32_t) (vocab_size - 1 - i);
    }
    size_t n_bytes = 0;
    RWKV_FUZZ_ASSERT(!rwkv_tokenizer_decode(tok, ids, n_ids, NULL, 0, &n_bytes) || n_bytes == 0, "size query");
    char * text = malloc(n_bytes ? n_bytes : 1);
    size_t got = 0;
    RWKV_FUZZ_ASSERT(text && rwkv_tokenizer_decode(tok, ids, n_ids, text, n_bytes, &got) && got == n_bytes,
        "decode of every id failed: %s", rwkv_get_last_error_message(NULL));
    /* Greedy matching may still get stuck (tokens "ab", "a", "bc" and the text "abc"), with a
     * clear error; text it encodes must decode back. */
    uint32_t * tokens = malloc((n_bytes ? n_bytes : 1) * sizeof(uint32_t));
    char * back = malloc(n_bytes ? n_bytes : 1);
    RWKV_FUZZ_ASSERT(tokens && back, "out of memory");
    size_t n_tokens = 0;
    if (rwkv_tokenizer_encode(tok, text, n_bytes, tokens, n_bytes, &n_tokens)) {
        RWKV_FUZZ_ASSERT(rwkv_tokenizer_decode(tok, tokens, n_tokens, back, n_bytes, &got) && got == n_bytes
            && memcmp(back, text, n_bytes) == 0, "decode(encode(x)) != x");
    } else {
        RWKV_FUZZ_ASSERT(rwkv_get_last_error(NULL) == (RWKV_ERROR_ARGS | RWKV_ERROR_KEY), "encode failed: %s",
            rwkv_get_last_error_message(NULL));
    }
    free(back);
    free(tokens);
    free(text);
    free(ids);
    rwkv_tokenizer_free(tok);
    return 0;
}

RWKV_FUZZ_ENTRY(rwkv_fuzz_vocab)
