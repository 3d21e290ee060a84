/* test_sampling.c: the sampler of rwkv.h through the public header only: parameter and
 * argument checks (never a crash), greedy ties, logit bias, penalties against the documented
 * formulas recomputed here, NaN / inf logits, top-k / top-p / min-p sets, seeds, and drawn
 * frequencies against rwkv_sampler_get_probs. The statistical comparisons against an
 * independent numpy implementation live in tests/test_sampling.py. */
#include "rwkv.h"
#include "test_util.h"

/* Penalties are computed in double and rounded to float once; recomputing them here with
 * pow() instead of repeated multiplication differs by a few ulp at most. */
#define PENALTY_TOLERANCE 1e-5

static uint64_t rng_state = 0x243f6a8885a308d3ull;

/* Uniform in [lo, hi), independent of the library's generator. */
static float uniform(float lo, float hi) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    const uint64_t x = rng_state * 0x2545f4914f6cdd1dull;
    return lo + (hi - lo) * (float) (x >> 40) / (float) (1ull << 24);
}

static void random_logits(float * logits, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        logits[i] = uniform(-scale, scale);
    }
}

static struct rwkv_sampling_params plain_params(float temperature, uint64_t seed) {
    struct rwkv_sampling_params p = rwkv_sampling_default_params();
    p.temperature = temperature;
    p.top_p = 1.0f;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.seed = seed;
    return p;
}

static bool contains(const char * haystack, const char * needle) {
    return haystack && strstr(haystack, needle) != NULL;
}

static void test_defaults(void) {
    printf("defaults\n");
    const struct rwkv_sampling_params p = rwkv_sampling_default_params();
    CHECK(p.temperature == 1.0f);
    CHECK(p.top_k == 0);
    CHECK(p.top_p == 0.85f);
    CHECK(p.min_p == 0.0f);
    CHECK(p.repetition_penalty == 1.0f);
    CHECK(p.presence_penalty == 0.2f);
    CHECK(p.frequency_penalty == 0.2f);
    CHECK(p.penalty_decay == 0.996f);
    CHECK(p.seed == RWKV_SAMPLING_SEED_RANDOM);

    /* NULL params: the defaults, with a random seed that differs between samplers. */
    struct rwkv_sampler * a = rwkv_sampler_create(10, NULL);
    struct rwkv_sampler * b = rwkv_sampler_create(10, NULL);
    CHECK(a && b);
    CHECK(rwkv_sampler_get_seed(a) != RWKV_SAMPLING_SEED_RANDOM);
    CHECK_MSG(rwkv_sampler_get_seed(a) != rwkv_sampler_get_seed(b), "two random seeds are equal: %llu",
              (unsigned long long) rwkv_sampler_get_seed(a));
    const uint64_t before = rwkv_sampler_get_seed(a);
    rwkv_sampler_reset(a);
    CHECK_MSG(rwkv_sampler_get_seed(a) != before, "reset with SEED_RANDOM kept the seed");
    rwkv_sampler_free(a);
    rwkv_sampler_free(b);
    rwkv_sampler_free(NULL);
    rwkv_sampler_reset(NULL);
}

static void expect_create_error(struct rwkv_sampling_params p, size_t n_vocab, const char * name) {
    struct rwkv_sampler * s = rwkv_sampler_create(n_vocab, &p);
    CHECK_MSG(s == NULL, "%s: accepted", name);
    rwkv_sampler_free(s);
    const char * message = rwkv_get_last_error_message(NULL);
    CHECK_MSG(contains(message, name), "message for %s: \"%s\"", name, message);
    CHECK((rwkv_get_last_error(NULL) & 0xff00) == RWKV_ERROR_ARGS);
}

static void test_bad_params(void) {
    printf("bad parameters\n");
    const struct rwkv_sampling_params d = plain_params(1.0f, 1);
    struct rwkv_sampling_params p;
    expect_create_error(d, 0, "n_vocab");
    if (sizeof(size_t) > 4) {
        expect_create_error(d, (size_t) UINT32_MAX + 1, "n_vocab");
    }
#define BAD(field, value) (p = d, p.field = (value), expect_create_error(p, 10, #field))
    BAD(temperature, -0.5f);
    BAD(temperature, NAN);
    BAD(temperature, INFINITY);
    BAD(top_p, 0.0f);
    BAD(top_p, 1.5f);
    BAD(top_p, NAN);
    BAD(min_p, -0.1f);
    BAD(min_p, 1.01f);
    BAD(min_p, NAN);
    BAD(repetition_penalty, 0.0f);
    BAD(repetition_penalty, -1.0f);
    BAD(repetition_penalty, INFINITY);
    BAD(presence_penalty, NAN);
    BAD(frequency_penalty, -INFINITY);
    BAD(penalty_decay, 1.5f);
    BAD(penalty_decay, -0.1f);
#undef BAD
    /* Edges that are allowed. */
    p = d;
    p.top_p = 1.0f;
    p.min_p = 1.0f;
    p.penalty_decay = 0.0f;
    p.presence_penalty = -2.0f;
    p.top_k = UINT32_MAX;
    p.temperature = 1e30f;
    struct rwkv_sampler * s = rwkv_sampler_create(1, &p);
    CHECK(s != NULL);
    rwkv_sampler_free(s);
}

static void test_bad_arguments(void) {
    printf("bad arguments\n");
    float logits[8] = {0}, out[8];
    uint32_t token = 12345;
    CHECK(!rwkv_sampler_sample(NULL, logits, 8, &token));
    CHECK(contains(rwkv_sampler_get_last_error_message(NULL), "sampler is NULL"));
    CHECK(rwkv_sampler_get_last_error(NULL) == RWKV_ERROR_ARGS);
    CHECK(!rwkv_sampler_accept(NULL, 0));
    CHECK(!rwkv_sampler_apply(NULL, logits, 8, out));
    CHECK(!rwkv_sampler_get_probs(NULL, logits, 8, out));
    CHECK(!rwkv_sampler_set_logit_bias(NULL, NULL, NULL, 0));
    CHECK(rwkv_sampler_get_seed(NULL) == 0);

    struct rwkv_sampling_params p = plain_params(1.0f, 7);
    struct rwkv_sampler * s = rwkv_sampler_create(8, &p);
    rwkv_sampler_set_print_errors(s, false);
    CHECK(!rwkv_sampler_get_print_errors(s));
    CHECK(!rwkv_sampler_sample(s, NULL, 8, &token));
    CHECK(contains(rwkv_sampler_get_last_error_message(s), "logits is NULL"));
    CHECK(!rwkv_sampler_sample(s, logits, 8, NULL));
    CHECK(!rwkv_sampler_apply(s, logits, 8, NULL));
    CHECK(!rwkv_sampler_get_probs(s, logits, 8, NULL));
    CHECK(!rwkv_sampler_sample(s, logits, 9, &token));
    CHECK(contains(rwkv_sampler_get_last_error_message(s), "got 9 logits"));
    CHECK(rwkv_sampler_get_last_error(s) == (RWKV_ERROR_ARGS | RWKV_ERROR_DIMENSION));
    CHECK(rwkv_sampler_get_last_error(s) == RWKV_ERROR_NONE);  /* read and cleared */
    CHECK(token == 12345);  /* never written on failure */
    CHECK(!rwkv_sampler_accept(s, 8));
    CHECK(contains(rwkv_sampler_get_last_error_message(s), "token 8 is out of range"));
    CHECK(!rwkv_sampler_set_logit_bias(s, NULL, NULL, 3));

    /* NaN and +inf logits name the token; -inf everywhere means nothing is left. */
    logits[5] = NAN;
    CHECK(!rwkv_sampler_sample(s, logits, 8, &token));
    CHECK(contains(rwkv_sampler_get_last_error_message(s), "token 5"));
    CHECK(rwkv_sampler_get_last_error(s) == (RWKV_ERROR_ARGS | RWKV_ERROR_DATA));
    logits[5] = INFINITY;
    CHECK(!rwkv_sampler_get_probs(s, logits, 8, out));
    CHECK(contains(rwkv_sampler_get_last_error_message(s), "token 5"));
    for (int i = 0; i < 8; i++) {
        logits[i] = -INFINITY;
    }
    CHECK(!rwkv_sampler_sample(s, logits, 8, &token));
    CHECK(contains(rwkv_sampler_get_last_error_message(s), "every token is banned"));
    logits[3] = 0.0f;
    CHECK(rwkv_sampler_sample(s, logits, 8, &token) && token == 3);
    CHECK(rwkv_sampler_get_last_error(s) == RWKV_ERROR_NONE);
    CHECK(rwkv_sampler_get_last_error_message(s)[0] == '\0');  /* a success clears the message */

    /* A penalty that overflows the float range is an error, not +inf. */
    struct rwkv_sampling_params q = plain_params(1.0f, 7);
    q.repetition_penalty = 1e-30f;
    struct rwkv_sampler * t = rwkv_sampler_create(8, &q);
    rwkv_sampler_set_print_errors(t, false);
    float big[8] = {1e30f, 0, 0, 0, 0, 0, 0, 0};
    CHECK(rwkv_sampler_accept(t, 0));
    CHECK(!rwkv_sampler_apply(t, big, 8, out));
    CHECK(contains(rwkv_sampler_get_last_error_message(t), "token 0"));
    rwkv_sampler_free(t);
    rwkv_sampler_free(s);
}

static void test_greedy(void) {
    printf("greedy\n");
    struct rwkv_sampling_params p = plain_params(0.0f, 1);
    p.top_k = 1;
    p.top_p = 0.1f;
    struct rwkv_sampler * s = rwkv_sampler_create(6, &p);
    const float logits[6] = {1.0f, 3.0f, -INFINITY, 3.0f, 2.0f, 3.0f};
    uint32_t token;
    for (int i = 0; i < 5; i++) {
        CHECK(rwkv_sampler_sample(s, logits, 6, &token) && token == 1);
    }
    float probs[6];
    CHECK(rwkv_sampler_get_probs(s, logits, 6, probs));
    CHECK(probs[1] == 1.0f && probs[0] == 0.0f && probs[3] == 0.0f && probs[5] == 0.0f);
    const uint32_t banned[1] = {1};
    const float minus_inf[1] = {-INFINITY};
    CHECK(rwkv_sampler_set_logit_bias(s, banned, minus_inf, 1));
    CHECK(rwkv_sampler_sample(s, logits, 6, &token) && token == 3);
    rwkv_sampler_free(s);
}

static void test_logit_bias(void) {
    printf("logit bias\n");
    struct rwkv_sampling_params p = plain_params(1.0f, 3);
    struct rwkv_sampler * s = rwkv_sampler_create(5, &p);
    rwkv_sampler_set_print_errors(s, false);
    const float logits[5] = {0.5f, -1.0f, 2.0f, 0.0f, -INFINITY};
    float out[5];
    const uint32_t tokens[4] = {0, 2, 0, 4};
    const float biases[4] = {1.0f, -INFINITY, 0.25f, 3.0f};
    CHECK(rwkv_sampler_set_logit_bias(s, tokens, biases, 4));
    CHECK(rwkv_sampler_apply(s, logits, 5, out));
    CHECK_MSG(out[0] == 1.75f, "duplicates sum: %g", out[0]);
    CHECK(out[1] == -1.0f && out[2] == -INFINITY && out[3] == 0.0f && out[4] == -INFINITY);
    for (int i = 0; i < 200; i++) {
        uint32_t token;
        CHECK(rwkv_sampler_sample(s, logits, 5, &token) && token != 2 && token != 4);
    }

    /* A failed update keeps the old table. */
    const uint32_t bad_token[1] = {5};
    const float one[1] = {1.0f};
    CHECK(!rwkv_sampler_set_logit_bias(s, bad_token, one, 1));
    CHECK(contains(rwkv_sampler_get_last_error_message(s), "token 5"));
    const uint32_t two[1] = {2};
    const float nan_bias[1] = {NAN}, inf_bias[1] = {INFINITY};
    CHECK(!rwkv_sampler_set_logit_bias(s, two, nan_bias, 1));
    CHECK(!rwkv_sampler_set_logit_bias(s, two, inf_bias, 1));
    const uint32_t twice[2] = {3, 3};
    const float huge[2] = {3e38f, 3e38f};
    CHECK(!rwkv_sampler_set_logit_bias(s, twice, huge, 2));
    CHECK(rwkv_sampler_apply(s, logits, 5, out) && out[0] == 1.75f && out[2] == -INFINITY && out[3] == 0.0f);

    /* In place, and n 0 clears. The table survives reset. */
    rwkv_sampler_reset(s);
    float in_place[5];
    memcpy(in_place, logits, sizeof(in_place));
    CHECK(rwkv_sampler_apply(s, in_place, 5, in_place) && in_place[0] == 1.75f);
    CHECK(rwkv_sampler_set_logit_bias(s, NULL, NULL, 0));
    CHECK(rwkv_sampler_apply(s, logits, 5, out) && memcmp(out, logits, sizeof(out)) == 0);
    rwkv_sampler_free(s);
}

static void test_penalties(void) {
    printf("penalties\n");
    enum { V = 12 };
    struct rwkv_sampling_params p = plain_params(1.0f, 3);
    p.presence_penalty = 0.3f;
    p.frequency_penalty = 0.7f;
    p.penalty_decay = 0.9f;
    p.repetition_penalty = 1.25f;
    struct rwkv_sampler * s = rwkv_sampler_create(V, &p);
    float logits[V], out[V];
    random_logits(logits, V, 4.0f);
    logits[7] = -INFINITY;

    /* Nothing accepted yet: no change. */
    CHECK(rwkv_sampler_apply(s, logits, V, out) && memcmp(out, logits, sizeof(out)) == 0);

    const uint32_t history[] = {3, 5, 3, 7, 0, 3, 11, 5};
    const size_t n_history = sizeof(history) / sizeof(history[0]);
    for (size_t n = 1; n <= n_history; n++) {
        CHECK(rwkv_sampler_accept(s, history[n - 1]));
        CHECK(rwkv_sampler_apply(s, logits, V, out));
        for (uint32_t t = 0; t < V; t++) {
            /* occurrence[t] = sum over copies of decay^(tokens accepted after it). */
            double occurrence = 0.0;
            bool seen = false;
            for (size_t i = 0; i < n; i++) {
                if (history[i] == t) {
                    occurrence += pow(p.penalty_decay, (double) (n - 1 - i));
                    seen = true;
                }
            }
            double expected = logits[t];
            if (seen) {
                expected = expected > 0 ? expected / p.repetition_penalty : expected * p.repetition_penalty;
                expected -= p.presence_penalty + occurrence * p.frequency_penalty;
            }
            if (isinf(expected)) {
                CHECK_MSG(out[t] == (float) expected, "after %zu tokens, token %u: %g", n, t, out[t]);
            } else {
                CHECK_MSG(fabs(out[t] - expected) <= PENALTY_TOLERANCE * fmax(1.0, fabs(expected)),
                          "after %zu tokens, token %u: got %.9g, expected %.9g", n, t, out[t], expected);
            }
        }
    }
    /* reset forgets the history. */
    rwkv_sampler_reset(s);
    CHECK(rwkv_sampler_apply(s, logits, V, out) && memcmp(out, logits, sizeof(out)) == 0);
    rwkv_sampler_free(s);
}

/* Draws n tokens; counts[] gets the frequencies. */
static void draw(struct rwkv_sampler * s, const float * logits, size_t n_vocab, int n, int * counts) {
    memset(counts, 0, n_vocab * sizeof(int));
    for (int i = 0; i < n; i++) {
        uint32_t token = UINT32_MAX;
        if (!rwkv_sampler_sample(s, logits, n_vocab, &token) || token >= n_vocab) {
            CHECK_MSG(false, "sample failed: %s", rwkv_sampler_get_last_error_message(s));
            return;
        }
        counts[token]++;
    }
}

static void test_filters(void) {
    printf("top-k, top-p, min-p\n");
    enum { V = 300, DRAWS = 20000 };
    float logits[V], probs[V];
    int counts[V];
    random_logits(logits, V, 3.0f);

    /* top-k: exactly the k largest logits can come out. */
    struct rwkv_sampling_params p = plain_params(2.0f, 11);
    p.top_k = 10;
    struct rwkv_sampler * s = rwkv_sampler_create(V, &p);
    CHECK(rwkv_sampler_get_probs(s, logits, V, probs));
    int n_kept = 0;
    for (int t = 0; t < V; t++) {
        int n_larger = 0;
        for (int u = 0; u < V; u++) {
            n_larger += logits[u] > logits[t];
        }
        const bool in_top_k = n_larger < 10;
        CHECK_MSG((probs[t] > 0) == in_top_k, "token %d: prob %g, %d logits larger", t, probs[t], n_larger);
        n_kept += probs[t] > 0;
    }
    CHECK(n_kept == 10);
    {
        /* Ties at the boundary: the lower ids stay. */
        const float tied[10] = {2, 0, 1, 1, 1, 1, -1, 1, 1, 1};
        struct rwkv_sampling_params q = plain_params(1.0f, 1);
        q.top_k = 3;
        struct rwkv_sampler * t = rwkv_sampler_create(10, &q);
        float tied_probs[10];
        CHECK(rwkv_sampler_get_probs(t, tied, 10, tied_probs));
        for (int i = 0; i < 10; i++) {
            CHECK_MSG((tied_probs[i] > 0) == (i == 0 || i == 2 || i == 3), "tied top-k: token %d prob %g", i, tied_probs[i]);
        }
        rwkv_sampler_free(t);
    }
    draw(s, logits, V, DRAWS, counts);
    for (int t = 0; t < V; t++) {
        CHECK_MSG(counts[t] == 0 || probs[t] > 0, "token %d drawn %d times outside the top k", t, counts[t]);
    }
    rwkv_sampler_free(s);

    /* top-p and min-p: the kept set is a best-first prefix, the smallest holding top_p. */
    p = plain_params(1.0f, 12);
    p.top_p = 0.6f;
    s = rwkv_sampler_create(V, &p);
    CHECK(rwkv_sampler_get_probs(s, logits, V, probs));
    double full[V], z = 0.0, max_logit = -INFINITY;
    for (int t = 0; t < V; t++) {
        max_logit = fmax(max_logit, logits[t]);
    }
    for (int t = 0; t < V; t++) {
        full[t] = exp(logits[t] - max_logit);
        z += full[t];
    }
    double kept_mass = 0.0, smallest_kept = INFINITY, largest_dropped = 0.0;
    for (int t = 0; t < V; t++) {
        if (probs[t] > 0) {
            kept_mass += full[t] / z;
            smallest_kept = fmin(smallest_kept, full[t]);
        } else {
            largest_dropped = fmax(largest_dropped, full[t]);
        }
    }
    CHECK_MSG(smallest_kept >= largest_dropped, "not a prefix: kept %g < dropped %g", smallest_kept, largest_dropped);
    CHECK_MSG(kept_mass >= 0.6 && kept_mass - smallest_kept / z < 0.6, "kept mass %g", kept_mass);
    rwkv_sampler_free(s);

    p = plain_params(1.0f, 13);
    p.min_p = 0.2f;
    s = rwkv_sampler_create(V, &p);
    CHECK(rwkv_sampler_get_probs(s, logits, V, probs));
    for (int t = 0; t < V; t++) {
        const double ratio = full[t];  /* p / p_max */
        if (fabs(ratio - 0.2) > 1e-6) {
            CHECK_MSG((probs[t] > 0) == (ratio >= 0.2), "min-p: token %d ratio %g prob %g", t, ratio, probs[t]);
        }
    }
    rwkv_sampler_free(s);
}

static void test_frequencies(void) {
    printf("drawn frequencies match get_probs\n");
    enum { V = 50, DRAWS = 100000 };
    float logits[V], probs[V];
    int counts[V];
    random_logits(logits, V, 2.0f);
    struct rwkv_sampling_params p = plain_params(0.8f, 99);
    p.top_k = 30;
    p.top_p = 0.9f;
    struct rwkv_sampler * s = rwkv_sampler_create(V, &p);
    CHECK(rwkv_sampler_get_probs(s, logits, V, probs));
    double sum = 0.0;
    for (int t = 0; t < V; t++) {
        sum += probs[t];
    }
    CHECK_MSG(fabs(sum - 1.0) < 1e-5, "probabilities sum to %g", sum);
    draw(s, logits, V, DRAWS, counts);
    /* Per token, |count - n p| <= 5.5 sigma: P(any false failure) < 50 * 4e-8. */
    for (int t = 0; t < V; t++) {
        const double expected = DRAWS * (double) probs[t];
        const double sigma = sqrt(DRAWS * (double) probs[t] * (1.0 - probs[t]));
        CHECK_MSG(fabs(counts[t] - expected) <= 5.5 * sigma + (probs[t] == 0 ? 0 : 1),
                  "token %d: %d draws, expected %.1f", t, counts[t], expected);
    }
    rwkv_sampler_free(s);
}

static void test_seeds(void) {
    printf("seeds\n");
    enum { V = 1000, N = 64 };
    float logits[V];
    random_logits(logits, V, 1.0f);
    uint32_t first[N], again[N], other[N];
    struct rwkv_sampling_params p = plain_params(1.0f, 42);
    struct rwkv_sampler * a = rwkv_sampler_create(V, &p);
    struct rwkv_sampler * b = rwkv_sampler_create(V, &p);
    p.seed = 43;
    struct rwkv_sampler * c = rwkv_sampler_create(V, &p);
    CHECK(rwkv_sampler_get_seed(a) == 42);
    for (int i = 0; i < N; i++) {
        CHECK(rwkv_sampler_sample(a, logits, V, &first[i]));
        CHECK(rwkv_sampler_sample(b, logits, V, &again[i]));
        CHECK(rwkv_sampler_sample(c, logits, V, &other[i]));
    }
    CHECK(memcmp(first, again, sizeof(first)) == 0);
    CHECK(memcmp(first, other, sizeof(first)) != 0);
    rwkv_sampler_reset(a);
    for (int i = 0; i < N; i++) {
        CHECK(rwkv_sampler_sample(a, logits, V, &again[i]));
    }
    CHECK_MSG(memcmp(first, again, sizeof(first)) == 0, "reset does not replay the seed");
    rwkv_sampler_free(a);
    rwkv_sampler_free(b);
    rwkv_sampler_free(c);
}

int main(void) {
    rwkv_set_print_errors(NULL, false);
    test_defaults();
    test_bad_params();
    test_bad_arguments();
    test_greedy();
    test_logit_bias();
    test_penalties();
    test_filters();
    test_frequencies();
    test_seeds();
    return test_finish("test_sampling");
}
