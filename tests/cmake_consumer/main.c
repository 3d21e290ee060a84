/* main.c: a C host built against an installed rwkv (find_package or pkg-config).
 * Usage: consumer_c [MODEL.bin]. Checks that header and library agree on the version and,
 * given a model, that a token evaluates to finite logits. */
#include <rwkv.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char ** argv) {
    const uint32_t header_version = RWKV_CPP_VERSION_MAJOR * 10000 + RWKV_CPP_VERSION_MINOR * 100 + RWKV_CPP_VERSION_PATCH;
    printf("consumer_c: library %s, header %u, %s\n", rwkv_get_version_string(), (unsigned) header_version,
        rwkv_get_system_info_string());
    if (rwkv_get_version() != header_version) {
        fprintf(stderr, "consumer_c: the library is version %u, the header %u\n", (unsigned) rwkv_get_version(), (unsigned) header_version);
        return 1;
    }
    if (argc < 2) {
        return 0;
    }
    struct rwkv_context * ctx = rwkv_init_from_file(argv[1], 1, 0);
    if (!ctx) {
        fprintf(stderr, "consumer_c: %s\n", rwkv_get_last_error_message(NULL));
        return 1;
    }
    float * logits = malloc(rwkv_get_logits_len(ctx) * sizeof(float));
    int status = 1;
    if (logits && rwkv_eval(ctx, 'A', NULL, NULL, logits)) {
        size_t best = 0;
        for (size_t i = 1; i < rwkv_get_n_vocab(ctx); i++) {
            best = logits[i] > logits[best] ? i : best;
        }
        if (isfinite(logits[best])) {
            printf("consumer_c: after 'A' the most likely token is %zu (logit %.4f)\n", best, logits[best]);
            status = 0;
        }
    } else {
        fprintf(stderr, "consumer_c: eval failed: %s\n", rwkv_get_last_error_message(ctx));
    }
    free(logits);
    rwkv_free(ctx);
    return status;
}
