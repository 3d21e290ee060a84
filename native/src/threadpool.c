/* threadpool.c: persistent workers that spin briefly for the next task (decode issues hundreds
 * of small matmuls per token), then yield, then sleep on a condition variable.
 *
 * Tasks take their work in pieces from a shared counter, and a worker takes part in a run only
 * if it arrives before the caller has finished all pieces: the caller then closes the run and
 * waits only for workers already inside. So a worker that the OS has not scheduled (other
 * processes on the cores) never makes the caller wait; the caller does its share instead. */
#include "threadpool.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* The few thread primitives the pool needs: Win32's own on Windows (no libwinpthread-1.dll
 * beside rwkv.dll), pthreads elsewhere. */
#if defined(_WIN32)
#include <windows.h>
#define YIELD() SwitchToThread()
typedef HANDLE thread_t;
typedef SRWLOCK mutex_t;
typedef CONDITION_VARIABLE cond_t;
static void worker_loop(void * start);
static DWORD WINAPI worker_entry(LPVOID start) {
    worker_loop(start);
    return 0;
}
static bool thread_start(thread_t * thread, void * start) {
    *thread = CreateThread(NULL, 0, worker_entry, start, 0, NULL);
    return *thread != NULL;
}
static void thread_join(thread_t thread) {
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
}
static void mutex_init(mutex_t * m) { InitializeSRWLock(m); }
static void mutex_destroy(mutex_t * m) { (void) m; }
static void mutex_lock(mutex_t * m) { AcquireSRWLockExclusive(m); }
static void mutex_unlock(mutex_t * m) { ReleaseSRWLockExclusive(m); }
static void cond_init(cond_t * c) { InitializeConditionVariable(c); }
static void cond_destroy(cond_t * c) { (void) c; }
static void cond_wait(cond_t * c, mutex_t * m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void cond_broadcast(cond_t * c) { WakeAllConditionVariable(c); }
#else
#include <pthread.h>
#include <sched.h>
#define YIELD() sched_yield()
typedef pthread_t thread_t;
typedef pthread_mutex_t mutex_t;
typedef pthread_cond_t cond_t;
static void worker_loop(void * start);
static void * worker_entry(void * start) {
    worker_loop(start);
    return NULL;
}
static bool thread_start(thread_t * thread, void * start) {
    return pthread_create(thread, NULL, worker_entry, start) == 0;
}
static void thread_join(thread_t thread) { pthread_join(thread, NULL); }
static void mutex_init(mutex_t * m) { pthread_mutex_init(m, NULL); }
static void mutex_destroy(mutex_t * m) { pthread_mutex_destroy(m); }
static void mutex_lock(mutex_t * m) { pthread_mutex_lock(m); }
static void mutex_unlock(mutex_t * m) { pthread_mutex_unlock(m); }
static void cond_init(cond_t * c) { pthread_cond_init(c, NULL); }
static void cond_destroy(cond_t * c) { pthread_cond_destroy(c); }
static void cond_wait(cond_t * c, mutex_t * m) { pthread_cond_wait(c, m); }
static void cond_broadcast(cond_t * c) { pthread_cond_broadcast(c); }
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

/* run_state: the run's number in the high 32 bits, CLOSED, and in the low bits how many
 * workers are inside the task. */
#define CLOSED ((uint64_t) 1 << 31)
#define INSIDE_MASK (CLOSED - 1)

struct rwkv_threadpool {
    uint32_t n_threads;
    thread_t * workers;
    uint32_t n_started;

    rwkv_task_fn fn;
    void * arg;
    _Atomic uint64_t run_state;
    atomic_bool stopping;

    mutex_t mutex;
    cond_t wake;
};

struct worker_start {
    struct rwkv_threadpool * pool;
    uint32_t index;
};

static uint32_t run_number(uint64_t state) {
    return (uint32_t) (state >> 32);
}

/* Enters run `run` unless it is closed or over; true if this worker must run the task. */
static bool try_join(struct rwkv_threadpool * pool, uint32_t run) {
    uint64_t state = atomic_load(&pool->run_state);
    while (run_number(state) == run && !(state & CLOSED)) {
        if (atomic_compare_exchange_weak(&pool->run_state, &state, state + 1)) {
            return true;
        }
    }
    return false;
}

static void worker_loop(void * raw) {
    struct worker_start * start = raw;
    struct rwkv_threadpool * pool = start->pool;
    const uint32_t index = start->index;
    free(start);
    uint32_t seen = 0;
    for (;;) {
        uint32_t run = run_number(atomic_load(&pool->run_state));
        for (int spin = 0; run == seen && spin < SPIN_ITERATIONS + YIELD_ITERATIONS; spin++) {
            if (spin < SPIN_ITERATIONS) {
                CPU_RELAX();
            } else {
                YIELD();
            }
            run = run_number(atomic_load(&pool->run_state));
        }
        if (run == seen) {
            mutex_lock(&pool->mutex);
            while ((run = run_number(atomic_load(&pool->run_state))) == seen && !atomic_load(&pool->stopping)) {
                cond_wait(&pool->wake, &pool->mutex);
            }
            mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->stopping)) {
            return;
        }
        seen = run;
        if (try_join(pool, run)) {
            pool->fn(pool->arg, index, pool->n_threads);
            atomic_fetch_sub(&pool->run_state, 1);
        }
    }
}

struct rwkv_threadpool * rwkv_threadpool_create(uint32_t n_threads) {
    struct rwkv_threadpool * pool = calloc(1, sizeof(*pool));
    if (!pool) {
        return NULL;
    }
    pool->n_threads = n_threads ? n_threads : 1;
    atomic_init(&pool->run_state, 0);
    atomic_init(&pool->stopping, false);
    mutex_init(&pool->mutex);
    cond_init(&pool->wake);
    if (pool->n_threads > 1) {
        pool->workers = calloc(pool->n_threads - 1, sizeof(thread_t));
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
            if (!thread_start(&pool->workers[i - 1], start)) {
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
    mutex_lock(&pool->mutex);
    atomic_store(&pool->stopping, true);
    cond_broadcast(&pool->wake);
    mutex_unlock(&pool->mutex);
    for (uint32_t i = 0; i < pool->n_started; i++) {
        thread_join(pool->workers[i]);
    }
    free(pool->workers);
    mutex_destroy(&pool->mutex);
    cond_destroy(&pool->wake);
    free(pool);
}

void rwkv_threadpool_run(struct rwkv_threadpool * pool, rwkv_task_fn fn, void * arg) {
    if (pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    const uint32_t run = run_number(atomic_load(&pool->run_state)) + 1;
    mutex_lock(&pool->mutex);
    atomic_store(&pool->run_state, (uint64_t) run << 32);  /* publishes fn and arg */
    cond_broadcast(&pool->wake);
    mutex_unlock(&pool->mutex);
    fn(arg, 0, pool->n_threads);
    /* All pieces are taken: latecomers must not start; wait for those inside. */
    atomic_fetch_or(&pool->run_state, CLOSED);
    for (int spin = 0; atomic_load(&pool->run_state) & INSIDE_MASK; spin++) {
        if (spin < SPIN_ITERATIONS) {
            CPU_RELAX();
        } else {
            YIELD();
        }
    }
}

size_t rwkv_work_claim(atomic_size_t * next, size_t n_items, size_t piece, size_t * end) {
    const size_t begin = atomic_fetch_add(next, piece);
    if (begin >= n_items) {
        return SIZE_MAX;
    }
    *end = begin + piece < n_items ? begin + piece : n_items;
    return begin;
}
