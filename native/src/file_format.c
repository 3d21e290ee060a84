/* file_format.c: reading and validating rwkv.cpp's .bin files (magic 'ggmf', versions 100 and 101).
 * Layout: six int32 (magic, version, n_vocab, n_embed, n_layer, data_type), then tensors until
 * EOF: int32 n_dims, int32 key length, int32 data type, n_dims int32 sizes (ggml order),
 * key bytes, raw data. */
#include "file_format.h"

#include <stdlib.h>
#include <string.h>
#include "rwkv.h"
#include "tensor_types.h"

/* Limits far above any real model that keep every size computation inside 64 bits. */
#define MAX_VOCAB (1u << 24)
#define MAX_EMBED (1u << 17)
#define MAX_LAYER 4096u
#define MAX_DIM (1ull << 31)
#define MAX_ELEMENTS (1ull << 40)

struct reader {
    const uint8_t * data;
    uint64_t n_bytes;
    uint64_t pos;
};

static bool read_u32(struct reader * r, uint32_t * value) {
    if (r->n_bytes - r->pos < 4) {
        return false;
    }
    memcpy(value, r->data + r->pos, 4);  /* files are little-endian, as are all supported hosts */
    r->pos += 4;
    return true;
}

static bool parse_header(struct reader * r, struct rwkv_file_header * h, struct rwkv_error * err, bool print) {
    if (r->n_bytes < 24) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ,
            "file too short for a model header: %llu bytes, need 24", (unsigned long long) r->n_bytes);
    }
    read_u32(r, &h->magic);
    read_u32(r, &h->version);
    read_u32(r, &h->n_vocab);
    read_u32(r, &h->n_embed);
    read_u32(r, &h->n_layer);
    read_u32(r, &h->data_type);
    if (h->magic != RWKV_FILE_MAGIC) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_MAGIC,
            "not an rwkv.cpp model file: magic 0x%08x, expected 0x%08x", h->magic, RWKV_FILE_MAGIC);
    }
    if (h->version < RWKV_FILE_VERSION_MIN || h->version > RWKV_FILE_VERSION_MAX) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_VERSION,
            "unsupported file version %d, expected %d or %d", (int32_t) h->version, RWKV_FILE_VERSION_MIN, RWKV_FILE_VERSION_MAX);
    }
    if (h->n_vocab == 0 || h->n_vocab > MAX_VOCAB) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_DATA, "header n_vocab %u out of range 1..%u", h->n_vocab, MAX_VOCAB);
    }
    if (h->n_embed == 0 || h->n_embed > MAX_EMBED) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_DATA, "header n_embed %u out of range 1..%u", h->n_embed, MAX_EMBED);
    }
    if (h->n_layer == 0 || h->n_layer > MAX_LAYER) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_DATA, "header n_layer %u out of range 1..%u", h->n_layer, MAX_LAYER);
    }
    if (!rwkv_type_is_known(h->data_type)) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_DATA_TYPE, "header data type %u is unknown", h->data_type);
    }
    return true;
}

static bool parse_tensor(struct reader * r, uint32_t file_version, size_t index, struct rwkv_file_tensor * t, struct rwkv_error * err, bool print) {
    const uint64_t start = r->pos;
    uint32_t n_dims, key_length, type;
    if (!read_u32(r, &n_dims) || !read_u32(r, &key_length) || !read_u32(r, &type)) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ,
            "file truncated at byte %llu: tensor #%zu header incomplete (12 bytes from byte %llu)",
            (unsigned long long) r->n_bytes, index, (unsigned long long) start);
    }
    if (n_dims < 1 || n_dims > RWKV_MAX_TENSOR_DIMS) {
        return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
            "tensor #%zu at byte %llu: %d dimensions, expected 1..%d", index, (unsigned long long) start, (int32_t) n_dims, RWKV_MAX_TENSOR_DIMS);
    }
    if (key_length < 1 || key_length > RWKV_MAX_KEY_LENGTH) {
        return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_KEY,
            "tensor #%zu at byte %llu: name length %d, expected 1..%d", index, (unsigned long long) start, (int32_t) key_length, RWKV_MAX_KEY_LENGTH);
    }
    t->n_dims = n_dims;
    t->type = type;
    t->n_elements = 1;
    for (uint32_t d = 0; d < RWKV_MAX_TENSOR_DIMS; d++) {
        uint32_t size = 1;
        if (d < n_dims && !read_u32(r, &size)) {
            return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ,
                "file truncated at byte %llu: tensor #%zu shape incomplete", (unsigned long long) r->n_bytes, index);
        }
        if (size == 0 || size >= MAX_DIM) {
            return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
                "tensor #%zu at byte %llu: dimension %u has size %d", index, (unsigned long long) start, d, (int32_t) size);
        }
        t->ne[d] = size;
        t->n_elements *= size;  /* each factor < 2^31 and the product is checked after each step */
        if (t->n_elements > MAX_ELEMENTS) {
            return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
                "tensor #%zu at byte %llu: more than 2^40 elements", index, (unsigned long long) start);
        }
    }
    if (r->n_bytes - r->pos < key_length) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ,
            "file truncated at byte %llu: tensor #%zu name incomplete", (unsigned long long) r->n_bytes, index);
    }
    memcpy(t->name, r->data + r->pos, key_length);
    t->name[key_length] = '\0';
    r->pos += key_length;
    if (strlen(t->name) != key_length) {
        return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_KEY, "tensor #%zu: name contains a NUL byte", index);
    }
    if (!rwkv_type_is_known(type)) {
        return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_DATA_TYPE,
            "tensor %s: unknown data type %u", t->name, type);
    }
    if (rwkv_type_is_quantized(type)) {
        if (file_version < RWKV_FILE_VERSION_1) {
            return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_DATA_TYPE,
                "tensor %s: quantized type %s in a version %u file (quantized tensors need version %d)",
                t->name, rwkv_type_name(type), file_version, RWKV_FILE_VERSION_1);
        }
        if (t->ne[0] % RWKV_QUANT_BLOCK_SIZE != 0) {
            return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_SHAPE,
                "tensor %s: row length %llu is not a multiple of %d, required by type %s",
                t->name, (unsigned long long) t->ne[0], RWKV_QUANT_BLOCK_SIZE, rwkv_type_name(type));
        }
    }
    t->n_bytes = t->n_elements / rwkv_type_block_size(type) * rwkv_type_block_bytes(type);
    t->data_offset = r->pos;
    if (r->n_bytes - r->pos < t->n_bytes) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ,
            "file truncated at byte %llu: tensor %s needs %llu bytes of data from byte %llu",
            (unsigned long long) r->n_bytes, t->name, (unsigned long long) t->n_bytes, (unsigned long long) r->pos);
    }
    t->data = r->data + r->pos;
    r->pos += t->n_bytes;
    return true;
}

static int compare_tensor_names(const void * a, const void * b) {
    return strcmp(((const struct rwkv_file_tensor *) a)->name, ((const struct rwkv_file_tensor *) b)->name);
}

bool rwkv_model_file_parse(const uint8_t * data, uint64_t n_bytes, struct rwkv_model_file * out, struct rwkv_error * err, bool print) {
    memset(out, 0, sizeof(*out));
    struct reader r = {data, n_bytes, 0};
    if (!parse_header(&r, &out->header, err, print)) {
        return false;
    }
    size_t capacity = 0;
    while (r.pos < r.n_bytes) {
        if (out->n_tensors == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            struct rwkv_file_tensor * grown = realloc(out->tensors, capacity * sizeof(*grown));
            if (!grown) {
                rwkv_model_file_free(out);
                return rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory reading the tensor table (%zu tensors)", capacity);
            }
            out->tensors = grown;
        }
        if (!parse_tensor(&r, out->header.version, out->n_tensors, &out->tensors[out->n_tensors], err, print)) {
            rwkv_model_file_free(out);
            return false;
        }
        out->tensors[out->n_tensors].file_index = out->n_tensors;
        out->n_tensors++;
    }
    if (out->n_tensors == 0) {
        return rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_PARAM_MISSING, "the file holds no tensors");
    }
    qsort(out->tensors, out->n_tensors, sizeof(*out->tensors), compare_tensor_names);
    for (size_t i = 1; i < out->n_tensors; i++) {
        if (strcmp(out->tensors[i - 1].name, out->tensors[i].name) == 0) {
            const char * name = out->tensors[i].name;
            bool result = rwkv_fail(err, print, RWKV_ERROR_MODEL_PARAMS | RWKV_ERROR_KEY, "tensor %s appears twice", name);
            rwkv_model_file_free(out);
            return result;
        }
    }
    return true;
}

void rwkv_model_file_free(struct rwkv_model_file * file) {
    free(file->tensors);
    file->tensors = NULL;
    file->n_tensors = 0;
}

const struct rwkv_file_tensor * rwkv_model_file_find(const struct rwkv_model_file * file, const char * name) {
    struct rwkv_file_tensor key;
    size_t length = strlen(name);
    if (length > RWKV_MAX_KEY_LENGTH) {
        return NULL;
    }
    memcpy(key.name, name, length + 1);
    return bsearch(&key, file->tensors, file->n_tensors, sizeof(*file->tensors), compare_tensor_names);
}
