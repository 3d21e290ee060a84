/* threadpool.c: persistent workers that spin briefly for the next task (decode issues hundreds
 * of small matmuls per token), then yield, then sleep on a condition variable. Spinning never
 * goes on for long without yielding: when other processes hold the cores, a spinning thread
 * would otherwise steal the time of the thread it waits for. */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#if defined(_WIN32)
#include <windows.h>
#define YIELD() SwitchToThread()
#else
#include <sched.h>
#define YIELD() sched_yield()
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void) 0)
#endif

/* Pure spinning covers the gap between two matmuls of one token (microseconds); yielding
 * covers a layer's element-wise work; after that a worker sleeps. */
#define SPIN_ITERATIONS 2000
#define YIELD_ITERATIONS 2000

struct rwkv_threadpool {
    uint32_t n_threads;
    pthread_t * workers;
    uint32_t n_started;

    rwkv_task_fn fn;
    void * arg;
    atomic_uint generation;
    atomic_uint n_finished;
    atomic_bool stopping;

    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

struct worker_start {
    struct rwkv_threadpool * pool;
    uint32_t index;
};

static void * worker_main(void * raw) {
    struct worker_start * start = raw;
    struct rwkv_threadpool * pool = start->pool;
    const uint32_t index = start->index;
    free(start);
    unsigned int seen = 0;
    for (;;) {
        unsigned int generation = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (int spin = 0; generation == seen && spin < SPIN_ITERATIONS + YIELD_ITERATIONS; spin++) {
            if (spin < SPIN_ITERATIONS) {
                CPU_RELAX();
            } else {
                YIELD();
            }
            generation = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (generation == seen) {
            pthread_mutex_lock(&pool->mutex);
            while ((generation = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stopping)) {
                pthread_cond_wait(&pool->wake, &pool->mutex);
            }
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->stopping)) {
            return NULL;
        }
        seen = generation;
        pool->fn(pool->arg, index, pool->n_threads);
        atomic_fetch_add_explicit(&pool->n_finished, 1, memory_order_release);
    }
}

struct rwkv_threadpool * rwkv_threadpool_create(uint32_t n_threads) {
    struct rwkv_threadpool * pool = calloc(1, sizeof(*pool));
    if (!pool) {
        return NULL;
    }
    pool->n_threads = n_threads ? n_threads : 1;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->n_finished, 0);
    atomic_init(&pool->stopping, false);
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (pool->n_threads > 1) {
        pool->workers = calloc(pool->n_threads - 1, sizeof(pthread_t));
        if (!pool->workers) {
            rwkv_threadpool_free(pool);
            return NULL;
        }
        for (uint32_t i = 1; i < pool->n_threads; i++) {
            struct worker_start * start = malloc(sizeof(*start));
            if (!start) {
                rwkv_threadpool_free(pool);
                return NULL;
            }
            start->pool = pool;
            start->index = i;
            if (pthread_create(&pool->workers[i - 1], NULL, worker_main, start) != 0) {
                free(start);
                rwkv_threadpool_free(pool);
                return NULL;
            }
            pool->n_started++;
        }
    }
    return pool;
}

void rwkv_threadpool_free(struct rwkv_threadpool * pool) {
    if (!pool) {
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stopping, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (uint32_t i = 0; i < pool->n_started; i++) {
        pthread_join(pool->workers[i], NULL);
    }
    free(pool->workers);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    free(pool);
}

uint32_t rwkv_threadpool_size(const struct rwkv_threadpool * pool) {
    return pool->n_threads;
}

void rwkv_threadpool_run(struct rwkv_threadpool * pool, rwkv_task_fn fn, void * arg) {
    if (pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->n_finished, 0, memory_order_relaxed);
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    fn(arg, 0, pool->n_threads);
    for (int spin = 0; atomic_load_explicit(&pool->n_finished, memory_order_acquire) != pool->n_threads - 1; spin++) {
        if (spin < SPIN_ITERATIONS) {
            CPU_RELAX();
        } else {
            YIELD();
        }
    }
}
