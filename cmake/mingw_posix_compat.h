/* mingw_posix_compat.h: the few POSIX calls the C tests (native/tests) make that MinGW-w64 lacks
 * or spells differently. Force-included into the test executables of a MinGW build only
 * (native/tests/CMakeLists.txt); the library itself never needs it. */
#ifndef RWKV_MINGW_POSIX_COMPAT_H
#define RWKV_MINGW_POSIX_COMPAT_H
#ifdef __MINGW32__

#include <direct.h>
#include <errno.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Windows' mkdir takes no mode. */
#define mkdir(path, mode) _mkdir(path)

/* No FIFOs on Windows: tests that make one skip that case when this fails. */
static inline int rwkv_compat_mkfifo(const char * path, int mode) {
    (void) path;
    (void) mode;
    errno = ENOSYS;
    return -1;
}
#define mkfifo(path, mode) rwkv_compat_mkfifo(path, mode)

/* No SIGALRM: alarm() as a hang watchdog does nothing (ctest's TIMEOUT still applies). */
static inline unsigned rwkv_compat_alarm(unsigned seconds) {
    (void) seconds;
    return 0;
}
#define alarm(seconds) rwkv_compat_alarm(seconds)

/* mkdtemp: _mktemp_s fills the XXXXXX, _mkdir makes it (retrying if another process won). */
static inline char * rwkv_compat_mkdtemp(char * template_path) {
    const size_t n = strlen(template_path);
    char * copy = (char *) malloc(n + 1);
    if (!copy) {
        return NULL;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        memcpy(copy, template_path, n + 1);
        if (_mktemp_s(copy, n + 1) != 0) {
            break;
        }
        if (_mkdir(copy) == 0) {
            memcpy(template_path, copy, n + 1);
            free(copy);
            return template_path;
        }
        if (errno != EEXIST) {
            break;
        }
    }
    free(copy);
    return NULL;
}
#define mkdtemp(template_path) rwkv_compat_mkdtemp(template_path)

#endif
#endif
