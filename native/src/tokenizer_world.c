/* tokenizer_world.c: the RWKV World tokenizer. Reads the vocabulary file (one Python str or bytes
 * literal per line), builds a double-array byte trie, and encodes by greedy longest match: token
 * for token what the reference rwkv.rwkv_tokenizer.TRIE_TOKENIZER produces. */
#include "tokenizer_world.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "rwkv.h"

#if defined(_MSC_VER)
#include <intrin.h>
#endif

/* Token offsets are 32-bit; the parsed bytes never outgrow the file, so this bounds them. */
#define MAX_VOCAB_FILE_BYTES ((size_t) 1 << 30)

#define FILE_DATA_ERROR (RWKV_ERROR_FILE | RWKV_ERROR_DATA)

/* ---- reading the file ---- */

static bool read_whole_file(const char * path, uint8_t ** out, size_t * out_n_bytes, struct rwkv_error * err, bool print) {
    /* Opening a FIFO would wait for a writer forever, a directory fails only at the first read:
     * refuse both first, with the message the model loader gives. */
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "vocabulary file %s is not a regular file", path);
    }
    FILE * file = fopen(path, "rb");
    if (!file) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot open vocabulary file %s: %s", path, strerror(errno));
    }
    size_t capacity = 1 << 20;
    size_t n_bytes = 0;
    uint8_t * data = malloc(capacity);
    for (;;) {
        if (!data) {
            fclose(file);
            return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_ALLOC, "out of memory reading vocabulary file %s", path);
        }
        const size_t got = fread(data + n_bytes, 1, capacity - n_bytes, file);
        n_bytes += got;
        if (n_bytes < capacity) {
            const int saved = errno;
            const bool failed = ferror(file) != 0;
            fclose(file);
            if (failed) {
                free(data);
                return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ, "cannot read vocabulary file %s: %s", path, strerror(saved));
            }
            break;
        }
        if (capacity >= MAX_VOCAB_FILE_BYTES) {
            fclose(file);
            free(data);
            return rwkv_fail(err, print, FILE_DATA_ERROR, "vocabulary file %s is larger than %zu bytes", path, MAX_VOCAB_FILE_BYTES);
        }
        capacity *= 2;
        uint8_t * grown = realloc(data, capacity);
        if (!grown) {
            free(data);
        }
        data = grown;
    }
    *out = data;
    *out_n_bytes = n_bytes;
    return true;
}

/* ---- parsing: "<id> <python str or bytes literal> <byte length>" per line ---- */

struct vocab_entry {
    uint32_t id;
    uint32_t offset;  /* into vocab_parser.bytes */
    uint32_t n_bytes;
    uint32_t line;
};

struct vocab_parser {
    const char * path;
    const uint8_t * p;
    const uint8_t * end;
    size_t line;
    struct rwkv_error * err;
    bool print;

    struct vocab_entry * entries;
    size_t n_entries;
    uint8_t * bytes;  /* the literals' bytes, back to back; never longer than the file */
    size_t n_bytes;
};

static bool is_line_end(const struct vocab_parser * vp, const uint8_t * p) {
    return p == vp->end || *p == '\n' || *p == '\r';
}

static int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void append_utf8(struct vocab_parser * vp, uint32_t cp) {
    uint8_t * o = vp->bytes + vp->n_bytes;
    if (cp < 0x80) {
        o[0] = (uint8_t) cp;
        vp->n_bytes += 1;
    } else if (cp < 0x800) {
        o[0] = (uint8_t) (0xC0 | (cp >> 6));
        o[1] = (uint8_t) (0x80 | (cp & 0x3F));
        vp->n_bytes += 2;
    } else if (cp < 0x10000) {
        o[0] = (uint8_t) (0xE0 | (cp >> 12));
        o[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t) (0x80 | (cp & 0x3F));
        vp->n_bytes += 3;
    } else {
        o[0] = (uint8_t) (0xF0 | (cp >> 18));
        o[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3F));
        o[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F));
        o[3] = (uint8_t) (0x80 | (cp & 0x3F));
        vp->n_bytes += 4;
    }
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 if there is none. */
static size_t utf8_sequence_length(const uint8_t * p, const uint8_t * end) {
    const uint8_t c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
    else return 0;
    if ((size_t) (end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return 0;
    }
    return n;
}


static bool parse_fail(struct vocab_parser * vp, const char * fmt, ...) RWKV_PRINTF_LIKE(2, 3);

static bool parse_fail(struct vocab_parser * vp, const char * fmt, ...) {
    char what[RWKV_ERROR_MESSAGE_SIZE];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof(what), fmt, args);
    va_end(args);
    return rwkv_fail(vp->err, vp->print, FILE_DATA_ERROR, "vocabulary file %s, line %zu: %s", vp->path, vp->line, what);
}

/* Reads exactly n_digits hex digits at p into *value. */
static bool read_hex(const uint8_t * p, const uint8_t * end, int n_digits, uint32_t * value) {
    uint32_t v = 0;
    for (int i = 0; i < n_digits; i++) {
        if (p + i >= end) return false;
        const int h = hex_value(p[i]);
        if (h < 0) return false;
        v = (v << 4) | (uint32_t) h;
    }
    *value = v;
    return true;
}

/* One backslash escape of a non-raw literal; vp->p is at the backslash. Python's rules: \xhh,
 * \ooo, \a \b \f \n \r \t \v \\ \' \", and in str only \uXXXX and \UXXXXXXXX; any other
 * backslash stays a backslash. A str's code points are stored UTF-8 encoded. */
static bool parse_escape(struct vocab_parser * vp, bool is_bytes) {
    const uint8_t * p = vp->p + 1;
    if (is_line_end(vp, p)) {
        return parse_fail(vp, "literal ends in a backslash");
    }
    const uint8_t e = *p;
    uint32_t value;
    static const char simple_from[] = "\\'\"abfnrtv";
    static const char simple_to[] = "\\'\"\a\b\f\n\r\t\v";
    const char * simple = e ? strchr(simple_from, e) : NULL;
    if (simple) {
        vp->bytes[vp->n_bytes++] = (uint8_t) simple_to[simple - simple_from];
        vp->p = p + 1;
        return true;
    }
    if (e >= '0' && e <= '7') {
        value = 0;
        int n = 0;
        while (n < 3 && p < vp->end && *p >= '0' && *p <= '7') {
            value = value * 8 + (uint32_t) (*p - '0');
            p++;
            n++;
        }
        vp->p = p;
        if (is_bytes) {
            vp->bytes[vp->n_bytes++] = (uint8_t) (value & 0xFF);  /* Python 3.11 keeps the low byte */
        } else {
            append_utf8(vp, value);
        }
        return true;
    }
    int n_hex = e == 'x' ? 2 : (!is_bytes && e == 'u') ? 4 : (!is_bytes && e == 'U') ? 8 : 0;
    if (n_hex) {
        if (!read_hex(p + 1, vp->end, n_hex, &value)) {
            return parse_fail(vp, "truncated \\%c escape (needs %d hex digits)", e, n_hex);
        }
        vp->p = p + 1 + n_hex;
        if (is_bytes) {
            vp->bytes[vp->n_bytes++] = (uint8_t) value;
            return true;
        }
        if (value > 0x10FFFF) {
            return parse_fail(vp, "escape \\%c%0*X is not a Unicode code point", e, n_hex, (unsigned) value);
        }
        if (value >= 0xD800 && value <= 0xDFFF) {
            return parse_fail(vp, "escape \\%c%0*X is a surrogate, which UTF-8 cannot encode", e, n_hex, (unsigned) value);
        }
        append_utf8(vp, value);
        return true;
    }
    if (!is_bytes && e == 'N') {
        return parse_fail(vp, "\\N{...} escapes are not supported");
    }
    /* Not an escape: the backslash stays, the next character is read normally. */
    vp->bytes[vp->n_bytes++] = '\\';
    vp->p = p;
    return true;
}

/* A Python string or bytes literal (prefix b, r, u, br, rb in any case; ' or " quotes). */
static bool parse_literal(struct vocab_parser * vp) {
    bool is_bytes = false;
    bool is_raw = false;
    bool is_unicode = false;
    for (int i = 0; i < 3 && vp->p < vp->end; i++) {
        const uint8_t c = *vp->p;
        if ((c == 'b' || c == 'B') && !is_bytes && !is_unicode) {
            is_bytes = true;
        } else if ((c == 'r' || c == 'R') && !is_raw && !is_unicode) {
            is_raw = true;
        } else if ((c == 'u' || c == 'U') && !is_bytes && !is_raw && !is_unicode) {
            is_unicode = true;
        } else {
            break;
        }
        vp->p++;
    }
    if (vp->p == vp->end || (*vp->p != '\'' && *vp->p != '"')) {
        return parse_fail(vp, "expected a Python str or bytes literal after the token id");
    }
    const uint8_t quote = *vp->p++;
    if (vp->end - vp->p >= 2 && vp->p[0] == quote && vp->p[1] == quote) {
        return parse_fail(vp, "triple-quoted literals are not supported");
    }
    for (;;) {
        if (is_line_end(vp, vp->p)) {
            return parse_fail(vp, "unterminated literal");
        }
        const uint8_t c = *vp->p;
        if (c == quote) {
            vp->p++;
            return true;
        }
        if (c == '\\' && !is_raw) {
            if (!parse_escape(vp, is_bytes)) {
                return false;
            }
            continue;
        }
        if (c == '\\') {
            /* Raw: the backslash stays and protects a following quote or backslash. */
            vp->bytes[vp->n_bytes++] = c;
            vp->p++;
            if (!is_line_end(vp, vp->p) && (*vp->p == quote || *vp->p == '\\')) {
                vp->bytes[vp->n_bytes++] = *vp->p++;
            }
            continue;
        }
        if (c < 0x80) {
            vp->bytes[vp->n_bytes++] = c;
            vp->p++;
            continue;
        }
        if (is_bytes) {
            return parse_fail(vp, "bytes literal contains the non-ASCII byte 0x%02X", c);
        }
        const size_t n = utf8_sequence_length(vp->p, vp->end);
        if (n == 0) {
            return parse_fail(vp, "invalid UTF-8 byte 0x%02X in str literal", c);
        }
        memcpy(vp->bytes + vp->n_bytes, vp->p, n);
        vp->n_bytes += n;
        vp->p += n;
    }
}

static bool parse_decimal(struct vocab_parser * vp, uint64_t limit, uint64_t * value, const char * what) {
    if (vp->p == vp->end || *vp->p < '0' || *vp->p > '9') {
        return parse_fail(vp, "expected the %s (a decimal number)", what);
    }
    uint64_t v = 0;
    while (vp->p < vp->end && *vp->p >= '0' && *vp->p <= '9') {
        v = v * 10 + (uint64_t) (*vp->p - '0');
        if (v > limit) {
            return parse_fail(vp, "%s is larger than %llu", what, (unsigned long long) limit);
        }
        vp->p++;
    }
    *value = v;
    return true;
}

static void skip_blanks(struct vocab_parser * vp) {
    while (vp->p < vp->end && (*vp->p == ' ' || *vp->p == '\t')) {
        vp->p++;
    }
}

/* Lines end in \n, \r\n or \r (the reference reads the file with universal newlines). */
static void skip_line_end(struct vocab_parser * vp) {
    if (vp->p < vp->end && *vp->p == '\r') vp->p++;
    if (vp->p < vp->end && *vp->p == '\n') vp->p++;
}

static bool parse_line(struct vocab_parser * vp) {
    uint64_t id = 0;
    uint64_t n_bytes_declared = 0;
    if (!parse_decimal(vp, RWKV_TOKENIZER_MAX_ID, &id, "token id")) {
        return false;
    }
    if (vp->p == vp->end || *vp->p != ' ') {
        return parse_fail(vp, "expected a space after the token id %llu", (unsigned long long) id);
    }
    skip_blanks(vp);
    const size_t start = vp->n_bytes;
    if (!parse_literal(vp)) {
        return false;
    }
    const size_t n_bytes = vp->n_bytes - start;
    if (vp->p == vp->end || (*vp->p != ' ' && *vp->p != '\t')) {
        return parse_fail(vp, "expected a space after the literal of token %llu", (unsigned long long) id);
    }
    skip_blanks(vp);
    if (!parse_decimal(vp, UINT32_MAX, &n_bytes_declared, "byte length")) {
        return false;
    }
    skip_blanks(vp);
    if (!is_line_end(vp, vp->p)) {
        return parse_fail(vp, "unexpected text after the byte length of token %llu", (unsigned long long) id);
    }
    if (n_bytes_declared != n_bytes) {
        return parse_fail(vp, "token %llu is %zu bytes long but the line says %llu",
            (unsigned long long) id, n_bytes, (unsigned long long) n_bytes_declared);
    }
    struct vocab_entry * entry = &vp->entries[vp->n_entries++];
    entry->id = (uint32_t) id;
    entry->offset = (uint32_t) start;
    entry->n_bytes = (uint32_t) n_bytes;
    entry->line = (uint32_t) vp->line;
    skip_line_end(vp);
    return true;
}

static bool parse_vocab(struct vocab_parser * vp) {
    while (vp->p < vp->end) {
        vp->line++;
        /* Blank lines (a trailing newline, an empty last line) carry nothing. */
        const uint8_t * q = vp->p;
        while (q < vp->end && (*q == ' ' || *q == '\t')) q++;
        if (is_line_end(vp, q)) {
            vp->p = q;
            skip_line_end(vp);
            continue;
        }
        if (!parse_line(vp)) {
            return false;
        }
    }
    if (vp->n_entries == 0) {
        return rwkv_fail(vp->err, vp->print, FILE_DATA_ERROR, "vocabulary file %s has no tokens", vp->path);
    }
    return true;
}

/* ---- the double-array trie ---- */

/* A token as the trie builder sees it; sorted by bytes, then by line. */
struct trie_key {
    const uint8_t * bytes;
    uint32_t n_bytes;
    uint32_t line;
    uint32_t id;
};

struct trie_builder {
    struct rwkv_trie_cell * cells;
    uint64_t * used;       /* one bit per cell, so the search skips full stretches 64 at a time */
    uint64_t * used_base;  /* one bit per base value: no two nodes may share one */
    size_t n_cells;        /* allocated, a multiple of 64 */
    size_t check_from;     /* where the search for free cells starts */
    size_t check_from_by_width[9];  /* the same per number of children, by powers of two */
    size_t max_used;       /* largest used index */
};

static int lowest_set_bit(uint64_t x) {
#if defined(_MSC_VER)
    unsigned long index;
    _BitScanForward64(&index, x);
    return (int) index;
#else
    return __builtin_ctzll(x);
#endif
}

static bool grow_bits(uint64_t ** bits, size_t n_old, size_t n_new) {
    uint64_t * grown = realloc(*bits, n_new / 64 * sizeof(*grown));
    if (!grown) {
        return false;
    }
    memset(grown + n_old / 64, 0, (n_new - n_old) / 64 * sizeof(*grown));
    *bits = grown;
    return true;
}

static bool ensure_cells(struct trie_builder * tb, size_t n) {
    if (n <= tb->n_cells) {
        return true;
    }
    size_t grown = tb->n_cells ? tb->n_cells : 1024;
    while (grown < n) grown *= 2;
    struct rwkv_trie_cell * cells = realloc(tb->cells, grown * sizeof(*cells));
    if (!cells) {
        return false;
    }
    memset(cells + tb->n_cells, 0, (grown - tb->n_cells) * sizeof(*cells));
    tb->cells = cells;
    if (!grow_bits(&tb->used, tb->n_cells, grown) || !grow_bits(&tb->used_base, tb->n_cells, grown)) {
        return false;
    }
    tb->n_cells = grown;
    return true;
}

static bool bit_is_set(const uint64_t * bits, size_t i) {
    return ((bits[i / 64] >> (i % 64)) & 1) != 0;
}

static void set_bit(uint64_t * bits, size_t i) {
    bits[i / 64] |= (uint64_t) 1 << (i % 64);
}

static int width_class(int n_children) {
    int k = 0;
    while (k < 8 && (1 << k) < n_children) k++;
    return k;
}

/* A base, unused by any other node, that puts every child byte in a free cell: first fit,
 * with 256 cells of room after the base. Scanning a nearly full region again for every node
 * is what makes naive builds slow, so (as darts does) once a scan finds the cells it crossed
 * almost all used, later scans start after them; and nodes with about as many children as one
 * that had to try many holes start after those holes too (the holes stay for narrower nodes). */
static bool find_base(struct trie_builder * tb, const uint8_t * children, int n_children, uint32_t * base_out) {
    const int width = width_class(n_children);
    size_t start = tb->check_from > tb->check_from_by_width[width] ? tb->check_from : tb->check_from_by_width[width];
    if (start <= (size_t) children[0]) start = (size_t) children[0] + 1;
    size_t pos = start;
    size_t n_free_tried = 0;
    for (;;) {
        if (!ensure_cells(tb, pos + 257)) return false;
        const uint64_t free_bits = ~tb->used[pos / 64] & (~(uint64_t) 0 << (pos % 64));
        if (!free_bits) {
            pos = (pos / 64 + 1) * 64;
            continue;
        }
        pos = pos / 64 * 64 + (size_t) lowest_set_bit(free_bits);
        if (!ensure_cells(tb, pos + 257)) return false;
        const size_t base = pos - children[0];
        bool fits = !bit_is_set(tb->used_base, base);
        for (int j = 1; j < n_children && fits; j++) {
            fits = !bit_is_set(tb->used, base + children[j]);
        }
        if (fits) {
            if (base > RWKV_TRIE_BASE_MASK - 512) return false;
            if (n_free_tried * 20 <= pos - start + 1) {
                tb->check_from = pos;
            }
            if (n_free_tried > 16) {
                tb->check_from_by_width[width] = pos;
            }
            set_bit(tb->used_base, base);
            *base_out = (uint32_t) base;
            return true;
        }
        n_free_tried++;
        pos++;
    }
}

struct trie_work {
    uint32_t node;
    uint32_t lo, hi;  /* range of the sorted keys that share this node's prefix */
    uint32_t depth;   /* prefix length */
};

static void free_builder(struct trie_builder * tb) {
    free(tb->cells);
    free(tb->used);
    free(tb->used_base);
    memset(tb, 0, sizeof(*tb));
}

static bool build_trie(struct trie_builder * tb, const struct trie_key * keys, size_t n_keys, struct rwkv_error * err, bool print) {
    struct trie_work * queue = NULL;
    if (!ensure_cells(tb, 1024)) goto oom;
    set_bit(tb->used, 0);  /* the root; label 0: nobody's child */
    tb->check_from = 1;

    /* Breadth first: the wide nodes near the root are placed while the array is empty. Each
     * node is queued once, and there are at most total-bytes + 1 nodes. */
    size_t total_bytes = 0;
    for (size_t i = 0; i < n_keys; i++) total_bytes += keys[i].n_bytes;
    queue = malloc((total_bytes + 1) * sizeof(*queue));
    if (!queue) goto oom;
    size_t head = 0;
    size_t tail = 0;
    queue[tail++] = (struct trie_work) {0, 0, (uint32_t) n_keys, 0};
    uint8_t children[256];
    uint32_t child_lo[257];
    while (head < tail) {
        const struct trie_work w = queue[head++];
        struct rwkv_trie_cell * cell = &tb->cells[w.node];
        uint32_t i = w.lo;
        /* Keys that end here; with duplicates the one furthest down the file wins, as in the
         * reference (its bytes -> id dict keeps the last). */
        while (i < w.hi && keys[i].n_bytes == w.depth) {
            if (w.depth > 0) {
                cell->base |= RWKV_TRIE_TERMINAL;
                cell->label = (cell->label & RWKV_TRIE_LABEL_MASK) | (keys[i].id << RWKV_TRIE_TOKEN_SHIFT);
            }
            i++;
        }
        int n_children = 0;
        while (i < w.hi) {
            const uint8_t c = keys[i].bytes[w.depth];
            children[n_children] = c;
            child_lo[n_children] = i;
            n_children++;
            while (i < w.hi && keys[i].bytes[w.depth] == c) i++;
        }
        child_lo[n_children] = w.hi;
        if (n_children == 0) {
            continue;  /* a leaf: base 0 */
        }
        uint32_t base;
        if (!find_base(tb, children, n_children, &base)) goto oom;
        cell = &tb->cells[w.node];  /* find_base may have moved the array */
        cell->base |= base;
        for (int j = 0; j < n_children; j++) {
            const size_t t = (size_t) base + children[j];
            set_bit(tb->used, t);
            tb->cells[t].label = (uint32_t) children[j] + 1;
            if (t > tb->max_used) tb->max_used = t;
            queue[tail++] = (struct trie_work) {(uint32_t) t, child_lo[j], child_lo[j + 1], w.depth + 1};
        }
    }
    free(queue);
    /* Trim to the used cells plus 256 unused ones: bases are at most max_used, so base + byte
     * stays inside the array. */
    tb->n_cells = tb->max_used + 257;
    struct rwkv_trie_cell * trimmed = realloc(tb->cells, tb->n_cells * sizeof(*trimmed));
    if (trimmed) tb->cells = trimmed;
    free(tb->used);
    free(tb->used_base);
    tb->used = tb->used_base = NULL;
    return true;
oom:
    free(queue);
    free_builder(tb);
    return rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory building the tokenizer trie");
}

static int compare_keys(const void * a, const void * b) {
    const struct trie_key * x = a;
    const struct trie_key * y = b;
    const uint32_t n = x->n_bytes < y->n_bytes ? x->n_bytes : y->n_bytes;
    const int c = n ? memcmp(x->bytes, y->bytes, n) : 0;
    if (c) return c;
    if (x->n_bytes != y->n_bytes) return x->n_bytes < y->n_bytes ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* ---- the public functions ---- */

void rwkv_tokenizer_free(struct rwkv_tokenizer * tokenizer) {
    if (!tokenizer) {
        return;
    }
    free(tokenizer->spans);
    free(tokenizer->bytes);
    free(tokenizer->cells);
    free(tokenizer);
}

struct rwkv_tokenizer * rwkv_tokenizer_load(const char * vocab_path) {
    struct rwkv_error * err = rwkv_thread_error();
    const bool print = *rwkv_thread_print_errors();
    rwkv_error_clear(err);
    if (!vocab_path) {
        rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_FILE_OPEN, "rwkv_tokenizer_load: vocab_path is NULL");
        return NULL;
    }
    uint8_t * text = NULL;
    size_t n_text = 0;
    if (!read_whole_file(vocab_path, &text, &n_text, err, print)) {
        return NULL;
    }
    size_t n_lines = 1;
    for (size_t i = 0; i < n_text; i++) n_lines += text[i] == '\n' || text[i] == '\r';

    struct rwkv_tokenizer * tok = calloc(1, sizeof(*tok));
    struct vocab_parser vp = {
        .path = vocab_path, .p = text, .end = text + n_text, .line = 0, .err = err, .print = print,
        .entries = malloc(n_lines * sizeof(struct vocab_entry)),
        .bytes = malloc(n_text + RWKV_TOKENIZER_BYTES_PAD),
    };
    struct trie_key * keys = NULL;
    uint32_t * line_of_id = NULL;
    struct trie_builder tb = {0};
    if (!tok || !vp.entries || !vp.bytes) {
        rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory loading vocabulary file %s", vocab_path);
        goto fail;
    }
    if (!parse_vocab(&vp)) {
        goto fail;
    }
    memset(vp.bytes + vp.n_bytes, 0, RWKV_TOKENIZER_BYTES_PAD);
    uint8_t * shrunk = realloc(vp.bytes, vp.n_bytes + RWKV_TOKENIZER_BYTES_PAD);  /* escapes made it shorter than the file */
    if (shrunk) vp.bytes = shrunk;

    /* The id table: every id below the largest has a span; a repeated id is an error. */
    uint32_t max_id = 0;
    for (size_t i = 0; i < vp.n_entries; i++) {
        if (vp.entries[i].id > max_id) max_id = vp.entries[i].id;
    }
    tok->vocab_size = (size_t) max_id + 1;
    tok->spans = calloc(tok->vocab_size, sizeof(*tok->spans));
    line_of_id = calloc(tok->vocab_size, sizeof(*line_of_id));
    keys = malloc(vp.n_entries * sizeof(*keys));
    if (!tok->spans || !line_of_id || !keys) {
        rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory loading vocabulary file %s", vocab_path);
        goto fail;
    }
    for (size_t i = 0; i < vp.n_entries; i++) {
        const struct vocab_entry * e = &vp.entries[i];
        if (line_of_id[e->id]) {
            rwkv_fail(err, print, FILE_DATA_ERROR, "vocabulary file %s, line %u: token id %u was already defined on line %u",
                vocab_path, (unsigned) e->line, (unsigned) e->id, (unsigned) line_of_id[e->id]);
            goto fail;
        }
        line_of_id[e->id] = e->line;
        tok->spans[e->id].offset = e->offset;
        tok->spans[e->id].n_bytes = e->n_bytes;
        keys[i] = (struct trie_key) {vp.bytes + e->offset, e->n_bytes, e->line, e->id};
    }
    qsort(keys, vp.n_entries, sizeof(*keys), compare_keys);
    if (!build_trie(&tb, keys, vp.n_entries, err, print)) {
        goto fail;
    }
    tok->cells = tb.cells;
    tok->n_cells = tb.n_cells;
    tok->bytes = vp.bytes;
    free(keys);
    free(line_of_id);
    free(vp.entries);
    free(text);
    return tok;

fail:
    free(keys);
    free(line_of_id);
    free(vp.entries);
    free(vp.bytes);
    free(text);
    rwkv_tokenizer_free(tok);
    return NULL;
}

size_t rwkv_tokenizer_vocab_size(const struct rwkv_tokenizer * tokenizer) {
    return tokenizer ? tokenizer->vocab_size : 0;
}

bool rwkv_tokenizer_encode(const struct rwkv_tokenizer * tokenizer, const char * text, size_t n_bytes,
                           uint32_t * tokens, size_t capacity, size_t * n_tokens) {
    struct rwkv_error * err = rwkv_thread_error();
    const bool print = *rwkv_thread_print_errors();
    if (n_tokens) *n_tokens = 0;
    if (!tokenizer || !n_tokens || (!text && n_bytes > 0) || (!tokens && capacity > 0)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "rwkv_tokenizer_encode: %s is NULL",
            !tokenizer ? "tokenizer" : !n_tokens ? "n_tokens" : !text ? "text" : "tokens");
    }
    if (n_bytes > PTRDIFF_MAX || capacity > PTRDIFF_MAX / sizeof(uint32_t)) {  /* a negative count cast to size_t */
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "rwkv_tokenizer_encode: %s %zu is larger than any array",
            n_bytes > PTRDIFF_MAX ? "n_bytes" : "capacity", n_bytes > PTRDIFF_MAX ? n_bytes : capacity);
    }
    const uint8_t * src = (const uint8_t *) text;
    const struct rwkv_trie_cell * cells = tokenizer->cells;
    size_t count = 0;
    size_t pos = 0;
    while (pos < n_bytes) {
        /* Walk down from the root as far as the bytes go; remember the last node that ends a
         * token. The array has slack after every base, so t never leaves it. */
        uint32_t s = 0;
        uint32_t best_label = 0;
        size_t best_end = pos;
        for (size_t i = pos; i < n_bytes; i++) {
            const uint32_t base = cells[s].base & RWKV_TRIE_BASE_MASK;
            if (base == 0) break;  /* a leaf: no need to touch another cell */
            const uint32_t t = base + src[i];
            const uint32_t label = cells[t].label;
            if ((label & RWKV_TRIE_LABEL_MASK) != (uint32_t) src[i] + 1) break;
            s = t;
            if (cells[t].base & RWKV_TRIE_TERMINAL) {
                best_label = label;
                best_end = i + 1;
            }
        }
        if (best_end == pos) {
            return rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_KEY,
                "rwkv_tokenizer_encode: byte 0x%02X at offset %zu has no token in the vocabulary", src[pos], pos);
        }
        if (count < capacity) tokens[count] = best_label >> RWKV_TRIE_TOKEN_SHIFT;
        count++;
        pos = best_end;
    }
    *n_tokens = count;
    if (count > capacity) {
        /* The answer to a size query: recorded, never printed. */
        return rwkv_fail(err, false, RWKV_ERROR_ARGS, "rwkv_tokenizer_encode: %zu tokens do not fit in capacity %zu", count, capacity);
    }
    return true;
}

bool rwkv_tokenizer_decode(const struct rwkv_tokenizer * tokenizer, const uint32_t * tokens, size_t n_tokens,
                           char * out, size_t capacity, size_t * n_bytes) {
    struct rwkv_error * err = rwkv_thread_error();
    const bool print = *rwkv_thread_print_errors();
    if (n_bytes) *n_bytes = 0;
    if (!tokenizer || !n_bytes || (!tokens && n_tokens > 0) || (!out && capacity > 0)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "rwkv_tokenizer_decode: %s is NULL",
            !tokenizer ? "tokenizer" : !n_bytes ? "n_bytes" : !tokens ? "tokens" : "out");
    }
    if (n_tokens > PTRDIFF_MAX / sizeof(uint32_t) || capacity > PTRDIFF_MAX) {  /* a negative count cast to size_t */
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "rwkv_tokenizer_decode: %s %zu is larger than any array",
            capacity > PTRDIFF_MAX ? "capacity" : "n_tokens", capacity > PTRDIFF_MAX ? capacity : n_tokens);
    }
    const struct rwkv_token_span * spans = tokenizer->spans;
    const uint8_t * bytes = tokenizer->bytes;
    const size_t vocab_size = tokenizer->vocab_size;
    uint8_t * dst = (uint8_t *) out;
    size_t total = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        const uint32_t id = tokens[i];
        if (id >= vocab_size) {
            return rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_KEY,
                "rwkv_tokenizer_decode: token id %u at position %zu is out of range (vocabulary size %zu)",
                (unsigned) id, i, vocab_size);
        }
        const struct rwkv_token_span span = spans[id];
        if (span.n_bytes <= RWKV_TOKENIZER_BYTES_PAD && total <= capacity && capacity - total >= RWKV_TOKENIZER_BYTES_PAD) {
            /* One fixed-size move (the token bytes are padded); the excess is overwritten next. */
            memcpy(dst + total, bytes + span.offset, RWKV_TOKENIZER_BYTES_PAD);
        } else if (span.n_bytes > 0 && total <= capacity && span.n_bytes <= capacity - total) {  /* out may be NULL */
            memcpy(dst + total, bytes + span.offset, span.n_bytes);
        }
        total += span.n_bytes;
    }
    *n_bytes = total;
    if (total > capacity) {
        return rwkv_fail(err, false, RWKV_ERROR_ARGS, "rwkv_tokenizer_decode: %zu bytes do not fit in capacity %zu", total, capacity);
    }
    return true;
}
