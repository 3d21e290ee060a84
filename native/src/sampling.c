/* sampling.c: the sampler of rwkv.h: logit bias, penalties (llama.cpp repetition, ChatRWKV
 * presence/frequency with decay), temperature, top-k, top-p, min-p and a seeded draw.
 * The order of the steps and their exact definitions are documented in rwkv.h. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "errors.h"
#include "rwkv.h"

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t * x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

void rwkv_rng_seed(struct rwkv_rng * rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        rng->s[i] = splitmix64(&x);
    }
}

uint64_t rwkv_rng_next(struct rwkv_rng * rng) {
    uint64_t * s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rwkv_rng_uniform(struct rwkv_rng * rng) {
    return (double) (rwkv_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);  /* 2^-53 */
}

uint64_t rwkv_rng_entropy_seed(const void * salt, uint64_t counter) {
    const int on_stack = 0;
    uint64_t x = (uint64_t) time(NULL) * 1000000000ull;
#ifdef TIME_UTC  /* C11's timespec_get, missing from some MinGW runtimes */
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC)) {
        x = (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
    }
#endif
    x ^= (uint64_t) (uintptr_t) salt * 0xff51afd7ed558ccdull;
    x ^= (uint64_t) (uintptr_t) &on_stack * 0xc4ceb9fe1a85ec53ull;
    x ^= (uint64_t) clock() << 40;
    x += counter * 0x9e3779b97f4a7c15ull;
    const uint64_t seed = splitmix64(&x);
    return seed == RWKV_SAMPLING_SEED_RANDOM ? 0 : seed;
}

/* ---- the sampler ---- */

struct rwkv_sampler {
    size_t n_vocab;
    struct rwkv_sampling_params params;
    uint64_t seed;       /* in use: params.seed or the one drawn for SEED_RANDOM */
    uint64_t n_seeded;   /* salt for the next random seed */
    struct rwkv_rng rng;
    struct rwkv_error error;
    bool print_errors;

    /* Logit bias: dense values, and which tokens have one (so applying it is O(n_bias)). */
    float * bias;
    uint32_t * bias_tokens;
    size_t n_bias;

    /* Penalties: the decayed count per token, and the distinct tokens seen since the reset. */
    double * occurrence;
    uint32_t * seen_tokens;
    size_t n_seen;

    /* Scratch for one call: the adjusted logits, and weights[t] = e^((logit[t] - max) / temperature)
     * (the unnormalized probabilities of step 3). */
    float * adjusted;
    float * weights;
    uint32_t * candidates;
    /* 1 for tokens in bias_tokens / seen_tokens. */
    uint8_t * has_bias;
    uint8_t * seen;

    void * memory;
};

/* Bytes of per-token arrays: occurrence (double); bias, adjusted, weights (float);
 * bias_tokens, seen_tokens, candidates (uint32_t); has_bias, seen (uint8_t). */
#define BYTES_PER_TOKEN (sizeof(double) + 3 * sizeof(float) + 3 * sizeof(uint32_t) + 2 * sizeof(uint8_t))

static struct rwkv_error * error_of(struct rwkv_sampler * s) {
    return s ? &s->error : rwkv_thread_error();
}

static bool fail_null_sampler(const char * function) {
    return rwkv_fail(rwkv_thread_error(), *rwkv_thread_print_errors(), RWKV_ERROR_ARGS, "%s: sampler is NULL", function);
}

static bool check_params(const struct rwkv_sampling_params * p, struct rwkv_error * err, bool print) {
    /* Written so NaN fails every test. */
    if (!(p->temperature >= 0.0f && isfinite(p->temperature))) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "temperature must be a finite number >= 0 (0: greedy), got %g", p->temperature);
    }
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "top_p must be in (0, 1] (1: off), got %g", p->top_p);
    }
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "min_p must be in [0, 1] (0: off), got %g", p->min_p);
    }
    if (!(p->repetition_penalty > 0.0f && isfinite(p->repetition_penalty))) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "repetition_penalty must be a finite number > 0 (1: off), got %g",
                         p->repetition_penalty);
    }
    if (!isfinite(p->presence_penalty)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "presence_penalty must be finite (0: off), got %g", p->presence_penalty);
    }
    if (!isfinite(p->frequency_penalty)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "frequency_penalty must be finite (0: off), got %g", p->frequency_penalty);
    }
    if (!(p->penalty_decay >= 0.0f && p->penalty_decay <= 1.0f)) {
        return rwkv_fail(err, print, RWKV_ERROR_ARGS, "penalty_decay must be in [0, 1] (1: no decay), got %g", p->penalty_decay);
    }
    return true;
}

static void reseed(struct rwkv_sampler * s) {
    s->seed = s->params.seed;
    if (s->seed == RWKV_SAMPLING_SEED_RANDOM) {
        s->seed = rwkv_rng_entropy_seed(s, s->n_seeded);
    }
    s->n_seeded++;
    rwkv_rng_seed(&s->rng, s->seed);
}

struct rwkv_sampling_params rwkv_sampling_default_params(void) {
    struct rwkv_sampling_params p;
    memset(&p, 0, sizeof(p));
    /* The rwkv pip package's PIPELINE_ARGS defaults. */
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 0.85f;
    p.min_p = 0.0f;
    p.repetition_penalty = 1.0f;
    p.presence_penalty = 0.2f;
    p.frequency_penalty = 0.2f;
    p.penalty_decay = 0.996f;
    p.seed = RWKV_SAMPLING_SEED_RANDOM;
    return p;
}

struct rwkv_sampler * rwkv_sampler_create(size_t n_vocab, const struct rwkv_sampling_params * params) {
    struct rwkv_error * err = rwkv_thread_error();
    const bool print = *rwkv_thread_print_errors();
    rwkv_error_clear(err);
    const struct rwkv_sampling_params p = params ? *params : rwkv_sampling_default_params();
    if (n_vocab == 0 || n_vocab > UINT32_MAX) {
        rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION,
                  "n_vocab must be in [1, %lu] (tokens are uint32_t), got %zu", (unsigned long) UINT32_MAX, n_vocab);
        return NULL;
    }
    if (!check_params(&p, err, print)) {
        return NULL;
    }
    struct rwkv_sampler * s = calloc(1, sizeof(*s));
    /* n_vocab <= UINT32_MAX and BYTES_PER_TOKEN is small: this cannot overflow on 64-bit size_t;
     * the check is for 32-bit hosts. */
    void * memory = n_vocab <= SIZE_MAX / BYTES_PER_TOKEN ? calloc(n_vocab, BYTES_PER_TOKEN) : NULL;
    if (!s || !memory) {
        free(s);
        free(memory);
        rwkv_fail(err, print, RWKV_ERROR_ARGS | RWKV_ERROR_ALLOC,
                  "out of memory allocating a sampler for %zu tokens (%zu bytes per token)", n_vocab, (size_t) BYTES_PER_TOKEN);
        return NULL;
    }
    /* Widest types first, so each array is aligned. */
    s->memory = memory;
    s->occurrence = memory;
    s->bias = (float *) (s->occurrence + n_vocab);
    s->adjusted = s->bias + n_vocab;
    s->weights = s->adjusted + n_vocab;
    s->bias_tokens = (uint32_t *) (s->weights + n_vocab);
    s->seen_tokens = s->bias_tokens + n_vocab;
    s->candidates = s->seen_tokens + n_vocab;
    s->has_bias = (uint8_t *) (s->candidates + n_vocab);
    s->seen = s->has_bias + n_vocab;

    s->n_vocab = n_vocab;
    s->params = p;
    s->print_errors = print;
    reseed(s);
    return s;
}

void rwkv_sampler_free(struct rwkv_sampler * s) {
    if (s) {
        free(s->memory);
        free(s);
    }
}

void rwkv_sampler_reset(struct rwkv_sampler * s) {
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->n_seen; i++) {
        const uint32_t t = s->seen_tokens[i];
        s->occurrence[t] = 0.0;
        s->seen[t] = 0;
    }
    s->n_seen = 0;
    reseed(s);
    rwkv_error_clear(&s->error);
}

uint64_t rwkv_sampler_get_seed(const struct rwkv_sampler * s) {
    return s ? s->seed : 0;
}

/* ---- errors ---- */

enum rwkv_error_flags rwkv_sampler_get_last_error(struct rwkv_sampler * s) {
    struct rwkv_error * err = error_of(s);
    const enum rwkv_error_flags flags = err->flags;
    err->flags = RWKV_ERROR_NONE;
    return flags;
}

const char * rwkv_sampler_get_last_error_message(const struct rwkv_sampler * s) {
    return s ? s->error.message : rwkv_thread_error()->message;
}

void rwkv_sampler_set_print_errors(struct rwkv_sampler * s, bool print_errors) {
    if (s) {
        s->print_errors = print_errors;
    } else {
        *rwkv_thread_print_errors() = print_errors;
    }
}

bool rwkv_sampler_get_print_errors(const struct rwkv_sampler * s) {
    return s ? s->print_errors : *rwkv_thread_print_errors();
}

/* ---- configuration and history ---- */

bool rwkv_sampler_set_logit_bias(struct rwkv_sampler * s, const uint32_t * tokens, const float * biases, size_t n) {
    if (!s) {
        return fail_null_sampler("rwkv_sampler_set_logit_bias");
    }
    rwkv_error_clear(&s->error);
    if (n > 0 && (!tokens || !biases)) {
        return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS, "logit bias: tokens or biases is NULL but n is %zu", n);
    }
    if (n > PTRDIFF_MAX / sizeof(float)) {  /* no array is that long: a negative count cast to size_t */
        return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS, "logit bias: n %zu is larger than any array", n);
    }
    /* Everything is checked before the old table is touched. */
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] >= s->n_vocab) {
            return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS,
                             "logit bias: token %u at index %zu is out of range [0, %zu)", tokens[i], i, s->n_vocab);
        }
        if (isnan(biases[i]) || biases[i] == INFINITY) {
            return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS,
                             "logit bias: the bias of token %u (index %zu) is %g; it must be finite or -inf (ban)",
                             tokens[i], i, biases[i]);
        }
    }
    /* Sum duplicates in the scratch array first: an overflow must leave the old table. */
    float * sum = s->adjusted;
    for (size_t i = 0; i < n; i++) {
        sum[tokens[i]] = 0.0f;
    }
    for (size_t i = 0; i < n; i++) {
        sum[tokens[i]] += biases[i];
        if (sum[tokens[i]] == INFINITY) {
            return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS,
                             "logit bias: token %u is listed several times and its biases sum to +inf", tokens[i]);
        }
    }
    for (size_t i = 0; i < s->n_bias; i++) {
        const uint32_t t = s->bias_tokens[i];
        s->bias[t] = 0.0f;
        s->has_bias[t] = 0;
    }
    s->n_bias = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t t = tokens[i];
        if (!s->has_bias[t]) {
            s->has_bias[t] = 1;
            s->bias_tokens[s->n_bias++] = t;
            s->bias[t] = sum[t];
        }
    }
    return true;
}

bool rwkv_sampler_accept(struct rwkv_sampler * s, uint32_t token) {
    if (!s) {
        return fail_null_sampler("rwkv_sampler_accept");
    }
    rwkv_error_clear(&s->error);
    if (token >= s->n_vocab) {
        return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS, "accept: token %u is out of range [0, %zu)", token, s->n_vocab);
    }
    /* PIPELINE.generate: every earlier occurrence decays, then the new token counts 1. */
    const double decay = s->params.penalty_decay;
    if (decay != 1.0) {
        for (size_t i = 0; i < s->n_seen; i++) {
            s->occurrence[s->seen_tokens[i]] *= decay;
        }
    }
    if (!s->seen[token]) {
        s->seen[token] = 1;
        s->seen_tokens[s->n_seen++] = token;
    }
    s->occurrence[token] += 1.0;
    return true;
}

/* ---- the steps ---- */

static bool check_call(struct rwkv_sampler * s, const char * function, const float * logits, size_t n_vocab, const void * out) {
    if (!s) {
        return fail_null_sampler(function);
    }
    rwkv_error_clear(&s->error);
    if (!logits || !out) {
        return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS, "%s: %s is NULL", function, logits ? "the output" : "logits");
    }
    if (n_vocab != s->n_vocab) {
        return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION,
                         "%s: got %zu logits, but the sampler was created for n_vocab %zu", function, n_vocab, s->n_vocab);
    }
    return true;
}

/* Steps 1-2 into out (which may be logits). */
static bool adjust(struct rwkv_sampler * s, const float * logits, float * out) {
    const size_t n_vocab = s->n_vocab;
    /* !(v < inf) is true for NaN and +inf; one flag for the whole array keeps the loop vectorized. */
    bool bad = false;
    for (size_t i = 0; i < n_vocab; i++) {
        bad |= !(logits[i] < INFINITY);
    }
    for (size_t i = 0; bad && i < n_vocab; i++) {
        if (!(logits[i] < INFINITY)) {
            return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS | RWKV_ERROR_DATA,
                             "the logit of token %zu is %g; logits must be finite or -inf (banned)", i, logits[i]);
        }
    }
    memmove(out, logits, n_vocab * sizeof(float));
    for (size_t i = 0; i < s->n_bias; i++) {
        const uint32_t t = s->bias_tokens[i];
        out[t] += s->bias[t];
    }
    const float repetition = s->params.repetition_penalty;
    const double presence = s->params.presence_penalty;
    const double frequency = s->params.frequency_penalty;
    for (size_t i = 0; i < s->n_seen; i++) {
        const uint32_t t = s->seen_tokens[i];
        float v = out[t];
        if (repetition != 1.0f) {
            v = v > 0.0f ? v / repetition : v * repetition;
        }
        out[t] = (float) ((double) v - (presence + s->occurrence[t] * frequency));
    }
    /* Only biased or penalized logits changed; a large bias or bonus may overflow. */
    for (size_t i = 0; i < s->n_bias + s->n_seen; i++) {
        const uint32_t t = i < s->n_bias ? s->bias_tokens[i] : s->seen_tokens[i - s->n_bias];
        if (isnan(out[t]) || out[t] == INFINITY) {
            return rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS | RWKV_ERROR_DATA,
                             "the logit of token %u (%g) becomes %g after logit bias and penalties", t, logits[t], out[t]);
        }
    }
    return true;
}

/* mask all ones: a, all zeros: b. An integer select, not a branch: with -ftrapping-math (the
 * default) GCC vectorizes no loop that would have to if-convert floating-point arithmetic. */
static inline float select_float(uint32_t mask, float a, float b) {
    uint32_t a_bits, b_bits;
    memcpy(&a_bits, &a, sizeof(a_bits));
    memcpy(&b_bits, &b, sizeof(b_bits));
    const uint32_t bits = (a_bits & mask) | (b_bits & ~mask);
    float result;
    memcpy(&result, &bits, sizeof(result));
    return result;
}

/* e^x for x <= 0 in float: 0 below -87.3 (where e^x leaves the normal float range), else
 * within 2 ulp. Plain float arithmetic instead of libm: the same bits on every platform (so a
 * seed gives the same tokens everywhere), and the loop over the vocabulary vectorizes.
 * Cody-Waite reduction x = n ln2 + r with |r| <= ln2 / 2 (Cephes' split of ln2), then the
 * degree-7 Taylor polynomial of e^r (truncation error < 5e-9), then times 2^n. */
static inline float exp_nonpositive(float x) {
    const float x_min = -87.3f;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const uint32_t in_range = -(uint32_t) (x >= x_min);  /* false for -inf */
    const float xc = select_float(in_range, x, x_min);
    const float n = (xc * 1.44269504f + shifter) - shifter;  /* in [-126, 0] */
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n from its bits; 0 below x_min. */
    const uint32_t scale_bits = ((uint32_t) ((int32_t) n + 127) << 23) & in_range;
    float scale;
    memcpy(&scale, &scale_bits, sizeof(scale));
    return p * scale;
}

/* The order of steps 4-5: larger logit first, lower id on ties (a total order). */
static bool ranks_before(const float * logit, uint32_t a, uint32_t b) {
    return logit[a] > logit[b] || (logit[a] == logit[b] && a < b);
}

static void swap_tokens(uint32_t * c, size_t i, size_t j) {
    const uint32_t t = c[i];
    c[i] = c[j];
    c[j] = t;
}

/* Partitions c[lo .. hi) (hi - lo >= 2) around a pivot: the tokens ranking before it, then the
 * pivot, whose index is returned, then the rest. *mass_before gets the weight of the tokens
 * before the pivot when weight is not NULL. The pivot is the median of three positions drawn
 * from *state, a generator private to the call (the sampler's own stream is untouched), so
 * the expected cost is O(hi - lo) whatever the order of the input. */
static size_t partition(uint32_t * c, size_t lo, size_t hi, const float * logit, const float * weight,
                        double * mass_before, uint64_t * state) {
    size_t pick[3];
    for (int i = 0; i < 3; i++) {
        pick[i] = lo + (size_t) (splitmix64(state) % (hi - lo));
    }
    size_t median = pick[0];
    const bool ab = ranks_before(logit, c[pick[0]], c[pick[1]]);
    const bool bc = ranks_before(logit, c[pick[1]], c[pick[2]]);
    const bool ac = ranks_before(logit, c[pick[0]], c[pick[2]]);
    if (ab == bc) {
        median = pick[1];
    } else if (ab != ac) {
        median = pick[2];
    }
    const size_t last = hi - 1;
    swap_tokens(c, median, last);
    const uint32_t pivot = c[last];
    size_t store = lo;
    double mass = 0.0;
    for (size_t i = lo; i < last; i++) {
        if (ranks_before(logit, c[i], pivot)) {
            if (weight) {
                mass += weight[c[i]];
            }
            swap_tokens(c, i, store++);
        }
    }
    swap_tokens(c, store, last);
    if (mass_before) {
        *mass_before = mass;
    }
    return store;
}

/* Fixed seed of the pivot choices: the kept set does not depend on it, only the (deterministic)
 * order of the kept tokens. */
#define PARTITION_SEED 0x5851f42d4c957f2dull

/* Step 4: moves the k best of c[0 .. n) (k < n) to the front, in expected O(n). */
static void keep_top_k(uint32_t * c, size_t n, size_t k, const float * logit) {
    uint64_t state = PARTITION_SEED;
    /* c[0 .. lo) ranks before c[lo .. hi), which ranks before c[hi .. n); lo <= k <= hi. */
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        const size_t p = partition(c, lo, hi, logit, NULL, NULL, &state);
        if (p == k) {
            return;
        }
        if (p < k) {
            lo = p + 1;
        } else {
            hi = p;
        }
    }
}

/* Step 5: moves the smallest best-first prefix of c[0 .. n) holding >= top_p of its weight to
 * the front and returns its length, in expected O(n). */
static size_t keep_top_p(uint32_t * c, size_t n, double top_p, const float * logit, const float * weight) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        total += weight[c[i]];
    }
    const double threshold = top_p * total;
    uint64_t state = PARTITION_SEED;
    /* The answer m is in (lo, hi]: the best lo tokens (c[0 .. lo), weighing mass_lo) hold less
     * than threshold, the best hi at least that (or hi is n). */
    size_t lo = 0, hi = n;
    double mass_lo = 0.0;
    while (hi - lo > 1) {
        double before;
        const size_t p = partition(c, lo, hi, logit, weight, &before, &state);
        const double mass_p = mass_lo + before;  /* the best p tokens */
        const double mass_p1 = mass_p + weight[c[p]];
        if (mass_p >= threshold) {
            hi = p;
        } else if (mass_p1 >= threshold) {
            return p + 1;
        } else {
            lo = p + 1;
            mass_lo = mass_p1;
        }
    }
    return hi;
}

/* Steps 1-6: fills s->candidates and s->weights; returns how many candidates (0 on error)
 * and their total weight. */
static size_t select_candidates(struct rwkv_sampler * s, const float * logits, double * total_out) {
    float * logit = s->adjusted;
    if (!adjust(s, logits, logit)) {
        return 0;
    }
    const size_t n_vocab = s->n_vocab;
    /* The largest value (a loop that vectorizes), then its first position. */
    float largest = logit[0];
    for (size_t i = 1; i < n_vocab; i++) {
        largest = logit[i] > largest ? logit[i] : largest;
    }
    size_t argmax = 0;
    while (logit[argmax] != largest) {
        argmax++;
    }
    if (logit[argmax] == -INFINITY) {
        rwkv_fail(&s->error, s->print_errors, RWKV_ERROR_ARGS | RWKV_ERROR_DATA,
                  "every token is banned: all %zu logits are -inf after logit bias and penalties", n_vocab);
        return 0;
    }
    const struct rwkv_sampling_params * p = &s->params;
    if (p->temperature == 0.0f) {
        s->candidates[0] = (uint32_t) argmax;
        s->weights[argmax] = 1.0f;
        *total_out = 1.0;
        return 1;
    }

    /* Step 3, as weights relative to the largest, which gets exactly 1 (e^0). */
    const float max_logit = logit[argmax];
    const float temperature = p->temperature;
    float * weight = s->weights;
    for (size_t i = 0; i < n_vocab; i++) {
        weight[i] = exp_nonpositive((logit[i] - max_logit) / temperature);
    }
    uint32_t * c = s->candidates;
    size_t n = 0;
    for (size_t i = 0; i < n_vocab; i++) {
        c[n] = (uint32_t) i;  /* branch-free: most tokens are kept */
        n += weight[i] > 0.0f;
    }
    if (p->top_k > 0 && p->top_k < n) {
        keep_top_k(c, n, p->top_k, logit);
        n = p->top_k;
    }
    if (p->top_p < 1.0f) {
        n = keep_top_p(c, n, p->top_p, logit, weight);
    }
    if (p->min_p > 0.0f) {
        /* The largest kept weight is the argmax's, 1. */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (weight[c[i]] >= p->min_p) {
                c[kept++] = c[i];
            }
        }
        n = kept;
    }
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        total += weight[c[i]];
    }
    *total_out = total;
    return n;
}

bool rwkv_sampler_apply(struct rwkv_sampler * s, const float * logits, size_t n_vocab, float * adjusted) {
    return check_call(s, "rwkv_sampler_apply", logits, n_vocab, adjusted) && adjust(s, logits, adjusted);
}

bool rwkv_sampler_get_probs(struct rwkv_sampler * s, const float * logits, size_t n_vocab, float * probs) {
    if (!check_call(s, "rwkv_sampler_get_probs", logits, n_vocab, probs)) {
        return false;
    }
    double total;
    const size_t n = select_candidates(s, logits, &total);
    if (n == 0) {
        return false;
    }
    memset(probs, 0, n_vocab * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        const uint32_t t = s->candidates[i];
        probs[t] = (float) ((double) s->weights[t] / total);
    }
    return true;
}

bool rwkv_sampler_sample(struct rwkv_sampler * s, const float * logits, size_t n_vocab, uint32_t * token_out) {
    if (!check_call(s, "rwkv_sampler_sample", logits, n_vocab, token_out)) {
        return false;
    }
    double total;
    const size_t n = select_candidates(s, logits, &total);
    if (n == 0) {
        return false;
    }
    if (s->params.temperature == 0.0f) {
        *token_out = s->candidates[0];
        return true;
    }
    const double target = rwkv_rng_uniform(&s->rng) * total;
    double mass = 0.0;
    for (size_t i = 0; i < n; i++) {
        mass += s->weights[s->candidates[i]];
        if (target < mass) {
            *token_out = s->candidates[i];
            return true;
        }
    }
    /* Rounding left target at or above the summed mass: the last token owns that edge. */
    *token_out = s->candidates[n - 1];
    return true;
}
