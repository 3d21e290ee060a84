/* tokenizer_world.h: the in-memory layout of a loaded RWKV World vocabulary: the token table
 * (id -> bytes) for decoding and a double-array byte trie for greedy longest-match encoding. */
#ifndef RWKV_TOKENIZER_WORLD_H
#define RWKV_TOKENIZER_WORLD_H

#include <stddef.h>
#include <stdint.h>

/* Token ids above this are rejected when loading: the trie cell keeps an id in 23 bits, and a
 * stray huge id cannot make the id table take gigabytes. */
#define RWKV_TOKENIZER_MAX_ID ((1u << 23) - 1)

/* Bytes of slack after the token bytes so decoding may copy short tokens with one fixed-size
 * 16-byte move. */
#define RWKV_TOKENIZER_BYTES_PAD 16

/* One cell of the double-array trie, 8 bytes so the hot part of the trie stays in L2. The
 * children of a node with base b are the cells b + byte, and a cell is the child for byte c
 * when its label is c + 1. That check is exact because no two nodes share a base (as in
 * darts-clone), so a label never needs the parent's index. Cell 0 is the root. */
struct rwkv_trie_cell {
    uint32_t base;   /* bit 31: a token ends here; bits 0..30: the base, 0 for a leaf */
    uint32_t label;  /* bits 0..8: the byte leading here + 1, 0 for an unused cell; bits 9..31: the token id */
};

#define RWKV_TRIE_TERMINAL 0x80000000u
#define RWKV_TRIE_BASE_MASK 0x7FFFFFFFu
#define RWKV_TRIE_LABEL_MASK 0x1FFu
#define RWKV_TRIE_TOKEN_SHIFT 9

struct rwkv_token_span {
    uint32_t offset;  /* into rwkv_tokenizer.bytes */
    uint32_t n_bytes;
};

/* Immutable after load: any number of threads may encode and decode with it at once. */
struct rwkv_tokenizer {
    size_t vocab_size;                   /* largest id in the file + 1 */
    struct rwkv_token_span * spans;      /* vocab_size entries; ids the file lacks are empty */
    uint8_t * bytes;                     /* every token's bytes, then RWKV_TOKENIZER_BYTES_PAD zeros */
    struct rwkv_trie_cell * cells;  /* with 256 unused cells after the largest base */
    size_t n_cells;
};

#endif
