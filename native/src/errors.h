/* errors.h: error codes plus a human message naming the cause and the offending value. */
#ifndef RWKV_ERRORS_H
#define RWKV_ERRORS_H

#include <stdbool.h>
#include "rwkv.h"

#define RWKV_ERROR_MESSAGE_SIZE 512

struct rwkv_error {
    enum rwkv_error_flags flags;
    char message[RWKV_ERROR_MESSAGE_SIZE];
};

#if defined(__MINGW32__)
/* MinGW's own printf lacks %zu; vsnprintf there is the C99 one when __USE_MINGW_ANSI_STDIO. */
#define RWKV_PRINTF_LIKE(fmt_index, first_arg) __attribute__((format(gnu_printf, fmt_index, first_arg)))
#elif defined(__GNUC__)
#define RWKV_PRINTF_LIKE(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define RWKV_PRINTF_LIKE(fmt_index, first_arg)
#endif

/* Records flags and a formatted message in err (replacing what was there); returns false
 * so callers can write `return rwkv_fail(...)`. Prints to stderr when print is true. */
bool rwkv_fail(struct rwkv_error * err, bool print, enum rwkv_error_flags flags, const char * fmt, ...) RWKV_PRINTF_LIKE(4, 5);

void rwkv_error_clear(struct rwkv_error * err);

/* The per-thread slot for errors without a context (failed init, quantize). */
struct rwkv_error * rwkv_thread_error(void);
bool * rwkv_thread_print_errors(void);

#endif
