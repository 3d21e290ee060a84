/* cuda_fp16.h (emulation): __half as its 16 bits, widened exactly by the library's own
 * rwkv_f16_to_f32. */
#pragma once
#include <stdint.h>
#include "cuda_runtime.h"
struct __half { uint16_t bits; };
struct __half2 { __half x, y; };
extern "C" float rwkv_f16_to_f32(uint16_t h);
inline float __half2float(__half h) { return rwkv_f16_to_f32(h.bits); }
inline float2 __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
