/* test_threads.c: one model used from several threads at once, the way hosts do it (one context
 * per thread, cloned from a shared one), for ThreadSanitizer (RWKV_SANITIZE=thread) as much as
 * for the results. Four threads at once each: clone a context (the weights' reference count),
 * evaluate token by token and as a sequence on a pool of two workers, hash the model file (lazy,
 * first caller computes), save and reload a state file, encode and decode with one shared
 * tokenizer, and read the system info string (lazy too). The original context is freed while
 * they run, and each frees its clone when done, the last one freeing the weights. Every result
 * must equal the one computed alone.
 *
 * Usage: test_threads VOCAB_FILE */
#include <pthread.h>
#include "rwkv.h"
#include "test_util.h"

#define N_THREADS 4
#define N_ROUNDS 3
#define SEQUENCE_LENGTH 40
#define N_VOCAB 64

struct job {
    struct rwkv_context * base;  /* shared: only cloned from */
    const struct rwkv_tokenizer * tokenizer;
    int index;
    uint32_t tokens[SEQUENCE_LENGTH];
    float * state;
    float * logits;
    uint64_t hash;
    char state_path[512];
    bool ok;
    char failure[256];
};

/* pthread_barrier_t is missing on macOS: a counting barrier of one use. */
struct barrier {
    pthread_mutex_t mutex;
    pthread_cond_t all_here;
    int waiting;
};

static void barrier_wait(struct barrier * b) {
    pthread_mutex_lock(&b->mutex);
    if (--b->waiting == 0) {
        pthread_cond_broadcast(&b->all_here);
    }
    while (b->waiting > 0) {
        pthread_cond_wait(&b->all_here, &b->mutex);
    }
    pthread_mutex_unlock(&b->mutex);
}

/* Everyone clones at once; then the original may go. Main waits at both too. */
static struct barrier start_line = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, N_THREADS + 1};
static struct barrier cloned = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, N_THREADS + 1};

#define JOB_CHECK(job, cond, ...)                                                       \
    do {                                                                                \
        if (!(cond) && (job)->ok) {                                                     \
            (job)->ok = false;                                                          \
            snprintf((job)->failure, sizeof((job)->failure), __VA_ARGS__);              \
        }                                                                               \
    } while (0)

static void * run_job(void * arg) {
    struct job * job = arg;
    barrier_wait(&start_line);
    struct rwkv_context * ctx = rwkv_clone_context(job->base, 2);
    barrier_wait(&cloned);
    JOB_CHECK(job, ctx != NULL, "clone failed");
    if (!ctx) {
        return NULL;
    }
    const size_t state_len = rwkv_get_state_len(ctx), logits_len = rwkv_get_logits_len(ctx);
    float * step_state = malloc(state_len * sizeof(float));
    float * step_logits = malloc(logits_len * sizeof(float));
    float * loaded = malloc(state_len * sizeof(float));
    job->hash = rwkv_get_model_file_hash(ctx);
    JOB_CHECK(job, strlen(rwkv_get_system_info_string()) > 0, "no system info");
    for (int round = 0; round < N_ROUNDS && job->ok; round++) {
        JOB_CHECK(job, rwkv_eval_sequence(ctx, job->tokens, SEQUENCE_LENGTH, NULL, job->state, job->logits),
            "sequence: %s", rwkv_get_last_error_message(ctx));
        rwkv_init_state(ctx, step_state);
        for (size_t i = 0; i < SEQUENCE_LENGTH; i++) {
            JOB_CHECK(job, rwkv_eval(ctx, job->tokens[i], step_state, step_state, step_logits), "eval: %s",
                rwkv_get_last_error_message(ctx));
        }
        JOB_CHECK(job, memcmp(step_logits, job->logits, logits_len * sizeof(float)) == 0,
            "round %d: token by token differs from the sequence", round);
        JOB_CHECK(job, rwkv_state_save(ctx, job->state_path, job->state), "save: %s", rwkv_get_last_error_message(ctx));
        JOB_CHECK(job, rwkv_state_load(ctx, job->state_path, loaded), "load: %s", rwkv_get_last_error_message(ctx));
        JOB_CHECK(job, memcmp(loaded, job->state, state_len * sizeof(float)) == 0, "the state file changed the state");
    }
    /* The shared tokenizer: encode and decode a text of its own. */
    char text[64], back[64];
    const int length = snprintf(text, sizeof(text), "thread %d says hello, \xe4\xbd\xa0\xe5\xa5\xbd!", job->index);
    uint32_t ids[64];
    size_t n_ids = 0, n_back = 0;
    JOB_CHECK(job, rwkv_tokenizer_encode(job->tokenizer, text, (size_t) length, ids, 64, &n_ids), "encode failed");
    JOB_CHECK(job, rwkv_tokenizer_decode(job->tokenizer, ids, n_ids, back, sizeof(back), &n_back)
        && n_back == (size_t) length && memcmp(back, text, n_back) == 0, "tokenizer round trip failed");
    rwkv_free(ctx);
    free(step_state);
    free(step_logits);
    free(loaded);
    return NULL;
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VOCAB_FILE\n", argv[0]);
        return 2;
    }
    rwkv_set_print_errors(NULL, false);
    test_make_temp_dir();
    struct tw_model m;
    tw_make_v4(&m, N_VOCAB, 64, 2, 128, TW_F16);
    const char * path = test_temp_path("model.bin");
    CHECK(tw_write(&m, path));
    tw_free(&m);
    struct rwkv_context * base = rwkv_init_from_file(path, 1, 0);
    struct rwkv_tokenizer * tokenizer = rwkv_tokenizer_load(argv[1]);
    CHECK_MSG(base != NULL && tokenizer != NULL, "%s", rwkv_get_last_error_message(NULL));
    if (!base || !tokenizer) {
        return test_finish("test_threads");
    }
    const size_t state_len = rwkv_get_state_len(base), logits_len = rwkv_get_logits_len(base);

    /* What each job must compute, worked out alone first. */
    struct job jobs[N_THREADS];
    float * expected_state[N_THREADS];
    float * expected_logits[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].base = base;
        jobs[i].tokenizer = tokenizer;
        jobs[i].index = i;
        jobs[i].ok = true;
        jobs[i].state = malloc(state_len * sizeof(float));
        jobs[i].logits = malloc(logits_len * sizeof(float));
        char name[32];
        snprintf(name, sizeof(name), "%d.state", i);
        snprintf(jobs[i].state_path, sizeof(jobs[i].state_path), "%s", test_temp_path(name));
        for (size_t t = 0; t < SEQUENCE_LENGTH; t++) {
            jobs[i].tokens[t] = (uint32_t) (tw_random() % N_VOCAB);
        }
        expected_state[i] = malloc(state_len * sizeof(float));
        expected_logits[i] = malloc(logits_len * sizeof(float));
        CHECK(rwkv_eval_sequence(base, jobs[i].tokens, SEQUENCE_LENGTH, NULL, expected_state[i], expected_logits[i]));
    }

    const uint64_t base_hash = rwkv_get_model_file_hash(base);
    pthread_t threads[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(pthread_create(&threads[i], NULL, run_job, &jobs[i]) == 0);
    }
    barrier_wait(&start_line);
    barrier_wait(&cloned);
    rwkv_free(base);  /* the clones hold the weights */
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(threads[i], NULL);
    }

    for (int i = 0; i < N_THREADS; i++) {
        CHECK_MSG(jobs[i].ok, "thread %d: %s", i, jobs[i].failure);
        CHECK_MSG(memcmp(jobs[i].state, expected_state[i], state_len * sizeof(float)) == 0
            && memcmp(jobs[i].logits, expected_logits[i], logits_len * sizeof(float)) == 0,
            "thread %d: concurrent evaluation differs from the one done alone", i);
        CHECK_MSG(jobs[i].hash == base_hash, "thread %d: model hash %llx, expected %llx", i,
            (unsigned long long) jobs[i].hash, (unsigned long long) base_hash);
        free(jobs[i].state);
        free(jobs[i].logits);
        free(expected_state[i]);
        free(expected_logits[i]);
    }
    rwkv_tokenizer_free(tokenizer);
    test_remove_temp_dir();
    return test_finish("test_threads");
}
