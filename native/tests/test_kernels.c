/* test_kernels.c: every kernel table compiled in (scalar, AVX2 when the CPU has AVX2, FMA
 * and F16C, NEON on AArch64) against the scalar reference and against double precision, on random and edge
 * inputs: lengths 0..200 and longer, unaligned weights, fp16 subnormals, +-0, +-max, +-inf.
 * Also the fp16 conversions: rwkv_f16_to_f32 against a definition by ldexp, and
 * rwkv_f32_to_f16 on chosen values (round to nearest even, overflow, subnormals) and against
 * the hardware conversion (F16C, or NEON's FCVTN on AArch64). */
#include <float.h>
#include "kernels.h"
#include "wkv.h"
#include "quant.h"
#include "test_util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define TEST_X86 1
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#define TEST_NEON 1
#endif

#define MAX_N 4096
#define MAX_OFFSET 3

static bool cpu_has_avx2_fma_f16c(void) {
#if TEST_X86
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        return false;
    }
    const bool fma = (ecx & bit_FMA) != 0, f16c = (ecx & bit_F16C) != 0, osxsave = (ecx & bit_OSXSAVE) != 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
        return false;
    }
    return osxsave && fma && f16c && (ebx & bit_AVX2) != 0 && __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Same bits, or both NaN (SIMD may quiet a signalling NaN). */
static bool same_or_both_nan(float a, float b) {
    return (isnan(a) && isnan(b)) || float_bits(a) == float_bits(b);
}

/* IEEE binary16 by its definition. */
static float definition_f16(uint16_t h) {
    const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float v;
    if (exponent == 0x1f) {
        v = mantissa ? NAN : INFINITY;
    } else if (exponent == 0) {
        v = ldexpf((float) mantissa, -24);
    } else {
        v = ldexpf((float) (1024 + mantissa), exponent - 25);
    }
    return sign ? -v : v;
}

static void test_f16_to_f32_scalar(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float got = rwkv_f16_to_f32((uint16_t) h), want = definition_f16((uint16_t) h);
        bool ok;
        if (isnan(want)) {
            /* NaN: sign and payload kept (bits shifted into place), as ggml and torch do. */
            ok = float_bits(got) == (((h & 0x8000u) << 16) | 0x7f800000u | ((h & 0x3ffu) << 13));
        } else {
            ok = float_bits(got) == float_bits(want);
        }
        if (!ok && bad++ < 5) {
            fprintf(stderr, "rwkv_f16_to_f32(0x%04x) = %a (0x%08x), expected %a\n", h, got, float_bits(got), want);
        }
    }
    CHECK_MSG(bad == 0, "%d of 65536 halves widened wrongly", bad);
}

struct f32_to_f16_case {
    float value;
    uint16_t expected;
    const char * why;
};

static void test_f32_to_f16(void) {
    const struct f32_to_f16_case cases[] = {
        {0.0f, 0x0000, "+0"},
        {-0.0f, 0x8000, "-0"},
        {1.0f, 0x3c00, "1"},
        {-2.0f, 0xc000, "-2"},
        {65504.0f, 0x7bff, "largest half"},
        {-65504.0f, 0xfbff, "-largest half"},
        {65519.99f, 0x7bff, "just below the overflow threshold"},
        {65520.0f, 0x7c00, "halfway to 65536: rounds to even, which overflows to inf"},
        {-65520.0f, 0xfc00, "-65520 -> -inf"},
        {1e10f, 0x7c00, "far beyond: inf"},
        {INFINITY, 0x7c00, "inf"},
        {-INFINITY, 0xfc00, "-inf"},
        {0x1p-24f, 0x0001, "smallest subnormal"},
        {-0x1p-24f, 0x8001, "-smallest subnormal"},
        {0x1p-25f, 0x0000, "half the smallest subnormal: tie, to even (0)"},
        {0x1.000002p-25f, 0x0001, "just above half the smallest subnormal"},
        {0x1.fffffep-26f, 0x0000, "just below half the smallest subnormal"},
        {0x1.8p-24f, 0x0002, "1.5 x smallest subnormal: tie, to even (2)"},
        {0x1.4p-23f, 0x0002, "2.5 x smallest subnormal: tie, to even (2)"},
        {0x3ffp-24f, 0x03ff, "largest subnormal"},
        {0x3ff.8p-24f, 0x0400, "halfway between largest subnormal and smallest normal: to even"},
        {0x1p-14f, 0x0400, "smallest normal"},
        {1e-10f, 0x0000, "tiny: underflows to 0"},
        {-1e-10f, 0x8000, "tiny negative: -0"},
        {0x1.002p0f, 0x3c00, "1 + 2^-11: tie, to even (1)"},
        {0x1.006p0f, 0x3c02, "1 + 3 x 2^-11: tie, to even (1 + 2^-9)"},
        {0x1.00200002p0f, 0x3c00, "1 + 2^-11 + tiny, float-rounded to the tie: to even"},
        {0x1.002002p0f, 0x3c01, "1 + 2^-11 + 2^-22: above the tie"},
        {0x1.ffcp15f, 0x7bff, "65504 exactly"},
        {0x1.ffep15f, 0x7c00, "65520: the first value that overflows"},
        {0x1.ffdffep15f, 0x7bff, "65519.99...: the last value that does not"},
        {3.14159265f, 0x4248, "pi"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint16_t got = rwkv_f32_to_f16(cases[i].value);
        CHECK_MSG(got == cases[i].expected, "rwkv_f32_to_f16(%a) = 0x%04x, expected 0x%04x (%s)",
            cases[i].value, got, cases[i].expected, cases[i].why);
    }
    const uint16_t nan = rwkv_f32_to_f16(NAN);
    CHECK_MSG((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0, "NaN -> 0x%04x", nan);
    const uint16_t quiet = rwkv_f32_to_f16(bits_float(0x7f800001u));  /* payload only in the low bits */
    CHECK_MSG((quiet & 0x7c00) == 0x7c00 && (quiet & 0x3ff) != 0, "signalling NaN 0x7f800001 -> 0x%04x (must stay NaN)", quiet);

    /* Every half survives the round trip. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = rwkv_f16_to_f32((uint16_t) h);
        if (!isnan(f) && rwkv_f32_to_f16(f) != h && bad++ < 5) {
            fprintf(stderr, "round trip of 0x%04x gives 0x%04x\n", h, rwkv_f32_to_f16(f));
        }
    }
    CHECK_MSG(bad == 0, "%d halves changed in the round trip", bad);
}

#if TEST_X86
#define HARDWARE_F16 "F16C"
__attribute__((target("f16c"))) static uint16_t hardware_f32_to_f16(float f) {
    return (uint16_t) _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#elif TEST_NEON
#define HARDWARE_F16 "NEON FCVTN"
static uint16_t hardware_f32_to_f16(float f) {
    return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
}
#endif

#if TEST_X86 || TEST_NEON
/* The hardware conversion rounds to nearest even (FPCR / MXCSR default): the conversion must
 * give the same bits. */
static void test_f32_to_f16_against_hardware(void) {
    int bad = 0, n = 0;
    for (int i = 0; i < 4000000; i++) {
        uint32_t bits;
        if (i % 2 == 0) {
            bits = (uint32_t) tw_random();  /* anything */
        } else {
            /* Near the half grid: a half's bits shifted up plus a small offset around the tie. */
            const uint32_t h = (uint32_t) (tw_random() % 0x7c00);
            const uint32_t base = float_bits(rwkv_f16_to_f32((uint16_t) h));
            const int32_t delta = (int32_t) (tw_random() % 0x4004) - 0x2002;
            bits = (base + (uint32_t) delta) | ((uint32_t) (tw_random() & 1) << 31);
        }
        const float f = bits_float(bits);
        const uint16_t ours = rwkv_f32_to_f16(f), hw = hardware_f32_to_f16(f);
        n++;
        const bool ok = isnan(f) ? ((ours & 0x7c00) == 0x7c00 && (ours & 0x3ff) != 0 && (ours & 0x8000) == (hw & 0x8000)) : ours == hw;
        if (!ok && bad++ < 5) {
            fprintf(stderr, "rwkv_f32_to_f16(%a = 0x%08x) = 0x%04x, " HARDWARE_F16 " gives 0x%04x\n", f, bits, ours, hw);
        }
    }
    CHECK_MSG(bad == 0, "%d of %d conversions differ from " HARDWARE_F16, bad, n);
    printf("  rwkv_f32_to_f16 matches " HARDWARE_F16 " on %d values\n", n);
}
#endif

/* ---- kernel tables ---- */

enum input_kind { RANDOM, EDGE_FINITE, EDGE_WITH_INF, KIND_COUNT };
static const char * const KIND_NAMES[KIND_COUNT] = {"random", "edge", "edge+inf"};

static const uint16_t EDGE_HALVES[] = {
    0x0000, 0x8000,  /* +-0 */
    0x0001, 0x8001, 0x0200, 0x03ff, 0x83ff,  /* subnormals */
    0x0400, 0x8400,  /* smallest normals */
    0x7bff, 0xfbff,  /* +-max */
    0x3c00, 0xbc00, 0x3555, 0x57ff,
};

static uint16_t random_half(enum input_kind kind) {
    if (kind == RANDOM || tw_random() % 3 == 0) {
        return rwkv_f32_to_f16(tw_uniform(-2.0f, 2.0f));
    }
    if (kind == EDGE_WITH_INF && tw_random() % 16 == 0) {
        return tw_random() % 2 ? 0x7c00 : 0xfc00;
    }
    return EDGE_HALVES[tw_random() % (sizeof(EDGE_HALVES) / sizeof(EDGE_HALVES[0]))];
}

static float random_x(enum input_kind kind) {
    if (kind != RANDOM) {
        switch (tw_random() % 8) {
            case 0: return 0.0f;
            case 1: return -0.0f;
            case 2: return 1e-40f;  /* float subnormal */
            case 3: return 1.0f;
            default: break;
        }
    }
    return tw_uniform(-4.0f, 4.0f);
}

struct dot_input {
    size_t n;
    uint16_t halves[MAX_N];
    float widened[MAX_N];
    float x_storage[MAX_N + 8];
    const float * x;
    uint8_t f16_bytes[2 * MAX_N + 64];
    uint8_t f32_bytes[4 * MAX_N + 64];
    const uint8_t * w16;  /* the halves at a byte offset */
    const uint8_t * w32;  /* the widened row at the same offset */
    double reference;     /* in double precision */
    double magnitude;     /* sum |w x|: the scale of the rounding error */
};

static void make_input(struct dot_input * in, size_t n, size_t offset, enum input_kind kind) {
    in->n = n;
    in->x = in->x_storage + (n % 3);  /* not always 32-byte aligned */
    float * x = in->x_storage + (n % 3);
    in->reference = 0.0;
    in->magnitude = 0.0;
    for (size_t i = 0; i < n; i++) {
        in->halves[i] = random_half(kind);
        in->widened[i] = rwkv_f16_to_f32(in->halves[i]);
        x[i] = random_x(kind);
        in->reference += (double) in->widened[i] * (double) x[i];
        in->magnitude += fabs((double) in->widened[i] * (double) x[i]);
    }
    memset(in->f16_bytes, 0xff, sizeof(in->f16_bytes));  /* NaN halves around the row: must not be read */
    memset(in->f32_bytes, 0xff, sizeof(in->f32_bytes));
    memcpy(in->f16_bytes + offset, in->halves, 2 * n);
    memcpy(in->f32_bytes + offset, in->widened, 4 * n);
    in->w16 = in->f16_bytes + offset;
    in->w32 = in->f32_bytes + offset;
}

/* A float dot product of n terms is within n * 2^-24 * sum|w x| of the exact one (plus
 * underflow of products of subnormals); allow a little more for the final reductions. */
static double error_bound(const struct dot_input * in) {
    return ((double) in->n + 16.0) * FLT_EPSILON * in->magnitude + (double) in->n * 1e-44;
}

/* Finite, inf or NaN as the double-precision reference says (no float overflow is possible
 * with these inputs), and within the rounding bound when finite. */
static bool close_to_reference(const struct dot_input * in, float got) {
    if (isnan(in->reference)) {
        return isnan(got);
    }
    if (isinf(in->reference)) {
        return got == (float) in->reference;
    }
    return isfinite(got) && fabs((double) got - in->reference) <= error_bound(in);
}

static int failures_reported;

static void report(const char * table, const char * what, const struct dot_input * in, size_t offset, enum input_kind kind, float a, float b) {
    if (failures_reported++ < 10) {
        fprintf(stderr, "%s: %s, n %zu, offset %zu, %s: %a vs %a (reference %a, bound %g)\n",
            table, what, in->n, offset, KIND_NAMES[kind], a, b, in->reference, error_bound(in));
    }
}

static void test_table_dots(const struct rwkv_kernels * k, const struct rwkv_kernels * reference_table) {
    static struct dot_input in;
    int n_cases = 0;
    const int before = test_failure_count;
    for (size_t n = 0; n <= MAX_N; n = n < 200 ? n + 1 : n * 2 + 1) {
        for (size_t offset = 0; offset <= MAX_OFFSET; offset++) {
            for (int kind = 0; kind < KIND_COUNT; kind++) {
                make_input(&in, n, offset, (enum input_kind) kind);
                const float d16 = k->dot_f16(in.w16, in.x, n);
                const float d32 = k->dot_f32(in.w32, in.x, n);
                n_cases++;
                if (!same_or_both_nan(d16, d32)) {
                    report(k->name, "dot_f16 != dot_f32 of the widened row", &in, offset, kind, d16, d32);
                    test_failure_count++;
                }
                if (n == 0 && float_bits(d16) != 0) {
                    report(k->name, "empty dot product is not +0", &in, offset, kind, d16, 0.0f);
                    test_failure_count++;
                }
                if (!close_to_reference(&in, d16) || !close_to_reference(&in, d32)) {
                    report(k->name, "far from the double-precision reference", &in, offset, kind, d16, d32);
                    test_failure_count++;
                }
                if (reference_table && reference_table != k) {
                    const float r16 = reference_table->dot_f16(in.w16, in.x, n);
                    /* Another summation order: both within the bound of the exact value, so
                     * within twice that of each other; same inf / NaN. */
                    const bool ok = isfinite(r16) ? isfinite(d16) && fabs((double) d16 - r16) <= 2 * error_bound(&in)
                                                  : same_or_both_nan(d16, r16);
                    if (!ok) {
                        report(k->name, "differs from the scalar kernel", &in, offset, kind, d16, r16);
                        test_failure_count++;
                    }
                }
            }
        }
    }
    printf("  %s: dot_f16 / dot_f32 on %d inputs%s\n", k->name, n_cases, test_failure_count == before ? ": ok" : ": FAILED");
}

static void test_table_f16_to_f32(const struct rwkv_kernels * k) {
    static uint8_t src[2 * 65536 + 8];
    static float dst[65536 + 8];
    int bad = 0;
    for (size_t offset = 0; offset <= MAX_OFFSET; offset++) {
        for (uint32_t h = 0; h < 65536; h++) {
            const uint16_t v = (uint16_t) h;
            memcpy(src + offset + 2 * h, &v, 2);
        }
        float * out = dst + (offset % 2);
        k->f16_to_f32(src + offset, out, 65536);
        for (uint32_t h = 0; h < 65536; h++) {
            if (!same_or_both_nan(out[h], rwkv_f16_to_f32((uint16_t) h)) && bad++ < 5) {
                fprintf(stderr, "%s f16_to_f32(0x%04x) = %a, expected %a\n", k->name, h, out[h], rwkv_f16_to_f32((uint16_t) h));
            }
        }
    }
    /* Lengths 0..200: exactly n values written. */
    for (size_t n = 0; n <= 200; n++) {
        for (size_t i = 0; i < n + 8; i++) {
            dst[i] = -7.0f;
        }
        k->f16_to_f32(src + 1, dst, n);
        for (size_t i = n; i < n + 8; i++) {
            if (dst[i] != -7.0f && bad++ < 5) {
                fprintf(stderr, "%s f16_to_f32 of %zu values wrote dst[%zu]\n", k->name, n, i);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s f16_to_f32: %d wrong values", k->name, bad);
    printf("  %s: f16_to_f32 on every half at 4 offsets%s\n", k->name, bad ? ": FAILED" : ": ok");
}

/* Sequence mode must give each token the bits the single-token kernels give (so
 * rwkv_eval_sequence == rwkv_eval), and no table may leave an entry empty (a field added to
 * struct rwkv_kernels but forgotten in one ISA file would crash only on that ISA). */
static void test_table_sequence(const struct rwkv_kernels * k) {
    enum { ROWS = 5, TOKENS = 3, MAX_LEN = 256 };
    static const struct { uint32_t type; size_t block_bytes; } QUANT[] = {
        {RWKV_TYPE_Q4_0, 18}, {RWKV_TYPE_Q4_1, 20}, {RWKV_TYPE_Q5_0, 22}, {RWKV_TYPE_Q5_1, 24}, {RWKV_TYPE_Q8_0, 34},
    };
    const int before = test_failure_count;
    CHECK_MSG(k->dot_f32 && k->dot_f16 && k->f16_to_f32 && k->gemm_f32, "%s: an entry is NULL", k->name);
    for (size_t q = 0; q < sizeof(QUANT) / sizeof(QUANT[0]); q++) {
        CHECK_MSG(k->dot_quant[QUANT[q].type] && k->dot_quant_tokens[QUANT[q].type],
            "%s: no quantized kernels for type %u", k->name, (unsigned) QUANT[q].type);
    }
    if (test_failure_count != before) {
        return;
    }

    static float w[ROWS * (MAX_LEN + 3)], x[TOKENS * (MAX_LEN + 1)], y[TOKENS * (ROWS + 2)];
    static const size_t LENGTHS[] = {1, 7, 31, 32, 100, 256};
    for (size_t li = 0; li < sizeof(LENGTHS) / sizeof(LENGTHS[0]); li++) {
        const size_t n = LENGTHS[li], w_stride = n + 3, x_stride = n + 1, y_stride = ROWS + 2;
        for (size_t i = 0; i < ROWS * w_stride; i++) {
            w[i] = tw_uniform(-1.0f, 1.0f);
        }
        for (size_t i = 0; i < TOKENS * x_stride; i++) {
            x[i] = tw_uniform(-4.0f, 4.0f);
        }
        k->gemm_f32(w, w_stride, ROWS, x, x_stride, TOKENS, n, y, y_stride);
        for (size_t r = 0; r < ROWS; r++) {
            for (size_t t = 0; t < TOKENS; t++) {
                const float single = k->dot_f32((const uint8_t *) (w + r * w_stride), x + t * x_stride, n);
                CHECK_MSG(float_bits(y[t * y_stride + r]) == float_bits(single),
                    "%s gemm_f32, n %zu, row %zu, token %zu: %a, dot_f32 gives %a", k->name, n, r, t, y[t * y_stride + r], single);
            }
        }
    }

    enum { N = 4 * 32 };
    static uint8_t row[N / 32 * 34];
    static struct rwkv_q8_block activations[TOKENS * N / 32];
    for (size_t q = 0; q < sizeof(QUANT) / sizeof(QUANT[0]); q++) {
        for (size_t i = 0; i < N; i++) {
            w[i] = tw_uniform(-1.0f, 1.0f);
        }
        rwkv_quantize_row(QUANT[q].type, w, row, N);
        for (size_t t = 0; t < TOKENS; t++) {
            for (size_t i = 0; i < N; i++) {
                x[i] = tw_uniform(-4.0f, 4.0f);
            }
            rwkv_quantize_activations(x, activations + t * (N / 32), N);
        }
        k->dot_quant_tokens[QUANT[q].type](row, activations, N / 32, TOKENS, y, 2);
        for (size_t t = 0; t < TOKENS; t++) {
            const float single = k->dot_quant[QUANT[q].type](row, activations + t * (N / 32), N / 32);
            CHECK_MSG(float_bits(y[2 * t]) == float_bits(single), "%s dot_quant_tokens, type %u, token %zu: %a, dot_quant gives %a",
                k->name, (unsigned) QUANT[q].type, t, y[2 * t], single);
        }
    }
    printf("  %s: gemm_f32 / dot_quant_tokens against the single-token kernels%s\n", k->name,
        test_failure_count == before ? ": ok" : ": FAILED");
}

/* The WKV recurrences of a table against the scalar reference in wkv.c over several tokens,
 * head sizes 8, 16, 64 and 12 (not a multiple of any vector width: the fallback path). */
static void test_table_wkv(const struct rwkv_kernels * k) {
    enum { H = 3, HEAD_MAX = 64, STEPS = 6 };
    static const size_t SIZES[] = {8, 12, 16, 64};
    const int before = test_failure_count;
    for (size_t s = 0; s < sizeof(SIZES) / sizeof(SIZES[0]); s++) {
        const size_t N = SIZES[s], C = H * N;
        static float r[H * HEAD_MAX], kk[H * HEAD_MAX], v[H * HEAD_MAX], u[H * HEAD_MAX], w[H * HEAD_MAX], a[H * HEAD_MAX], b[H * HEAD_MAX];
        static float S_ref[H * HEAD_MAX * HEAD_MAX], S[H * HEAD_MAX * HEAD_MAX], out_ref[H * HEAD_MAX], out[H * HEAD_MAX];
        for (int version = 5; version <= 7; version += 2) {
            memset(S_ref, 0, sizeof(S_ref));
            memset(S, 0, sizeof(S));
            for (int step = 0; step < STEPS; step++) {
                for (size_t i = 0; i < C; i++) {
                    r[i] = tw_uniform(-1.0f, 1.0f);
                    kk[i] = tw_uniform(-1.0f, 1.0f);
                    v[i] = tw_uniform(-2.0f, 2.0f);
                    u[i] = tw_uniform(0.0f, 1.0f);
                    w[i] = tw_uniform(0.5f, 1.0f);
                    a[i] = tw_uniform(-0.3f, 0.0f);
                    b[i] = tw_uniform(0.0f, 0.3f);
                }
                if (version == 5) {
                    rwkv_wkv5(H, N, r, kk, v, u, w, S_ref, out_ref);
                    k->wkv5(H, N, r, kk, v, u, w, S, out);
                } else {
                    rwkv_wkv7(H, N, r, w, kk, v, a, b, S_ref, out_ref);
                    k->wkv7(H, N, r, w, kk, v, a, b, S, out);
                }
                for (size_t i = 0; i < C; i++) {
                    CHECK_MSG(fabsf(out[i] - out_ref[i]) <= 1e-4f * (1.0f + fabsf(out_ref[i])),
                              "%s wkv%d N %zu step %d out[%zu]: %g vs %g", k->name, version, N, step, i, out[i], out_ref[i]);
                }
                for (size_t i = 0; i < H * N * N; i++) {
                    CHECK_MSG(fabsf(S[i] - S_ref[i]) <= 1e-4f * (1.0f + fabsf(S_ref[i])),
                              "%s wkv%d N %zu step %d S[%zu]: %g vs %g", k->name, version, N, step, i, S[i], S_ref[i]);
                }
            }
        }
    }
    printf("  %s: wkv5 / wkv7 against the scalar recurrences: %s\n", k->name, test_failure_count == before ? "ok" : "FAILED");
}

int main(void) {
    printf("fp16 conversions\n");
    test_f16_to_f32_scalar();
    test_f32_to_f16();
    const bool simd = cpu_has_avx2_fma_f16c();
#if TEST_X86
    if (simd) {
        test_f32_to_f16_against_hardware();
    }
#elif TEST_NEON
    test_f32_to_f16_against_hardware();  /* AArch64 always has it */
#endif

    printf("kernel tables\n");
    test_table_dots(&rwkv_kernels_scalar, NULL);
    test_table_f16_to_f32(&rwkv_kernels_scalar);
    test_table_sequence(&rwkv_kernels_scalar);
#if defined(RWKV_HAVE_AVX2_KERNELS)
    if (simd) {
        test_table_dots(&rwkv_kernels_avx2, &rwkv_kernels_scalar);
        test_table_f16_to_f32(&rwkv_kernels_avx2);
        test_table_sequence(&rwkv_kernels_avx2);
        test_table_wkv(&rwkv_kernels_avx2);
    } else {
        printf("  avx2: skipped, this CPU lacks AVX2, FMA or F16C\n");
    }
    __builtin_cpu_init();
    if (simd && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512vnni")) {
        test_table_dots(&rwkv_kernels_avx512, &rwkv_kernels_scalar);
        test_table_f16_to_f32(&rwkv_kernels_avx512);
        test_table_sequence(&rwkv_kernels_avx512);
        test_table_wkv(&rwkv_kernels_avx512);
    } else {
        printf("  avx512: skipped, this CPU lacks AVX-512 F/BW/VL/VNNI\n");
    }
#else
    (void) simd;
    printf("  avx2: not compiled in on this platform\n");
#endif
#if defined(RWKV_HAVE_NEON_KERNELS)
    /* AArch64: Advanced SIMD with fp16 conversion and FMA is part of the base architecture. */
    test_table_dots(&rwkv_kernels_neon, &rwkv_kernels_scalar);
    test_table_f16_to_f32(&rwkv_kernels_neon);
    test_table_sequence(&rwkv_kernels_neon);
    test_table_wkv(&rwkv_kernels_neon);
#else
    printf("  neon: not compiled in on this platform\n");
#endif
    return test_finish("test_kernels");
}
