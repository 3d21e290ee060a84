/* generate.c: a complete native host of the rwkv library, using only rwkv.h.
 * Loads a model, tokenizes a prompt, samples a continuation and prints it as it comes.
 *
 *   rwkv-generate model.bin "The quick brown" -v rwkv_vocab_v20230424.txt -n 100 -t 0.8 -p 0.9
 *
 * With -v the text goes through the RWKV World tokenizer (the vocabulary file of BlinkDL's
 * models); without it, tokens are bytes (rwkv.cpp's tiny test models: 256 tokens, id = byte). */
#include <rwkv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
    const char * model_path;
    const char * prompt;
    const char * vocab_path;  /* NULL: byte-level tokens */
    int n_tokens;
    uint32_t n_threads;
    struct rwkv_sampling_params sampling;
};

static void usage(const char * program) {
    fprintf(stderr,
        "usage: %s MODEL.bin [PROMPT] [-v VOCAB.txt] [-n TOKENS] [-t TEMPERATURE] [-p TOP_P] [-k TOP_K]\n"
        "       [-s SEED] [-j THREADS]\n"
        "  -v  World tokenizer vocabulary (rwkv_vocab_v20230424.txt); default: tokens are bytes\n"
        "  -n  tokens to generate (default 64)\n"
        "  -t  temperature, 0 for greedy (default 1.0)\n"
        "  -p  top-p: sample from the smallest set of tokens holding this probability (default 0.85)\n"
        "  -k  top-k: sample from the k most likely tokens, 0 for all (default 0)\n"
        "  -s  random seed (default: a new one each run, printed)\n"
        "  -j  threads, 0 for one per core (default 0)\n",
        program);
}

static int parse_options(int argc, char ** argv, struct options * o) {
    memset(o, 0, sizeof(*o));
    o->prompt = "\n";
    o->n_tokens = 64;
    o->sampling = rwkv_sampling_default_params();
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (a[0] == '-' && a[1] != '\0' && a[2] == '\0' && strchr("vntpksj", a[1])) {
            if (i + 1 == argc) {
                fprintf(stderr, "%s needs a value\n", a);
                return 0;
            }
            const char * v = argv[++i];
            switch (a[1]) {
                case 'v': o->vocab_path = v; break;
                case 'n': o->n_tokens = atoi(v); break;
                case 't': o->sampling.temperature = (float) atof(v); break;
                case 'p': o->sampling.top_p = (float) atof(v); break;
                case 'k': o->sampling.top_k = (uint32_t) strtoul(v, NULL, 10); break;
                case 's': o->sampling.seed = strtoull(v, NULL, 10); break;
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
    return o->model_path != NULL && o->n_tokens >= 0;
}

/* Text to tokens: the tokenizer's, or one token per byte. Returns the count, 0 on error. */
static size_t encode(const struct rwkv_tokenizer * tokenizer, const char * text, uint32_t * tokens) {
    const size_t n_bytes = strlen(text);
    if (!tokenizer) {
        for (size_t i = 0; i < n_bytes; i++) {
            tokens[i] = (unsigned char) text[i];
        }
        return n_bytes;
    }
    size_t n_tokens = 0;  /* every token holds at least one byte: n_bytes ids always fit */
    if (!rwkv_tokenizer_encode(tokenizer, text, n_bytes, tokens, n_bytes, &n_tokens)) {
        fprintf(stderr, "cannot tokenize the prompt: %s\n", rwkv_get_last_error_message(NULL));
        return 0;
    }
    return n_tokens;
}

/* Writes a token's bytes as they are: a character split across two tokens comes out whole. */
static void print_token(const struct rwkv_tokenizer * tokenizer, uint32_t token) {
    if (!tokenizer) {
        if (token < 256) {
            putchar((int) token);
        } else {
            printf("<%u>", (unsigned) token);
        }
    } else {
        char bytes[256];
        size_t n_bytes = 0;
        if (rwkv_tokenizer_decode(tokenizer, &token, 1, bytes, sizeof(bytes), &n_bytes)) {
            fwrite(bytes, 1, n_bytes, stdout);
        } else {
            printf("<%u>", (unsigned) token);  /* beyond the vocabulary file, or longer than 256 bytes */
        }
    }
    fflush(stdout);
}

int main(int argc, char ** argv) {
    struct options o;
    if (!parse_options(argc, argv, &o)) {
        usage(argv[0]);
        return 2;
    }

    rwkv_set_print_errors(NULL, false);  /* this program prints the messages itself */
    struct rwkv_context * ctx = NULL;
    struct rwkv_tokenizer * tokenizer = NULL;
    struct rwkv_sampler * sampler = NULL;
    float * state = NULL;
    float * logits = NULL;
    uint32_t * tokens = NULL;
    int status = 1;

    ctx = rwkv_init_from_file(o.model_path, o.n_threads, 0);
    if (!ctx) {
        fprintf(stderr, "cannot load %s: %s\n", o.model_path, rwkv_get_last_error_message(NULL));
        goto done;
    }
    const size_t n_vocab = rwkv_get_n_vocab(ctx);
    if (o.vocab_path) {
        tokenizer = rwkv_tokenizer_load(o.vocab_path);
        if (!tokenizer) {
            fprintf(stderr, "cannot load %s: %s\n", o.vocab_path, rwkv_get_last_error_message(NULL));
            goto done;
        }
    }
    sampler = rwkv_sampler_create(n_vocab, &o.sampling);
    if (!sampler) {
        fprintf(stderr, "bad sampling options: %s\n", rwkv_get_last_error_message(NULL));
        goto done;
    }
    fprintf(stderr, "rwkv %s, model v%u.%u, %zu layers, n_embd %zu, n_vocab %zu, seed %llu\n%s\n",
        rwkv_get_version_string(), rwkv_get_arch_version_major(ctx), rwkv_get_arch_version_minor(ctx),
        rwkv_get_n_layer(ctx), rwkv_get_n_embed(ctx), n_vocab,
        (unsigned long long) rwkv_sampler_get_seed(sampler), rwkv_get_system_info_string());

    state = malloc(rwkv_get_state_len(ctx) * sizeof(float));
    logits = malloc(rwkv_get_logits_len(ctx) * sizeof(float));
    tokens = malloc((strlen(o.prompt) + 1) * sizeof(uint32_t));
    if (!state || !logits || !tokens) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }

    const size_t n_prompt = encode(tokenizer, o.prompt, tokens);
    if (n_prompt == 0) {
        fprintf(stderr, "the prompt gives no tokens: the model needs some context to start from\n");
        goto done;
    }
    for (size_t i = 0; i < n_prompt; i++) {
        if (tokens[i] >= n_vocab) {
            fprintf(stderr, "prompt token %u is outside the model's vocabulary of %zu\n", (unsigned) tokens[i], n_vocab);
            goto done;
        }
    }
    /* state_in NULL: start from the fresh state. */
    if (!rwkv_eval_sequence(ctx, tokens, n_prompt, NULL, state, logits)) {
        fprintf(stderr, "evaluating the prompt failed: %s\n", rwkv_get_last_error_message(ctx));
        goto done;
    }
    fputs(o.prompt, stdout);

    for (int i = 0; i < o.n_tokens; i++) {
        uint32_t token;
        if (!rwkv_sampler_sample(sampler, logits, n_vocab, &token) || !rwkv_sampler_accept(sampler, token)) {
            fprintf(stderr, "\nsampling failed: %s\n", rwkv_sampler_get_last_error_message(sampler));
            goto done;
        }
        if (tokenizer && token == 0) {
            break;  /* end of text in RWKV World */
        }
        print_token(tokenizer, token);
        if (!rwkv_eval(ctx, token, state, state, logits)) {
            fprintf(stderr, "\nevaluating token %u failed: %s\n", (unsigned) token, rwkv_get_last_error_message(ctx));
            goto done;
        }
    }
    putchar('\n');
    status = 0;

done:
    free(tokens);
    free(logits);
    free(state);
    rwkv_sampler_free(sampler);
    rwkv_tokenizer_free(tokenizer);
    rwkv_free(ctx);
    return status;
}
