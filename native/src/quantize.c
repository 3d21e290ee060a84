/* quantize.c: a quantized copy of a model file, with rwkv.cpp's choice of tensors so the
 * bytes match its quantizer: every 2-D F32/F16 tensor except emb.weight and head.weight is
 * quantized (F16 widened first); everything else is copied. Written to a temporary file and
 * renamed, so a failure never leaves a partial output. */
#include "quantize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "file_format.h"
#include "model.h"
#include "platform.h"
#include "quant.h"
#include "tensor_types.h"

static const struct {
    const char * name;
    uint32_t type;
} formats[] = {
    {"Q4_0", RWKV_TYPE_Q4_0}, {"Q4_1", RWKV_TYPE_Q4_1}, {"Q5_0", RWKV_TYPE_Q5_0},
    {"Q5_1", RWKV_TYPE_Q5_1}, {"Q8_0", RWKV_TYPE_Q8_0},
};

static bool parse_format(const char * name, uint32_t * type) {
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (strcmp(name, formats[i].name) == 0) {
            *type = formats[i].type;
            return true;
        }
    }
    return false;
}

/* The type a tensor gets in the output. */
static uint32_t output_type(const struct rwkv_file_tensor * t, uint32_t type, bool quantize_head, uint32_t head_type) {
    const bool is_float = t->type == RWKV_TYPE_F32 || t->type == RWKV_TYPE_F16;
    if (!is_float || t->n_dims != 2 || t->ne[0] % RWKV_QUANT_BLOCK_SIZE != 0) {
        return t->type;
    }
    if (strcmp(t->name, "head.weight") == 0) {
        return quantize_head ? head_type : t->type;
    }
    return strcmp(t->name, "emb.weight") == 0 ? t->type : type;
}

struct writer {
    FILE * file;
    const char * path;
    struct rwkv_error * err;
    bool print;
    bool ok;
};

static void write_bytes(struct writer * w, const void * data, size_t n) {
    if (w->ok && fwrite(data, 1, n, w->file) != n) {
        w->ok = rwkv_fail(w->err, w->print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_WRITE, "cannot write %s: %s", w->path, strerror(errno));
    }
}

static void write_u32(struct writer * w, uint32_t value) {
    write_bytes(w, &value, 4);
}

static void write_tensor(struct writer * w, const struct rwkv_file_tensor * t, uint32_t type, float * row) {
    const size_t name_length = strlen(t->name);
    write_u32(w, t->n_dims);
    write_u32(w, (uint32_t) name_length);
    write_u32(w, type);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        write_u32(w, (uint32_t) t->ne[d]);
    }
    write_bytes(w, t->name, name_length);
    if (type == t->type) {
        write_bytes(w, t->data, t->n_bytes);
        return;
    }
    const size_t n = t->ne[0];
    const size_t in_row_bytes = n * (t->type == RWKV_TYPE_F32 ? 4 : 2);
    const size_t out_row_bytes = n / RWKV_QUANT_BLOCK_SIZE * rwkv_type_block_bytes(type);
    uint8_t * out = (uint8_t *) (row + n);
    for (uint64_t r = 0; r < t->n_elements / n && w->ok; r++) {
        rwkv_dequantize_row(t->type, t->data + r * in_row_bytes, row, n);
        rwkv_quantize_row(type, row, out, n);
        write_bytes(w, out, out_row_bytes);
    }
}

static int compare_file_index(const void * a, const void * b) {
    const struct rwkv_file_tensor * ta = *(const struct rwkv_file_tensor * const *) a;
    const struct rwkv_file_tensor * tb = *(const struct rwkv_file_tensor * const *) b;
    return ta->file_index < tb->file_index ? -1 : ta->file_index > tb->file_index;
}

static bool check_input_types(const struct rwkv_model_file * file, const char * path, struct rwkv_error * err, bool print) {
    const uint32_t header_type = file->header.data_type;
    if (header_type != RWKV_TYPE_F32 && header_type != RWKV_TYPE_F16) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_DATA_TYPE,
            "%s is already quantized (%s): quantize from an FP32 or FP16 file", path, rwkv_type_name(header_type));
    }
    for (size_t i = 0; i < file->n_tensors; i++) {
        if (rwkv_type_is_quantized(file->tensors[i].type)) {
            return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_DATA_TYPE,
                "%s is already quantized (tensor %s is %s): quantize from an FP32 or FP16 file",
                path, file->tensors[i].name, rwkv_type_name(file->tensors[i].type));
        }
    }
    return true;
}

static bool write_quantized(const struct rwkv_model_file * file, const char * out_path, uint32_t type,
                            bool quantize_head, uint32_t head_type, const struct rwkv_quantize_params * params,
                            struct rwkv_error * err, bool print) {
    const struct rwkv_file_tensor ** order = malloc(file->n_tensors * sizeof(*order));
    size_t widest_row = 0;
    for (size_t i = 0; i < file->n_tensors; i++) {
        if (file->tensors[i].ne[0] > widest_row) {
            widest_row = file->tensors[i].ne[0];
        }
    }
    /* One row as floats, then the same row quantized (never larger). */
    float * row = malloc(widest_row * sizeof(float) * 2);
    if (!order || !row) {
        free(order);
        free(row);
        return rwkv_fail(err, print, RWKV_ERROR_ALLOC, "out of memory quantizing (a row of %zu floats)", widest_row);
    }
    for (size_t i = 0; i < file->n_tensors; i++) {
        order[i] = &file->tensors[i];
    }
    qsort(order, file->n_tensors, sizeof(*order), compare_file_index);

    char temp_path[4096];
    struct writer w = {.path = out_path, .err = err, .print = print, .ok = true};
    w.file = rwkv_create_temp_file(out_path, temp_path, sizeof(temp_path), err, print);  /* out_path is resolved */
    if (!w.file) {
        free(order);
        free(row);
        return false;
    }
    const struct rwkv_file_header * h = &file->header;
    const uint32_t header[6] = {RWKV_FILE_MAGIC, RWKV_FILE_VERSION_1, h->n_vocab, h->n_embed, h->n_layer, type};
    write_bytes(&w, header, sizeof(header));
    for (size_t i = 0; i < file->n_tensors && w.ok; i++) {
        write_tensor(&w, order[i], output_type(order[i], type, quantize_head, head_type), row);
        if (params->progress) {
            params->progress(params->user_data, i + 1, file->n_tensors);
        }
    }
    if (fclose(w.file) != 0 && w.ok) {
        w.ok = rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_WRITE, "cannot write %s: %s", out_path, strerror(errno));
    }
    free(order);
    free(row);
    if (!w.ok) {
        remove(temp_path);
        return false;
    }
    return rwkv_replace_file(temp_path, out_path, err, print);
}

bool rwkv_quantize_file(const char * in_path, const char * out_path, const struct rwkv_quantize_params * params,
                        struct rwkv_error * err, bool print) {
    uint32_t type = 0, head_type = 0;
    if (!parse_format(params->format_name, &type)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_DATA_TYPE,
            "unknown quantization format \"%s\" (expected Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0)", params->format_name);
    }
    const bool quantize_head = params->head_format_name != NULL;
    if (quantize_head && !parse_format(params->head_format_name, &head_type)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_DATA_TYPE,
            "unknown head quantization format \"%s\" (expected Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0)", params->head_format_name);
    }
    char resolved_out[4096];
    if (!rwkv_resolve_output_path(out_path, resolved_out, sizeof(resolved_out), err, print)) {
        return false;
    }
    out_path = resolved_out;
    /* Loading validates the whole file as a model before anything is written. */
    struct rwkv_model * model = rwkv_model_load(in_path, err, print);
    if (!model) {
        return false;
    }
    struct rwkv_model_file file;
    bool ok = rwkv_model_file_parse(model->file.data, model->file.n_bytes, &file, err, print);
    const struct rwkv_file_tensor * head = ok ? rwkv_model_file_find(&file, "head.weight") : NULL;
    if (ok && quantize_head && head && head->ne[0] % RWKV_QUANT_BLOCK_SIZE != 0) {
        ok = rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_SHAPE,
            "head.weight rows have %llu values, not a multiple of %d: it cannot be quantized to %s",
            (unsigned long long) head->ne[0], RWKV_QUANT_BLOCK_SIZE, params->head_format_name);
    }
    if (ok) {
        ok = check_input_types(&file, in_path, err, print)
            && write_quantized(&file, out_path, type, quantize_head, head_type, params, err, print);
    }
    rwkv_model_file_free(&file);
    rwkv_model_release(model);
    return ok;
}
