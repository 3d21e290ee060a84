/* errors.c: recording error codes and messages; the per-thread slot used when no context exists. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(_MSC_VER)
#define RWKV_THREAD_LOCAL __declspec(thread)
#else
#define RWKV_THREAD_LOCAL _Thread_local
#endif

static RWKV_THREAD_LOCAL struct rwkv_error thread_error;
static RWKV_THREAD_LOCAL bool thread_print_errors_set;
static RWKV_THREAD_LOCAL bool thread_print_errors;

bool rwkv_fail(struct rwkv_error * err, bool print, enum rwkv_error_flags flags, const char * fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);
    err->flags = flags;
    if (print) {
        fprintf(stderr, "rwkv_cpp: %s\n", err->message);
    }
    return false;
}

void rwkv_error_clear(struct rwkv_error * err) {
    err->flags = RWKV_ERROR_NONE;
    err->message[0] = '\0';
}

struct rwkv_error * rwkv_thread_error(void) {
    return &thread_error;
}

bool * rwkv_thread_print_errors(void) {
    if (!thread_print_errors_set) {
        thread_print_errors = true;  /* rwkv.cpp prints by default */
        thread_print_errors_set = true;
    }
    return &thread_print_errors;
}
