/* tokenizer_world.h: the in-memory layout of a loaded RWKV World vocabulary: the token table
 * (id -> bytes) for decoding and a double-array byte trie for greedy longest-match encoding. */
#ifndef RWKV_TOKENIZER_WORLD_H
#define RWKV_TOKENIZER_WORLD_H

#include <stddef.h>
#include <stdint.h>

/* Token ids above this are rejected when loading, so a stray huge id cannot make the
 * id table take gigabytes. */
#define RWKV_TOKENIZER_MAX_ID ((1u << 24) - 1)

/* Bytes of slack after the token bytes so decoding may copy short tokens with one fixed-size
 * 16-byte move. */
#define RWKV_TOKENIZER_BYTES_PAD 16

/* One cell of the double-array trie. The child of node s for byte c is t = base[s] + c when
 * check[t] == s. Cell 0 is the root. The array has 256 cells of slack after the largest
 * base, so base + c never leaves it; unused cells have check -1. */
struct rwkv_trie_cell {
    int32_t base;
    int32_t check;
    int32_t token;  /* the id of the token that ends here, or -1 */
};

struct rwkv_token_span {
    uint32_t offset;  /* into rwkv_tokenizer.bytes */
    uint32_t n_bytes;
};

/* Immutable after load: any number of threads may encode and decode with it at once. */
struct rwkv_tokenizer {
    size_t vocab_size;                   /* largest id in the file + 1 */
    struct rwkv_token_span * spans;      /* vocab_size entries; ids the file lacks are empty */
    uint8_t * bytes;                     /* every token's bytes, then RWKV_TOKENIZER_BYTES_PAD zeros */
    struct rwkv_trie_cell * cells;
    size_t n_cells;
};

#endif
