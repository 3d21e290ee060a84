/* file_format.h: rwkv.cpp's .bin container: header plus a table of named tensors (no math).
 * Other containers (GGUF) would produce the same rwkv_model_file so evaluation never sees them. */
#ifndef RWKV_FILE_FORMAT_H
#define RWKV_FILE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "errors.h"

#define RWKV_MAX_TENSOR_DIMS 3
#define RWKV_MAX_KEY_LENGTH 255

struct rwkv_file_header {
    uint32_t magic;
    uint32_t version;
    uint32_t n_vocab;
    uint32_t n_embed;
    uint32_t n_layer;
    uint32_t data_type;
};

struct rwkv_file_tensor {
    char name[RWKV_MAX_KEY_LENGTH + 1];
    uint32_t type;
    uint32_t n_dims;
    /* ggml order: ne[0] is the row length (PyTorch's last dimension); unused dims are 1. */
    uint64_t ne[RWKV_MAX_TENSOR_DIMS];
    uint64_t n_elements;
    uint64_t data_offset;
    uint64_t n_bytes;
    const uint8_t * data;
    size_t file_index;  /* position in the file: tensors are kept sorted by name */
};

struct rwkv_model_file {
    struct rwkv_file_header header;
    struct rwkv_file_tensor * tensors;  /* sorted by name */
    size_t n_tensors;
};

/* Parses and validates the header and every tensor record against the buffer size:
 * known types, sane dimensions, no overflow, data inside the file, no duplicate names.
 * data must stay valid while out is used. Free with rwkv_model_file_free. */
bool rwkv_model_file_parse(const uint8_t * data, uint64_t n_bytes, struct rwkv_model_file * out, struct rwkv_error * err, bool print);
void rwkv_model_file_free(struct rwkv_model_file * file);

/* NULL when absent. */
const struct rwkv_file_tensor * rwkv_model_file_find(const struct rwkv_model_file * file, const char * name);

#endif
