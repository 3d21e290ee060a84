/* platform.h: read-only file mapping (mmap / MapViewOfFile) behind one small interface. */
#ifndef RWKV_PLATFORM_H
#define RWKV_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "errors.h"

struct rwkv_mapped_file {
    const uint8_t * data;
    uint64_t n_bytes;
    void * handle;  /* Windows: the mapping object */
};

/* Maps the whole file read-only. An empty file maps to data NULL, n_bytes 0. */
bool rwkv_map_file(const char * path, struct rwkv_mapped_file * out, struct rwkv_error * err, bool print);
void rwkv_unmap_file(struct rwkv_mapped_file * file);

/* Number of hardware threads, at least 1. */
uint32_t rwkv_cpu_count(void);

#endif
