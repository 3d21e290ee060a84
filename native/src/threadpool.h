/* threadpool.h: persistent worker threads. A run calls one function on the caller and on every
 * worker that arrives in time, each with its own index; the function takes its work in pieces
 * with rwkv_work_claim, so whoever runs it finishes all of it. */
#ifndef RWKV_THREADPOOL_H
#define RWKV_THREADPOOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct rwkv_threadpool;

typedef void (*rwkv_task_fn)(void * arg, uint32_t thread_index, uint32_t n_threads);

/* n_threads counts the caller: 1 starts no thread. NULL when threads cannot be created. */
struct rwkv_threadpool * rwkv_threadpool_create(uint32_t n_threads);
void rwkv_threadpool_free(struct rwkv_threadpool * pool);

/* Runs fn(arg, i, n) on the caller (i == 0) and on the workers (i in 1..n-1) that join before
 * the caller is done; returns when everyone inside has returned. fn must take its pieces with
 * rwkv_work_claim (a worker may not take part at all). */
void rwkv_threadpool_run(struct rwkv_threadpool * pool, rwkv_task_fn fn, void * arg);

/* Takes the next `piece` items of n_items from *next: returns the first index and sets *end,
 * or returns SIZE_MAX when none are left. */
size_t rwkv_work_claim(atomic_size_t * next, size_t n_items, size_t piece, size_t * end);

#endif
