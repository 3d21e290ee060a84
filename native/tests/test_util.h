/* test_util.h: what the C tests share: check macros, a temp directory, and a writer for
 * rwkv.cpp's .bin format (written here from the format description, independent of the
 * library's reader) that can also load a fixture file, so tests can craft and mutate models. */
#ifndef RWKV_TEST_UTIL_H
#define RWKV_TEST_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ctest's SKIP_RETURN_CODE. */
#define TEST_SKIPPED 77

static int test_failure_count;

#define CHECK(cond) CHECK_MSG(cond, "%s", "")

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            test_failure_count++;                                             \
        }                                                                     \
    } while (0)

static int test_finish(const char * name) {
    if (test_failure_count) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failure_count);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* ---- files ---- */

static char test_temp_dir[256];

static const char * test_make_temp_dir(void) {
    const char * base = getenv("TMPDIR");
    snprintf(test_temp_dir, sizeof(test_temp_dir), "%s/rwkv_cpp_test_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(test_temp_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    return test_temp_dir;
}

/* Paths handed out by test_temp_path, removed by test_remove_temp_dir. */
#define TEST_MAX_TEMP_FILES 256
static char * test_temp_files[TEST_MAX_TEMP_FILES];
static int test_temp_file_count;

static const char * test_temp_path(const char * name) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", test_temp_dir, name);
    for (int i = 0; i < test_temp_file_count; i++) {
        if (strcmp(test_temp_files[i], path) == 0) {
            return test_temp_files[i];
        }
    }
    if (test_temp_file_count == TEST_MAX_TEMP_FILES) {
        fprintf(stderr, "too many temp files\n");
        exit(1);
    }
    test_temp_files[test_temp_file_count] = strdup(path);
    return test_temp_files[test_temp_file_count++];
}

static void test_remove_temp_dir(void) {
    for (int i = 0; i < test_temp_file_count; i++) {
        struct stat st;
        if (stat(test_temp_files[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            rmdir(test_temp_files[i]);
        } else {
            unlink(test_temp_files[i]);
        }
        free(test_temp_files[i]);
    }
    test_temp_file_count = 0;
    rmdir(test_temp_dir);
}

static bool test_write_bytes(const char * path, const void * data, size_t n_bytes) {
    FILE * f = fopen(path, "wb");
    if (!f) {
        return false;
    }
    const bool ok = fwrite(data, 1, n_bytes, f) == n_bytes;
    return fclose(f) == 0 && ok;
}

/* The whole file in a malloc'ed buffer; NULL if it cannot be read. */
static uint8_t * test_read_file(const char * path, size_t * n_bytes) {
    FILE * f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t * data = malloc(size > 0 ? (size_t) size : 1);
    if (!data || fread(data, 1, (size_t) size, f) != (size_t) size) {
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *n_bytes = (size_t) size;
    return data;
}

static bool test_file_exists(const char * path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The fixture directory (rwkv.cpp's model files): `arg` when given, else the build-time
 * default. NULL when it does not exist. */
static const char * test_fixture_dir(const char * arg) {
    const char * dir = arg;
#ifdef RWKV_TEST_FIXTURE_DIR
    if (!dir) {
        dir = RWKV_TEST_FIXTURE_DIR;
    }
#endif
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return NULL;
    }
    return dir;
}

static const char * test_fixture_path(const char * dir, const char * name) {
    static char paths[8][512];
    static int next;
    char * path = paths[next++ % 8];
    snprintf(path, sizeof(paths[0]), "%s/%s", dir, name);
    return path;
}

/* ---- a writer for rwkv.cpp's .bin format ----
 * Header: six int32 (magic, version, n_vocab, n_embed, n_layer, data_type). Then per tensor:
 * int32 n_dims, int32 key length, int32 data type, n_dims int32 sizes in ggml order (row
 * length first), the key bytes, the data. */

enum { TW_F32 = 0, TW_F16 = 1, TW_Q4_0 = 2, TW_Q4_1 = 3, TW_Q5_0 = 7, TW_Q5_1 = 8, TW_Q8_0 = 9 };

struct tw_tensor {
    char name[300];
    int32_t n_dims;
    int32_t key_length;  /* normally strlen(name); tests may lie */
    int32_t type;
    int32_t ne[4];
    uint8_t * data;
    size_t n_bytes;
};

struct tw_model {
    int32_t header[6];
    struct tw_tensor * tensors;
    size_t n_tensors;
    size_t capacity;
};

static uint64_t tw_random_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: deterministic, so failures reproduce. */
static uint64_t tw_random(void) {
    tw_random_state ^= tw_random_state >> 12;
    tw_random_state ^= tw_random_state << 25;
    tw_random_state ^= tw_random_state >> 27;
    return tw_random_state * 0x2545f4914f6cdd1dull;
}

/* Uniform in [lo, hi). */
static float tw_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float) (tw_random() >> 40) / (float) (1ull << 24);
}

static void tw_init(struct tw_model * m, int32_t version, int32_t n_vocab, int32_t n_embed, int32_t n_layer, int32_t data_type) {
    memset(m, 0, sizeof(*m));
    m->header[0] = 0x67676d66;
    m->header[1] = version;
    m->header[2] = n_vocab;
    m->header[3] = n_embed;
    m->header[4] = n_layer;
    m->header[5] = data_type;
}

static size_t tw_type_bytes(int32_t type, size_t n_elements) {
    /* ggml block sizes: 32 weights a block for the quantized types. */
    switch (type) {
        case TW_F32: return 4 * n_elements;
        case TW_F16: return 2 * n_elements;
        case TW_Q4_0: return n_elements / 32 * 18;
        case TW_Q4_1: return n_elements / 32 * 20;
        case TW_Q5_0: return n_elements / 32 * 22;
        case TW_Q5_1: return n_elements / 32 * 24;
        case TW_Q8_0: return n_elements / 32 * 34;
        default: return 0;
    }
}

/* Adds a tensor with explicit data bytes (copied). ne in ggml order, unused ones ignored. */
static struct tw_tensor * tw_add_raw(struct tw_model * m, const char * name, int32_t type, int32_t n_dims,
                                     const int32_t * ne, const void * data, size_t n_bytes) {
    if (m->n_tensors == m->capacity) {
        m->capacity = m->capacity ? 2 * m->capacity : 64;
        m->tensors = realloc(m->tensors, m->capacity * sizeof(*m->tensors));
    }
    struct tw_tensor * t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->key_length = (int32_t) strlen(t->name);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims && d < 4; d++) {
        t->ne[d] = ne[d];
    }
    t->data = malloc(n_bytes ? n_bytes : 1);
    if (data) {
        memcpy(t->data, data, n_bytes);
    } else {
        memset(t->data, 0, n_bytes);
    }
    t->n_bytes = n_bytes;
    return t;
}

/* Adds a float tensor of shape ne0 x ne1 (ggml order; ne1 1 for vectors) filled with
 * uniform random values in [lo, hi), stored as F32 or F16. */
static struct tw_tensor * tw_add(struct tw_model * m, const char * name, int32_t type, int32_t ne0, int32_t ne1, float lo, float hi) {
    const int32_t ne[2] = {ne0, ne1};
    const size_t n = (size_t) ne0 * (size_t) ne1;
    struct tw_tensor * t = tw_add_raw(m, name, type, ne1 > 1 ? 2 : 1, ne, NULL, tw_type_bytes(type, n));
    for (size_t i = 0; i < n; i++) {
        const float value = tw_uniform(lo, hi);
        if (type == TW_F32) {
            memcpy(t->data + 4 * i, &value, 4);
        } else {
            /* fp16 by truncation, tiny values to zero: exact rounding does not matter here. */
            uint32_t bits;
            memcpy(&bits, &value, 4);
            const uint32_t sign = (bits >> 16) & 0x8000;
            const int32_t exponent = (int32_t) ((bits >> 23) & 0xff) - 127 + 15;
            uint16_t half = (uint16_t) sign;
            if (exponent > 0 && exponent < 31) {
                half = (uint16_t) (sign | ((uint32_t) exponent << 10) | ((bits >> 13) & 0x3ff));
            }
            memcpy(t->data + 2 * i, &half, 2);
        }
    }
    return t;
}

static struct tw_tensor * tw_find(struct tw_model * m, const char * name) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        if (strcmp(m->tensors[i].name, name) == 0) {
            return &m->tensors[i];
        }
    }
    return NULL;
}

static void tw_remove(struct tw_model * m, const char * name) {
    struct tw_tensor * t = tw_find(m, name);
    if (t) {
        free(t->data);
        const size_t i = (size_t) (t - m->tensors);
        memmove(t, t + 1, (m->n_tensors - i - 1) * sizeof(*t));
        m->n_tensors--;
    }
}

static void tw_free(struct tw_model * m) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        free(m->tensors[i].data);
    }
    free(m->tensors);
    memset(m, 0, sizeof(*m));
}

static void tw_copy(struct tw_model * dst, const struct tw_model * src) {
    *dst = *src;
    dst->tensors = malloc(src->capacity * sizeof(*dst->tensors));
    for (size_t i = 0; i < src->n_tensors; i++) {
        dst->tensors[i] = src->tensors[i];
        dst->tensors[i].data = malloc(src->tensors[i].n_bytes ? src->tensors[i].n_bytes : 1);
        memcpy(dst->tensors[i].data, src->tensors[i].data, src->tensors[i].n_bytes);
    }
}

static bool tw_write(const struct tw_model * m, const char * path) {
    FILE * f = fopen(path, "wb");
    if (!f) {
        return false;
    }
    bool ok = fwrite(m->header, 4, 6, f) == 6;
    for (size_t i = 0; i < m->n_tensors && ok; i++) {
        const struct tw_tensor * t = &m->tensors[i];
        const int32_t record[3] = {t->n_dims, t->key_length, t->type};
        const int32_t n_dims = t->n_dims < 0 ? 0 : t->n_dims > 4 ? 4 : t->n_dims;
        ok = fwrite(record, 4, 3, f) == 3
            && fwrite(t->ne, 4, (size_t) n_dims, f) == (size_t) n_dims
            && fwrite(t->name, 1, strlen(t->name), f) == strlen(t->name)
            && fwrite(t->data, 1, t->n_bytes, f) == t->n_bytes;
    }
    return fclose(f) == 0 && ok;
}

/* Reads a well-formed file (a fixture) into m. */
static bool tw_read(struct tw_model * m, const char * path) {
    size_t n_bytes;
    uint8_t * data = test_read_file(path, &n_bytes);
    if (!data || n_bytes < 24) {
        free(data);
        return false;
    }
    memset(m, 0, sizeof(*m));
    memcpy(m->header, data, 24);
    size_t pos = 24;
    while (pos + 12 <= n_bytes) {
        int32_t record[3], ne[4] = {1, 1, 1, 1};
        memcpy(record, data + pos, 12);
        pos += 12;
        const int32_t n_dims = record[0], key_length = record[1], type = record[2];
        if (n_dims < 1 || n_dims > 3 || key_length < 1 || key_length > 255) {
            break;
        }
        memcpy(ne, data + pos, 4 * (size_t) n_dims);
        pos += 4 * (size_t) n_dims;
        char name[256];
        memcpy(name, data + pos, (size_t) key_length);
        name[key_length] = '\0';
        pos += (size_t) key_length;
        const size_t n_data = tw_type_bytes(type, (size_t) ne[0] * (size_t) ne[1] * (size_t) ne[2]);
        if (pos + n_data > n_bytes) {
            break;
        }
        tw_add_raw(m, name, type, n_dims, ne, data + pos, n_data);
        pos += n_data;
    }
    const bool ok = pos == n_bytes;
    free(data);
    if (!ok) {
        tw_free(m);
    }
    return ok;
}

/* A small valid RWKV v4 model with random weights: n_vocab V, n_embed C, n_layer L, FFN width F.
 * Matrices in `matrix_type` (F32 or F16), vectors F32, in rwkv.cpp's tensor order. */
static void tw_make_v4(struct tw_model * m, int32_t V, int32_t C, int32_t L, int32_t F, int32_t matrix_type) {
    tw_init(m, 100, V, C, L, matrix_type);
    char name[128];
    tw_add(m, "emb.weight", matrix_type, C, V, -1.0f, 1.0f);
    for (int32_t i = 0; i < L; i++) {
#define TW_LAYER(suffix) (snprintf(name, sizeof(name), "blocks.%d.%s", (int) i, suffix), name)
        tw_add(m, TW_LAYER("ln1.weight"), TW_F32, C, 1, 0.5f, 1.5f);
        tw_add(m, TW_LAYER("ln1.bias"), TW_F32, C, 1, -0.1f, 0.1f);
        tw_add(m, TW_LAYER("ln2.weight"), TW_F32, C, 1, 0.5f, 1.5f);
        tw_add(m, TW_LAYER("ln2.bias"), TW_F32, C, 1, -0.1f, 0.1f);
        tw_add(m, TW_LAYER("att.time_decay"), TW_F32, C, 1, -2.0f, 1.0f);
        tw_add(m, TW_LAYER("att.time_first"), TW_F32, C, 1, -1.0f, 1.0f);
        tw_add(m, TW_LAYER("att.time_mix_k"), TW_F32, C, 1, 0.0f, 1.0f);
        tw_add(m, TW_LAYER("att.time_mix_v"), TW_F32, C, 1, 0.0f, 1.0f);
        tw_add(m, TW_LAYER("att.time_mix_r"), TW_F32, C, 1, 0.0f, 1.0f);
        tw_add(m, TW_LAYER("att.key.weight"), matrix_type, C, C, -0.3f, 0.3f);
        tw_add(m, TW_LAYER("att.value.weight"), matrix_type, C, C, -0.3f, 0.3f);
        tw_add(m, TW_LAYER("att.receptance.weight"), matrix_type, C, C, -0.3f, 0.3f);
        tw_add(m, TW_LAYER("att.output.weight"), matrix_type, C, C, -0.3f, 0.3f);
        tw_add(m, TW_LAYER("ffn.time_mix_k"), TW_F32, C, 1, 0.0f, 1.0f);
        tw_add(m, TW_LAYER("ffn.time_mix_r"), TW_F32, C, 1, 0.0f, 1.0f);
        tw_add(m, TW_LAYER("ffn.key.weight"), matrix_type, C, F, -0.3f, 0.3f);
        tw_add(m, TW_LAYER("ffn.value.weight"), matrix_type, F, C, -0.3f, 0.3f);
        tw_add(m, TW_LAYER("ffn.receptance.weight"), matrix_type, C, C, -0.3f, 0.3f);
        if (i == 0) {
            tw_add(m, "blocks.0.ln0.weight", TW_F32, C, 1, 0.5f, 1.5f);
            tw_add(m, "blocks.0.ln0.bias", TW_F32, C, 1, -0.1f, 0.1f);
        }
#undef TW_LAYER
    }
    tw_add(m, "ln_out.weight", TW_F32, C, 1, 0.5f, 1.5f);
    tw_add(m, "ln_out.bias", TW_F32, C, 1, -0.1f, 0.1f);
    tw_add(m, "head.weight", matrix_type, C, V, -0.5f, 0.5f);
}

#endif
