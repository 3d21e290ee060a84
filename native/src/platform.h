/* platform.h: read-only file mapping (mmap / MapViewOfFile) behind one small interface. */
#ifndef RWKV_PLATFORM_H
#define RWKV_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include "errors.h"

struct rwkv_mapped_file {
    const uint8_t * data;
    uint64_t n_bytes;
    void * handle;  /* Windows: the mapping object */
};

/* Maps the whole file read-only. An empty file maps to data NULL, n_bytes 0. */
bool rwkv_map_file(const char * path, struct rwkv_mapped_file * out, struct rwkv_error * err, bool print);
void rwkv_unmap_file(struct rwkv_mapped_file * file);

/* Where output for path should go: path itself, or the file a symbolic link points to (so
 * writing through a link behaves like fopen). Refuses an existing directory, device or FIFO
 * before any work is done. */
bool rwkv_resolve_output_path(const char * path, char * resolved, size_t resolved_size, struct rwkv_error * err, bool print);

/* Creates a new empty file next to dest (dest + ".tmp-XXXXXX"), opened for binary writing;
 * its path goes to temp_path. NULL on error (err filled). */
FILE * rwkv_create_temp_file(const char * dest, char * temp_path, size_t temp_path_size, struct rwkv_error * err, bool print);
/* Renames temp over dest (replacing it); on failure removes temp. */
bool rwkv_replace_file(const char * temp, const char * dest, struct rwkv_error * err, bool print);

/* Number of hardware threads, at least 1. */
uint32_t rwkv_cpu_count(void);

#endif
