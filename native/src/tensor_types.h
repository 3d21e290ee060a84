/* tensor_types.h: the data types a model file can hold (rwkv.cpp / ggml numbering) and their sizes. */
#ifndef RWKV_TENSOR_TYPES_H
#define RWKV_TENSOR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rwkv_type {
    RWKV_TYPE_F32 = 0,
    RWKV_TYPE_F16 = 1,
    RWKV_TYPE_Q4_0 = 2,
    RWKV_TYPE_Q4_1 = 3,
    RWKV_TYPE_Q5_0 = 7,
    RWKV_TYPE_Q5_1 = 8,
    RWKV_TYPE_Q8_0 = 9,
};

#define RWKV_TYPE_COUNT 10
#define RWKV_QUANT_BLOCK_SIZE 32

/* True for the numbers above; 4, 5 and 6 were ggml types since removed. */
bool rwkv_type_is_known(uint32_t type);
bool rwkv_type_is_quantized(uint32_t type);
/* "F32", "Q5_1", ... or "unknown". */
const char * rwkv_type_name(uint32_t type);
/* Elements per block (1 for floats) and bytes per block. */
size_t rwkv_type_block_size(uint32_t type);
size_t rwkv_type_block_bytes(uint32_t type);

#endif
