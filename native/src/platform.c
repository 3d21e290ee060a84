/* platform.c: read-only file mapping and CPU counting for POSIX and Windows. */
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>

/* The last Windows error in the words strerror uses on POSIX ("No such file or directory"), so
 * a message reads the same on every platform; other codes by number. */
static const char * last_error_text(char * buf, size_t size) {
    const DWORD code = GetLastError();
    switch (code) {
        case ERROR_FILE_NOT_FOUND:
        case ERROR_PATH_NOT_FOUND:
        case ERROR_INVALID_NAME:
            return strerror(ENOENT);
        case ERROR_ACCESS_DENIED:
        case ERROR_SHARING_VIOLATION:
        case ERROR_LOCK_VIOLATION:
            return strerror(EACCES);
        case ERROR_NOT_ENOUGH_MEMORY:
        case ERROR_OUTOFMEMORY:
            return strerror(ENOMEM);
        default:
            snprintf(buf, size, "Windows error %lu", (unsigned long) code);
            return buf;
    }
}

bool rwkv_map_file(const char * path, struct rwkv_mapped_file * out, struct rwkv_error * err, bool print) {
    memset(out, 0, sizeof(*out));
    /* A directory would fail below with a bare "access denied": name the cause, as on POSIX. */
    const DWORD attributes = GetFileAttributesA(path);
    if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY)) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "%s is not a regular file", path);
    }
    char why[32];
    HANDLE file = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (file == INVALID_HANDLE_VALUE) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot open model file %s: %s", path, last_error_text(why, sizeof(why)));
    }
    /* Devices (NUL, CON, COM1) and pipes are no model files. */
    if (GetFileType(file) != FILE_TYPE_DISK) {
        CloseHandle(file);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "%s is not a regular file", path);
    }
    LARGE_INTEGER size;
    if (!GetFileSizeEx(file, &size)) {
        CloseHandle(file);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_STAT, "cannot get the size of %s", path);
    }
    out->n_bytes = (uint64_t) size.QuadPart;
    if (out->n_bytes == 0) {
        CloseHandle(file);
        return true;
    }
    HANDLE mapping = CreateFileMappingA(file, NULL, PAGE_READONLY, 0, 0, NULL);
    CloseHandle(file);
    if (mapping == NULL) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ, "cannot map %s: %s", path, last_error_text(why, sizeof(why)));
    }
    void * view = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
    if (view == NULL) {
        CloseHandle(mapping);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ, "cannot map %s: %s", path, last_error_text(why, sizeof(why)));
    }
    out->data = view;
    out->handle = mapping;
    return true;
}

void rwkv_unmap_file(struct rwkv_mapped_file * file) {
    if (file->data) {
        UnmapViewOfFile((void *) file->data);
    }
    if (file->handle) {
        CloseHandle((HANDLE) file->handle);
    }
    memset(file, 0, sizeof(*file));
}

bool rwkv_resolve_output_path(const char * path, char * resolved, size_t resolved_size, struct rwkv_error * err, bool print) {
    const DWORD attributes = GetFileAttributesA(path);
    if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY)) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "output %s is a directory", path);
    }
    if ((size_t) snprintf(resolved, resolved_size, "%s", path) >= resolved_size) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "output path too long: %s", path);
    }
    return true;
}

FILE * rwkv_create_temp_file(const char * dest, char * temp_path, size_t temp_path_size, struct rwkv_error * err, bool print) {
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        snprintf(temp_path, temp_path_size, "%s.tmp-%lu-%u", dest, (unsigned long) GetCurrentProcessId(), (unsigned) (GetTickCount() + attempt));
        FILE * file = fopen(temp_path, "wbx");
        if (file) {
            return file;
        }
        if (errno != EEXIST) {
            break;
        }
    }
    rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot create %s: %s", temp_path, strerror(errno));
    return NULL;
}

bool rwkv_replace_file(const char * temp, const char * dest, struct rwkv_error * err, bool print) {
    if (!MoveFileExA(temp, dest, MOVEFILE_REPLACE_EXISTING)) {
        char why[32];
        const char * cause = last_error_text(why, sizeof(why));
        remove(temp);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_WRITE, "cannot move the output to %s: %s", dest, cause);
    }
    return true;
}

uint32_t rwkv_cpu_count(void) {
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return info.dwNumberOfProcessors > 0 ? (uint32_t) info.dwNumberOfProcessors : 1;
}

#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

bool rwkv_map_file(const char * path, struct rwkv_mapped_file * out, struct rwkv_error * err, bool print) {
    memset(out, 0, sizeof(*out));
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; the S_ISREG check
     * below then refuses it. It changes nothing for regular files. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot open model file %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_STAT, "cannot stat %s: %s", path, strerror(saved));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "%s is not a regular file", path);
    }
    out->n_bytes = (uint64_t) st.st_size;
    if (out->n_bytes == 0) {
        close(fd);
        return true;
    }
    if ((uint64_t) (size_t) out->n_bytes != out->n_bytes) {
        close(fd);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_ALLOC, "%s is too large to map on this platform", path);
    }
    void * data = mmap(NULL, (size_t) out->n_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd);
    if (data == MAP_FAILED) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_READ, "cannot map %s: %s", path, strerror(saved));
    }
    out->data = data;
    return true;
}

void rwkv_unmap_file(struct rwkv_mapped_file * file) {
    if (file->data) {
        munmap((void *) file->data, (size_t) file->n_bytes);
    }
    memset(file, 0, sizeof(*file));
}

bool rwkv_resolve_output_path(const char * path, char * resolved, size_t resolved_size, struct rwkv_error * err, bool print) {
    char target[PATH_MAX];
    const char * chosen = path;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n < 0) {
            return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot read link %s: %s", path, strerror(errno));
        }
        target[n] = '\0';
        if (target[0] != '/') {  /* relative to the link's directory */
            const char * slash = strrchr(path, '/');
            char joined[PATH_MAX];
            if (slash && (size_t) snprintf(joined, sizeof(joined), "%.*s/%s", (int) (slash - path), path, target) < sizeof(joined)) {
                memcpy(target, joined, strlen(joined) + 1);
            }
        }
        chosen = target;
    }
    if (stat(chosen, &st) == 0 && !S_ISREG(st.st_mode)) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN,
            "output %s is %s, not a regular file", path, S_ISDIR(st.st_mode) ? "a directory" : "a device or pipe");
    }
    if ((size_t) snprintf(resolved, resolved_size, "%s", chosen) >= resolved_size) {
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "output path too long: %s", path);
    }
    return true;
}

FILE * rwkv_create_temp_file(const char * dest, char * temp_path, size_t temp_path_size, struct rwkv_error * err, bool print) {
    if ((size_t) snprintf(temp_path, temp_path_size, "%s.tmp-XXXXXX", dest) >= temp_path_size) {
        rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "output path too long: %s", dest);
        return NULL;
    }
    int fd = mkstemp(temp_path);
    if (fd < 0) {
        rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot create a file next to %s: %s", dest, strerror(errno));
        return NULL;
    }
    fchmod(fd, 0644);  /* mkstemp makes it private; the result should look like any new file */
    FILE * file = fdopen(fd, "wb");
    if (!file) {
        int saved = errno;
        close(fd);
        remove(temp_path);
        rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_OPEN, "cannot open %s: %s", temp_path, strerror(saved));
    }
    return file;
}

bool rwkv_replace_file(const char * temp, const char * dest, struct rwkv_error * err, bool print) {
    if (rename(temp, dest) != 0) {
        int saved = errno;
        remove(temp);
        return rwkv_fail(err, print, RWKV_ERROR_FILE | RWKV_ERROR_FILE_WRITE, "cannot move the output to %s: %s", dest, strerror(saved));
    }
    return true;
}

uint32_t rwkv_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t) n : 1;
}
#endif
