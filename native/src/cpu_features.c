/* cpu_features.c: CPU feature probe and the one-time choice of the kernel table. */
#include "cpu_features.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cpu_features {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, neon;
};

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>

/* XCR0: which register states the OS saves. AVX needs YMM (bits 1-2), AVX-512 also the opmask
 * and ZMM states (bits 5-7). */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t) hi << 32) | lo;
}
#endif

static struct cpu_features probe(void) {
    struct cpu_features f = {0};
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    /* CPUID and XGETBV read directly: __builtin_cpu_supports needs the CPU model that libgcc
     * or compiler-rt fills in at startup, and some toolchains (zig cc) leave it empty, which
     * silently gave the scalar kernels. */
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        return f;
    }
    const bool osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const bool ymm = avx && (xcr0 & 0x06) == 0x06;
    const bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;
    f.fma = ymm && ((ecx >> 12) & 1);
    f.f16c = ymm && ((ecx >> 29) & 1);
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        f.avx2 = ymm && ((ebx >> 5) & 1);
        f.avx512f = zmm && ((ebx >> 16) & 1);
        f.avx512bw = zmm && ((ebx >> 30) & 1);
        f.avx512vl = zmm && ((ebx >> 31) & 1);
        f.avx512vnni = zmm && ((ecx >> 11) & 1);
    }
#elif defined(__aarch64__) || defined(_M_ARM64)
    f.neon = true;
#endif
    return f;
}

static const struct rwkv_kernels * choose(const struct cpu_features * f) {
    /* RWKV_CPU_FEATURES caps the level: "scalar", "avx2" (for testing lower paths). */
    const char * forced = getenv("RWKV_CPU_FEATURES");
    if (forced && strcmp(forced, "scalar") == 0) {
        return &rwkv_kernels_scalar;
    }
#if defined(RWKV_HAVE_AVX2_KERNELS)
    const bool allow_avx512 = !forced || strcmp(forced, "avx2") != 0;
    if (allow_avx512 && f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni) {
        return &rwkv_kernels_avx512;
    }
    if (f->avx2 && f->fma && f->f16c) {
        return &rwkv_kernels_avx2;
    }
#endif
#if defined(RWKV_HAVE_NEON_KERNELS)
    /* AArch64 always has NEON with fp16 conversions and FMA (Advanced SIMD is mandatory). */
    if (f->neon) {
        return &rwkv_kernels_neon;
    }
#endif
    return &rwkv_kernels_scalar;
}

static _Atomic(const struct rwkv_kernels *) chosen_kernels;
static char features_string[256];
static atomic_int features_string_state;  /* 0 unset, 1 being written, 2 ready */

const struct rwkv_kernels * rwkv_best_kernels(void) {
    const struct rwkv_kernels * k = atomic_load(&chosen_kernels);
    if (!k) {
        /* Racing threads compute the same answer; storing it twice is harmless. */
        struct cpu_features f = probe();
        k = choose(&f);
        atomic_store(&chosen_kernels, k);
    }
    return k;
}

const char * rwkv_cpu_features_string(void) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&features_string_state, &expected, 1)) {
        struct cpu_features f = probe();
        snprintf(features_string, sizeof(features_string),
            "AVX2 = %d | FMA = %d | F16C = %d | AVX512F = %d | AVX512_VNNI = %d | NEON = %d | kernels = %s",
            f.avx2, f.fma, f.f16c, f.avx512f, f.avx512vnni, f.neon, rwkv_best_kernels()->name);
        atomic_store(&features_string_state, 2);
    }
    while (atomic_load(&features_string_state) != 2) {
        /* another thread is writing it: a few microseconds at most */
    }
    return features_string;
}
