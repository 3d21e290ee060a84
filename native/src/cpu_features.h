/* cpu_features.h: probes the CPU once and picks the best kernel table for it. */
#ifndef RWKV_CPU_FEATURES_H
#define RWKV_CPU_FEATURES_H

#include "kernels.h"

/* The table used by every context; chosen on first use. RWKV_CPU_FEATURES=scalar forces the
 * portable kernels (for testing). */
const struct rwkv_kernels * rwkv_best_kernels(void);

/* "AVX2 = 1 | FMA = 1 | F16C = 1 | ... | kernels = avx2" */
const char * rwkv_cpu_features_string(void);

#endif
