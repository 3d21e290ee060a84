/* quantize.h: writing a quantized copy of an FP32/FP16 model file. */
#ifndef RWKV_QUANTIZE_H
#define RWKV_QUANTIZE_H

#include <stdbool.h>
#include "errors.h"
#include "rwkv.h"

bool rwkv_quantize_file(const char * in_path, const char * out_path, const struct rwkv_quantize_params * params,
                        struct rwkv_error * err, bool print);

#endif
