/* threadpool.h: persistent worker threads; a run hands every thread (the caller included)
 * the same function with its index, and returns when all are done. */
#ifndef RWKV_THREADPOOL_H
#define RWKV_THREADPOOL_H

#include <stdint.h>

struct rwkv_threadpool;

typedef void (*rwkv_task_fn)(void * arg, uint32_t thread_index, uint32_t n_threads);

/* n_threads counts the caller: 1 starts no thread. NULL when threads cannot be created. */
struct rwkv_threadpool * rwkv_threadpool_create(uint32_t n_threads);
void rwkv_threadpool_free(struct rwkv_threadpool * pool);
uint32_t rwkv_threadpool_size(const struct rwkv_threadpool * pool);

/* Runs fn(arg, i, n) for i in 0..n-1 in parallel; i == 0 runs on the calling thread. */
void rwkv_threadpool_run(struct rwkv_threadpool * pool, rwkv_task_fn fn, void * arg);

#endif
