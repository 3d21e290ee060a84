/* test_tokenizer.c: the World tokenizer through the public header: the vocabulary parser
 * (Python literal forms, crafted files), greedy longest match, the size-query convention,
 * round trips on the shipped vocabulary, and clear errors for bad files and arguments.
 *
 * Usage: test_tokenizer [path/to/rwkv_vocab_v20230424.txt] */
#include "rwkv.h"
#include "test_util.h"

#define FILE_DATA_ERROR (RWKV_ERROR_FILE | RWKV_ERROR_DATA)

static const char * write_vocab(const char * name, const char * text) {
    const char * path = test_temp_path(name);
    if (!test_write_bytes(path, text, strlen(text))) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    return path;
}

/* Every single byte as ids 1..256 (b'\xHH' literals), then `extra` lines. */
static const char * write_byte_vocab(const char * name, const char * extra) {
    size_t capacity = 256 * 24 + strlen(extra) + 1;
    char * text = malloc(capacity);
    size_t n = 0;
    for (int b = 0; b < 256; b++) {
        n += (size_t) snprintf(text + n, capacity - n, "%d b'\\x%02x' 1\n", b + 1, b);
    }
    snprintf(text + n, capacity - n, "%s", extra);
    const char * path = write_vocab(name, text);
    free(text);
    return path;
}

static bool encode_all(const struct rwkv_tokenizer * tok, const void * text, size_t n_bytes, uint32_t * tokens, size_t * n_tokens) {
    return rwkv_tokenizer_encode(tok, (const char *) text, n_bytes, tokens, n_bytes, n_tokens);
}

/* Decodes one id; returns its byte length, the bytes in out (at least 64 bytes). */
static size_t token_bytes(const struct rwkv_tokenizer * tok, uint32_t id, char * out) {
    size_t n = 0;
    CHECK_MSG(rwkv_tokenizer_decode(tok, &id, 1, out, 64, &n), "decode id %u: %s", (unsigned) id, rwkv_get_last_error_message(NULL));
    return n;
}

/* The literal forms the parser must read, each checked through decode. */
static void test_literals(void) {
    const char * path = write_vocab("literals.txt",
        "1 'a' 1\r\n"                    /* CRLF line ends, as in the shipped file */
        "2 '\\n' 1\r\n"
        "3 \"'\" 1\r\n"                  /* double quotes around a single quote */
        "4 '\\'\\\"\\\\' 3\r\n"          /* \' \" \\ */
        "5 '\\u00e9' 2\r\n"              /* str: code points are UTF-8 encoded */
        "6 '\\U0001F600' 4\r\n"
        "7 '\xc3\xa9t\xc3\xa9' 5\r\n"    /* raw UTF-8 in a str */
        "8 '\\x80' 2\r\n"                /* \x in a str is a code point: U+0080 */
        "9 b'\\x80\\xff' 2\r\n"          /* \x in bytes is a byte */
        "10 b'\\u00e9' 6\r\n"            /* \u means nothing in bytes: six characters */
        "11 '\\101\\7' 2\r\n"            /* octal */
        "12 '\\d' 2\r\n"                 /* an unknown escape keeps its backslash */
        "13 r'\\n' 2\r\n"                /* raw */
        "14 'a b' 3\r\n"                 /* spaces inside the literal */
        "15 '\\t\\r\\a\\b\\f\\v' 6\r\n"
        "40 B'x' 1\r\n"                  /* a gap in the ids; capital prefix */
        "\r\n");
    struct rwkv_tokenizer * tok = rwkv_tokenizer_load(path);
    CHECK_MSG(tok != NULL, "%s", rwkv_get_last_error_message(NULL));
    if (!tok) return;
    CHECK(rwkv_tokenizer_vocab_size(tok) == 41);
    static const struct { uint32_t id; const char * bytes; size_t n; } expected[] = {
        {1, "a", 1}, {2, "\n", 1}, {3, "'", 1}, {4, "'\"\\", 3}, {5, "\xc3\xa9", 2},
        {6, "\xf0\x9f\x98\x80", 4}, {7, "\xc3\xa9t\xc3\xa9", 5}, {8, "\xc2\x80", 2}, {9, "\x80\xff", 2},
        {10, "\\u00e9", 6}, {11, "A\a", 2}, {12, "\\d", 2}, {13, "\\n", 2}, {14, "a b", 3},
        {15, "\t\r\a\b\f\v", 6}, {40, "x", 1}, {0, "", 0}, {20, "", 0},  /* ids the file lacks: empty */
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        char out[64];
        const size_t n = token_bytes(tok, expected[i].id, out);
        CHECK_MSG(n == expected[i].n && memcmp(out, expected[i].bytes, n) == 0, "id %u: %zu bytes", (unsigned) expected[i].id, n);
    }
    rwkv_tokenizer_free(tok);
}

/* Greedy longest match, including a walk past a prefix that is no token ("abcd") and ties
 * between duplicate byte strings (the line further down wins, as in the reference). */
static void test_longest_match(void) {
    const char * path = write_byte_vocab("greedy.txt",
        "300 'ab' 2\n301 'abc' 3\n302 'abcde' 5\n303 'xyz' 3\n304 'xyz' 3\n");
    struct rwkv_tokenizer * tok = rwkv_tokenizer_load(path);
    CHECK_MSG(tok != NULL, "%s", rwkv_get_last_error_message(NULL));
    if (!tok) return;
    static const struct { const char * text; uint32_t ids[8]; size_t n; } cases[] = {
        {"abcde", {302}, 1},
        {"abcdx", {301, 'd' + 1, 'x' + 1}, 3},
        {"abab", {300, 300}, 2},
        {"a", {'a' + 1}, 1},
        {"xyzxy", {304, 'x' + 1, 'y' + 1}, 3},
        {"", {0}, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t ids[16];
        size_t n = 99;
        const size_t len = strlen(cases[i].text);
        CHECK(rwkv_tokenizer_encode(tok, cases[i].text, len, ids, len, &n));
        CHECK_MSG(n == cases[i].n && memcmp(ids, cases[i].ids, n * sizeof(uint32_t)) == 0, "\"%s\": %zu tokens", cases[i].text, n);
    }
    /* Every byte value alone. */
    for (int b = 0; b < 256; b++) {
        const uint8_t byte = (uint8_t) b;
        uint32_t id = 0;
        size_t n = 0;
        CHECK_MSG(encode_all(tok, &byte, 1, &id, &n) && n == 1 && id == (uint32_t) b + 1, "byte %d", b);
    }
    rwkv_tokenizer_free(tok);
}

/* Capacity 0 asks for the size; too small a capacity writes what fits and fails. */
static void test_sizing(const struct rwkv_tokenizer * tok) {
    const char * text = "Hello, world! Sizing test \xe4\xb8\x96\xe7\x95\x8c.";
    const size_t len = strlen(text);
    size_t needed = 0;
    CHECK(!rwkv_tokenizer_encode(tok, text, len, NULL, 0, &needed));
    CHECK(rwkv_get_last_error(NULL) == RWKV_ERROR_ARGS);
    CHECK(needed > 2 && needed <= len);

    uint32_t ids[64];
    for (size_t i = 0; i < 64; i++) ids[i] = 0xDEADBEEF;
    size_t n = 0;
    CHECK(!rwkv_tokenizer_encode(tok, text, len, ids, needed - 1, &n));
    CHECK(n == needed);
    CHECK_MSG(ids[needed - 1] == 0xDEADBEEF, "wrote past the capacity");
    CHECK(ids[needed - 2] != 0xDEADBEEF);
    CHECK(rwkv_tokenizer_encode(tok, text, len, ids, needed, &n) && n == needed);

    size_t n_bytes = 0;
    CHECK(!rwkv_tokenizer_decode(tok, ids, n, NULL, 0, &n_bytes));
    CHECK(rwkv_get_last_error(NULL) == RWKV_ERROR_ARGS);
    CHECK(n_bytes == len);
    char out[128];
    memset(out, '#', sizeof(out));
    size_t got = 0;
    CHECK(!rwkv_tokenizer_decode(tok, ids, n, out, len - 1, &got) && got == len);
    CHECK_MSG(out[len - 1] == '#', "wrote past the capacity");
    CHECK(rwkv_tokenizer_decode(tok, ids, n, out, len, &got) && got == len && memcmp(out, text, len) == 0);
    /* Room to spare: the short-token fast path. */
    CHECK(rwkv_tokenizer_decode(tok, ids, n, out, sizeof(out), &got) && got == len && memcmp(out, text, len) == 0);
    /* Nothing in, nothing out. */
    CHECK(rwkv_tokenizer_encode(tok, NULL, 0, NULL, 0, &n) && n == 0);
    CHECK(rwkv_tokenizer_decode(tok, NULL, 0, NULL, 0, &got) && got == 0);
}

static void test_argument_errors(const struct rwkv_tokenizer * tok) {
    uint32_t ids[4];
    char out[16];
    size_t n = 7;
    CHECK(rwkv_tokenizer_load(NULL) == NULL);
    CHECK(rwkv_get_last_error(NULL) & RWKV_ERROR_ARGS);
    rwkv_tokenizer_free(NULL);
    CHECK(rwkv_tokenizer_vocab_size(NULL) == 0);
    CHECK(!rwkv_tokenizer_encode(NULL, "a", 1, ids, 4, &n) && n == 0);
    CHECK(strstr(rwkv_get_last_error_message(NULL), "tokenizer is NULL") != NULL);
    CHECK(!rwkv_tokenizer_encode(tok, NULL, 1, ids, 4, &n));
    CHECK(strstr(rwkv_get_last_error_message(NULL), "text is NULL") != NULL);
    CHECK(!rwkv_tokenizer_encode(tok, "a", 1, NULL, 4, &n));
    CHECK(!rwkv_tokenizer_encode(tok, "a", 1, ids, 4, NULL));
    CHECK(rwkv_get_last_error(NULL) == RWKV_ERROR_ARGS);
    CHECK(!rwkv_tokenizer_decode(NULL, ids, 1, out, 16, &n));
    CHECK(!rwkv_tokenizer_decode(tok, NULL, 1, out, 16, &n));
    CHECK(!rwkv_tokenizer_decode(tok, ids, 0, NULL, 16, &n));
    CHECK(!rwkv_tokenizer_decode(tok, ids, 0, out, 16, NULL));

    const uint32_t bad[3] = {33155, 70000, 1};
    CHECK(!rwkv_tokenizer_decode(tok, bad, 3, out, 16, &n) && n == 0);
    CHECK(rwkv_get_last_error(NULL) == (RWKV_ERROR_ARGS | RWKV_ERROR_KEY));
    const char * message = rwkv_get_last_error_message(NULL);
    CHECK_MSG(strstr(message, "70000") && strstr(message, "position 1"), "message: %s", message);
}

/* A bad vocabulary file gives NULL, FILE | DATA and a message naming the line. */
static void test_bad_files(void) {
    static const struct { const char * name; const char * text; const char * needle; } cases[] = {
        {"length.txt", "1 'a' 1\n2 'bc' 3\n", "line 2"},
        {"unterminated.txt", "1 'abc 3\n", "unterminated"},
        {"no_literal.txt", "1 abc 3\n", "literal"},
        {"short_hex.txt", "1 '\\x4' 1\n", "hex digits"},
        {"short_u.txt", "1 '\\u12' 1\n", "hex digits"},
        {"not_unicode.txt", "1 '\\U00110000' 4\n", "code point"},
        {"surrogate.txt", "1 '\\ud800' 3\n", "surrogate"},
        {"bytes_utf8.txt", "1 b'\xc3\xa9' 2\n", "non-ASCII"},
        {"bad_utf8.txt", "1 '\xff' 1\n", "UTF-8"},
        {"duplicate_id.txt", "1 'a' 1\n2 'b' 1\n1 'c' 1\n", "already defined on line 1"},
        {"id_text.txt", "x 'a' 1\n", "token id"},
        {"id_huge.txt", "99999999999 'a' 1\n", "larger than"},
        {"no_length.txt", "1 'a'\n", "space after the literal"},
        {"trailing.txt", "1 'a' 1 junk\n", "unexpected text"},
        {"triple.txt", "1 '''a''' 1\n", "triple"},
        {"named.txt", "1 '\\N{BULLET}' 3\n", "\\N"},
        {"empty.txt", "", "no tokens"},
        {"blank.txt", "\n\n  \n", "no tokens"},
        {"escape_at_end.txt", "1 'a\\", "backslash"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char * path = write_vocab(cases[i].name, cases[i].text);
        struct rwkv_tokenizer * tok = rwkv_tokenizer_load(path);
        CHECK_MSG(tok == NULL, "%s loaded", cases[i].name);
        rwkv_tokenizer_free(tok);
        const char * message = rwkv_get_last_error_message(NULL);
        CHECK_MSG(strstr(message, cases[i].needle) != NULL, "%s: message \"%s\" lacks \"%s\"", cases[i].name, message, cases[i].needle);
        CHECK_MSG(strstr(message, path) != NULL, "%s: message \"%s\" lacks the path", cases[i].name, message);
        const enum rwkv_error_flags flags = rwkv_get_last_error(NULL);
        CHECK_MSG(flags == FILE_DATA_ERROR, "%s: flags %d", cases[i].name, (int) flags);
    }

    const char * missing = test_temp_path("missing.txt");
    CHECK(rwkv_tokenizer_load(missing) == NULL);
    CHECK(rwkv_get_last_error(NULL) == (RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN));
    CHECK(strstr(rwkv_get_last_error_message(NULL), missing) != NULL);
    CHECK_MSG(rwkv_tokenizer_load(test_temp_dir) == NULL, "a directory loaded");
    CHECK(rwkv_get_last_error(NULL) & RWKV_ERROR_FILE);

    /* A vocabulary without some byte: encoding that byte fails, naming it. */
    const char * path = write_vocab("no_z.txt", "1 'a' 1\n2 'b' 1\n");
    struct rwkv_tokenizer * tok = rwkv_tokenizer_load(path);
    CHECK(tok != NULL);
    if (tok) {
        uint32_t ids[4];
        size_t n = 0;
        CHECK(!rwkv_tokenizer_encode(tok, "abz", 3, ids, 3, &n));
        CHECK(rwkv_get_last_error(NULL) == (RWKV_ERROR_ARGS | RWKV_ERROR_KEY));
        CHECK(strstr(rwkv_get_last_error_message(NULL), "0x7A at offset 2") != NULL);
        rwkv_tokenizer_free(tok);
    }
}

/* The shipped vocabulary: known ids, and decode(encode(x)) == x for any bytes. */
static void test_world_vocab(const char * vocab_path) {
    struct rwkv_tokenizer * tok = rwkv_tokenizer_load(vocab_path);
    CHECK_MSG(tok != NULL, "%s", rwkv_get_last_error_message(NULL));
    if (!tok) return;
    CHECK(rwkv_tokenizer_vocab_size(tok) == 65530);

    /* Ids from the reference TRIE_TOKENIZER. */
    const char * hello = "Hello \xe4\xb8\x96\xe7\x95\x8c";  /* "Hello 世界" */
    const uint32_t hello_ids[] = {33155, 33, 10267, 14610};
    uint32_t ids[4096];
    size_t n = 0;
    CHECK(encode_all(tok, hello, strlen(hello), ids, &n));
    CHECK(n == 4 && memcmp(ids, hello_ids, sizeof(hello_ids)) == 0);

    uint8_t text[4096];
    char out[4096 + 64];
    for (int round = 0; round < 200; round++) {
        const size_t len = (size_t) (tw_random() % 4096);
        for (size_t i = 0; i < len; i++) {
            /* Mostly ASCII letters and spaces (long tokens), sometimes any byte. */
            const uint64_t r = tw_random();
            text[i] = (r & 3) ? (uint8_t) " etaoinshrdlu\n"[(r >> 8) % 14] : (uint8_t) (r >> 16);
        }
        size_t got = 0;
        CHECK(encode_all(tok, text, len, ids, &n) && n <= len);
        CHECK(rwkv_tokenizer_decode(tok, ids, n, out, sizeof(out), &got) && got == len && memcmp(out, text, len) == 0);
    }
    test_sizing(tok);
    test_argument_errors(tok);
    rwkv_tokenizer_free(tok);
}

int main(int argc, char ** argv) {
    rwkv_set_print_errors(NULL, false);
    test_make_temp_dir();
    test_literals();
    test_longest_match();
    test_bad_files();
    const char * vocab_path = argc > 1 ? argv[1] : NULL;
    if (vocab_path && test_file_exists(vocab_path)) {
        test_world_vocab(vocab_path);
    } else {
        printf("test_tokenizer: no World vocabulary given: skipping its checks\n");
    }
    test_remove_temp_dir();
    return test_finish("test_tokenizer");
}
