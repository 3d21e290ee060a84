/* tensor_types.c: names and sizes of tensor data types (ggml block layouts for the quantized ones). */
#include "tensor_types.h"

struct type_info {
    const char * name;
    size_t block_size;
    size_t block_bytes;
};

/* ggml: Q4_0 {fp16 d; 16 B nibbles}, Q4_1 {d, m; 16 B}, Q5_0 {d; 4 B high bits; 16 B},
 * Q5_1 {d, m; 4 B; 16 B}, Q8_0 {d; 32 int8}. */
static const struct type_info type_table[RWKV_TYPE_COUNT] = {
    [RWKV_TYPE_F32] = {"F32", 1, 4},
    [RWKV_TYPE_F16] = {"F16", 1, 2},
    [RWKV_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [RWKV_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [RWKV_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [RWKV_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [RWKV_TYPE_Q8_0] = {"Q8_0", 32, 34},
};

bool rwkv_type_is_known(uint32_t type) {
    return type < RWKV_TYPE_COUNT && type_table[type].name != NULL;
}

bool rwkv_type_is_quantized(uint32_t type) {
    return rwkv_type_is_known(type) && type_table[type].block_size > 1;
}

const char * rwkv_type_name(uint32_t type) {
    return rwkv_type_is_known(type) ? type_table[type].name : "unknown";
}

size_t rwkv_type_block_size(uint32_t type) {
    return rwkv_type_is_known(type) ? type_table[type].block_size : 0;
}

size_t rwkv_type_block_bytes(uint32_t type) {
    return rwkv_type_is_known(type) ? type_table[type].block_bytes : 0;
}
