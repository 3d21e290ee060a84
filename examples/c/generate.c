/* generate.c: a complete native host of the rwkv library, using only rwkv.h.
 * Loads a model, feeds it a prompt, samples a continuation (temperature + top-p) and prints it.
 *
 *   generate model.bin "The quick brown" -n 100 -t 0.8 -p 0.9
 *
 * Tokens are bytes (the vocabulary of rwkv.cpp's tiny test models: 256 tokens, id = byte value);
 * a sampled id above 255 is printed as <id>. */
#include <rwkv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

struct options {
    const char * model_path;
    const char * prompt;
    int n_tokens;
    float temperature;
    float top_p;
    uint64_t seed;
    uint32_t n_threads;
};

static void usage(const char * program) {
    fprintf(stderr,
        "usage: %s MODEL.bin [PROMPT] [-n TOKENS] [-t TEMPERATURE] [-p TOP_P] [-s SEED] [-j THREADS]\n"
        "  -n  tokens to generate (default 64)\n"
        "  -t  temperature, 0 for greedy (default 0.8)\n"
        "  -p  top-p: sample from the smallest set of tokens holding this probability (default 0.9)\n"
        "  -s  random seed (default 42)\n"
        "  -j  threads, 0 for one per core (default 0)\n",
        program);
}

static int parse_options(int argc, char ** argv, struct options * o) {
    *o = (struct options) {NULL, "\n", 64, 0.8f, 0.9f, 42, 0};
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (a[0] == '-' && a[1] != '\0' && a[2] == '\0' && strchr("ntpsj", a[1])) {
            if (i + 1 == argc) {
                fprintf(stderr, "%s needs a value\n", a);
                return 0;
            }
            const char * v = argv[++i];
            switch (a[1]) {
                case 'n': o->n_tokens = atoi(v); break;
                case 't': o->temperature = (float) atof(v); break;
                case 'p': o->top_p = (float) atof(v); break;
                case 's': o->seed = strtoull(v, NULL, 10); break;
                case 'j': o->n_threads = (uint32_t) strtoul(v, NULL, 10); break;
            }
        } else if (positional == 0) {
            o->model_path = a;
            positional++;
        } else if (positional == 1) {
            o->prompt = a;
            positional++;
        } else {
            fprintf(stderr, "unexpected argument: %s\n", a);
            return 0;
        }
    }
    if (!o->model_path || o->n_tokens < 0 || o->temperature < 0.0f || o->top_p <= 0.0f || o->top_p > 1.0f) {
        return 0;
    }
    return 1;
}

/* ---- sampling: temperature, then top-p (nucleus) ---- */

/* xorshift64*: small and reproducible for a given seed. */
static double random_unit(uint64_t * state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (double) ((*state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;  /* [0, 1) */
}

struct candidate {
    uint32_t token;
    float p;
};

static int by_probability_descending(const void * a, const void * b) {
    const float pa = ((const struct candidate *) a)->p, pb = ((const struct candidate *) b)->p;
    return (pa < pb) - (pa > pb);
}

static uint32_t sample(const float * logits, size_t n_vocab, float temperature, float top_p,
                       struct candidate * scratch, uint64_t * rng) {
    size_t best = 0;
    for (size_t i = 1; i < n_vocab; i++) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    if (temperature == 0.0f) {
        return (uint32_t) best;
    }
    /* Softmax of logits / temperature, shifted by the maximum so no exp overflows. */
    double total = 0.0;
    for (size_t i = 0; i < n_vocab; i++) {
        scratch[i].token = (uint32_t) i;
        scratch[i].p = expf((logits[i] - logits[best]) / temperature);
        total += scratch[i].p;
    }
    qsort(scratch, n_vocab, sizeof(*scratch), by_probability_descending);
    /* Keep the most likely tokens until they hold top_p of the probability. */
    size_t n_kept = 0;
    double kept = 0.0;
    while (n_kept < n_vocab && (n_kept == 0 || kept < top_p * total)) {
        kept += scratch[n_kept++].p;
    }
    double r = random_unit(rng) * kept;
    for (size_t i = 0; i < n_kept; i++) {
        r -= scratch[i].p;
        if (r < 0.0) {
            return scratch[i].token;
        }
    }
    return scratch[n_kept - 1].token;
}

static void print_token(uint32_t token) {
    if (token < 256) {
        putchar((int) token);
    } else {
        printf("<%u>", (unsigned) token);
    }
    fflush(stdout);
}

int main(int argc, char ** argv) {
    struct options o;
    if (!parse_options(argc, argv, &o)) {
        usage(argv[0]);
        return 2;
    }

    rwkv_set_print_errors(NULL, false);  /* this program prints the message itself */
    struct rwkv_context * ctx = rwkv_init_from_file(o.model_path, o.n_threads, 0);
    if (!ctx) {
        fprintf(stderr, "cannot load %s: %s\n", o.model_path, rwkv_get_last_error_message(NULL));
        return 1;
    }
    fprintf(stderr, "rwkv %s, model v%u.%u, %zu layers, n_embd %zu, n_vocab %zu\n%s\n",
        rwkv_get_version_string(), rwkv_get_arch_version_major(ctx), rwkv_get_arch_version_minor(ctx),
        rwkv_get_n_layer(ctx), rwkv_get_n_embed(ctx), rwkv_get_n_vocab(ctx), rwkv_get_system_info_string());

    const size_t n_vocab = rwkv_get_n_vocab(ctx);
    const size_t n_prompt = strlen(o.prompt);
    float * state = malloc(rwkv_get_state_len(ctx) * sizeof(float));
    float * logits = malloc(rwkv_get_logits_len(ctx) * sizeof(float));
    struct candidate * scratch = malloc(n_vocab * sizeof(*scratch));
    uint32_t * tokens = malloc((n_prompt ? n_prompt : 1) * sizeof(uint32_t));
    int status = 1;
    if (!state || !logits || !scratch || !tokens) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }

    for (size_t i = 0; i < n_prompt; i++) {
        tokens[i] = (unsigned char) o.prompt[i];
    }
    if (n_prompt == 0) {
        tokens[0] = '\n';  /* the model needs some context to start from */
    }
    /* state_in NULL: start from the fresh state. */
    if (!rwkv_eval_sequence(ctx, tokens, n_prompt ? n_prompt : 1, NULL, state, logits)) {
        fprintf(stderr, "evaluating the prompt failed: %s\n", rwkv_get_last_error_message(ctx));
        goto done;
    }
    fputs(o.prompt, stdout);

    uint64_t rng = o.seed ? o.seed : 1;
    for (int i = 0; i < o.n_tokens; i++) {
        const uint32_t token = sample(logits, n_vocab, o.temperature, o.top_p, scratch, &rng);
        print_token(token);
        if (!rwkv_eval(ctx, token, state, state, logits)) {
            fprintf(stderr, "\nevaluating token %u failed: %s\n", (unsigned) token, rwkv_get_last_error_message(ctx));
            goto done;
        }
    }
    putchar('\n');
    status = 0;

done:
    free(tokens);
    free(scratch);
    free(logits);
    free(state);
    rwkv_free(ctx);
    return status;
}
