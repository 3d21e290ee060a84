/* state_file.c: the state file format. Layout, all little-endian:
 *   char magic[8] = "RWKVSTAT"; u32 version = 1; u32 arch_major, arch_minor;
 *   u32 n_vocab, n_embed, n_layer; u64 state_len (floats); u64 model_hash;
 *   float state[state_len]; u64 checksum (the same hash over the state bytes). */
#include "state_file.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "platform.h"

#define STATE_MAGIC "RWKVSTAT"
#define STATE_VERSION 1u
#define HEADER_BYTES (8 + 4 * 6 + 8 + 8)

/* A simple, portable 64-bit hash (FNV-style multiply-xor over 8-byte words, then a
 * finalizer): it identifies files, it is not a cryptographic signature. */
static uint64_t hash_bytes(const uint8_t * data, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t) n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, data + i, 8);
        h = (h ^ word) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h = (h ^ data[i]) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

uint64_t rwkv_model_file_hash(struct rwkv_model * model) {
    /* Contexts may race here: each computes the same value, so publishing twice is harmless. */
    if (!atomic_load(&model->file_hash_ready)) {
        atomic_store(&model->file_hash, hash_bytes(model->file.data, (size_t) model->file.n_bytes));
        atomic_store(&model->file_hash_ready, true);
    }
    return atomic_load(&model->file_hash);
}

static void put_u32(uint8_t ** p, uint32_t v) {
    memcpy(*p, &v, 4);
    *p += 4;
}

static void put_u64(uint8_t ** p, uint64_t v) {
    memcpy(*p, &v, 8);
    *p += 8;
}

static uint32_t get_u32(const uint8_t ** p) {
    uint32_t v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}

static uint64_t get_u64(const uint8_t ** p) {
    uint64_t v;
    memcpy(&v, *p, 8);
    *p += 8;
    return v;
}

bool rwkv_state_file_save(struct rwkv_model * model, const char * path, const float * state, struct rwkv_error * err, bool print) {
    uint8_t header[HEADER_BYTES], * p = header;
    memcpy(p, STATE_MAGIC, 8);
    p += 8;
    put_u32(&p, STATE_VERSION);
    put_u32(&p, model->arch_major);
    put_u32(&p, model->arch_minor);
    put_u32(&p, (uint32_t) model->n_vocab);
    put_u32(&p, (uint32_t) model->n_embed);
    put_u32(&p, (uint32_t) model->n_layer);
    put_u64(&p, model->state_len);
    put_u64(&p, rwkv_model_file_hash(model));
    const size_t state_bytes = model->state_len * sizeof(float);
    const uint64_t checksum = hash_bytes((const uint8_t *) state, state_bytes);

    char resolved[4096], temp_path[4096];
    if (!rwkv_resolve_output_path(path, resolved, sizeof(resolved), err, print)) {
        return false;
    }
    path = resolved;
    FILE * file = rwkv_create_temp_file(path, temp_path, sizeof(temp_path), err, print);
    if (!file) {
        return false;
    }
    bool ok = fwrite(header, 1, sizeof(header), file) == sizeof(header)
        && fwrite(state, 1, state_bytes, file) == state_bytes
        && fwrite(&checksum, 1, 8, file) == 8;
    const int write_errno = errno;
    ok = (fclose(file) == 0) && ok;
    if (!ok) {
        remove(temp_path);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_WRITE, "cannot write state file %s: %s", path, strerror(write_errno ? write_errno : errno));
    }
    return rwkv_replace_file(temp_path, path, err, print);
}

#define REFUSE(...) rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_DATA, __VA_ARGS__)

bool rwkv_state_file_parse(struct rwkv_model * model, const uint8_t * data, size_t n_bytes, float * state_out,
                           struct rwkv_error * err, bool print) {
    if (n_bytes < HEADER_BYTES || memcmp(data, STATE_MAGIC, 8) != 0) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_MAGIC, "not an rwkv_cpp state file (no RWKVSTAT header)");
    }
    const uint8_t * p = data + 8;
    const uint32_t version = get_u32(&p);
    if (version != STATE_VERSION) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_VERSION, "state file version %u, expected %u", version, STATE_VERSION);
    }
    const uint32_t major = get_u32(&p), minor = get_u32(&p);
    const uint32_t n_vocab = get_u32(&p), n_embed = get_u32(&p), n_layer = get_u32(&p);
    const uint64_t state_len = get_u64(&p), model_hash = get_u64(&p);
    if (major != model->arch_major || minor != model->arch_minor || n_vocab != model->n_vocab
        || n_embed != model->n_embed || n_layer != model->n_layer || state_len != model->state_len) {
        return REFUSE("the state belongs to another model: RWKV v%u.%u, %u layers, n_embed %u, vocabulary %u, %llu floats; "
                      "this model is v%u.%u, %zu layers, n_embed %zu, vocabulary %zu, %zu floats",
                      major, minor, n_layer, n_embed, n_vocab, (unsigned long long) state_len,
                      model->arch_major, model->arch_minor, model->n_layer, model->n_embed, model->n_vocab, model->state_len);
    }
    const size_t state_bytes = model->state_len * sizeof(float);
    if (n_bytes != HEADER_BYTES + state_bytes + 8) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ,
            "state file has %zu bytes, expected %zu", n_bytes, (size_t) HEADER_BYTES + state_bytes + 8);
    }
    if (model_hash != rwkv_model_file_hash(model)) {
        return REFUSE("the state belongs to another model file of the same shape (model hash %016llx, this file's %016llx)",
                      (unsigned long long) model_hash, (unsigned long long) rwkv_model_file_hash(model));
    }
    uint64_t checksum;
    memcpy(&checksum, data + HEADER_BYTES + state_bytes, 8);
    if (checksum != hash_bytes(data + HEADER_BYTES, state_bytes)) {
        return REFUSE("state file is corrupt: checksum mismatch");
    }
    memcpy(state_out, data + HEADER_BYTES, state_bytes);
    return true;
}

bool rwkv_state_file_load(struct rwkv_model * model, const char * path, float * state_out, struct rwkv_error * err, bool print) {
    struct rwkv_mapped_file file;
    if (!rwkv_map_file(path, &file, err, print)) {
        return false;
    }
    const bool ok = rwkv_state_file_parse(model, file.data, (size_t) file.n_bytes, state_out, err, print);
    rwkv_unmap_file(&file);
    return ok;
}
