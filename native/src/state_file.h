/* state_file.h: saving and loading a context's state with a header naming its model. */
#ifndef RWKV_STATE_FILE_H
#define RWKV_STATE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "model.h"

/* 64-bit hash of all of the model file's bytes; computed on first use, then cached. */
uint64_t rwkv_model_file_hash(struct rwkv_model * model);

bool rwkv_state_file_save(struct rwkv_model * model, const char * path, const float * state, struct rwkv_error * err, bool print);
/* Validates the whole file before writing anything to state_out. */
bool rwkv_state_file_load(struct rwkv_model * model, const char * path, float * state_out, struct rwkv_error * err, bool print);

/* The checks of rwkv_state_file_load on a buffer (what the fuzzer drives). */
bool rwkv_state_file_parse(struct rwkv_model * model, const uint8_t * data, size_t n_bytes, float * state_out,
                           struct rwkv_error * err, bool print);

#endif
