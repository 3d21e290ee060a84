/* memory.cu: device memory and CUDA errors turned into rwkv errors (flags and a message naming
 * what failed and CUDA's own words). */
#include "common.cuh"

static bool fail_cuda(cudaError_t status, const char * what, enum rwkv_error_flags flags, struct rwkv_error * err, bool print) {
    return rwkv_fail(err, print, flags, "CUDA: %s failed: %s (%s)", what, cudaGetErrorString(status), cudaGetErrorName(status));
}

extern "C" bool rwkv_cuda_check(const char * what, struct rwkv_error * err, bool print) {
    const cudaError_t status = cudaGetLastError();
    return status == cudaSuccess || fail_cuda(status, what, RWKV_ERROR_GRAPH, err, print);
}

extern "C" void * rwkv_cuda_malloc(size_t n_bytes, struct rwkv_error * err, bool print) {
    void * p = NULL;
    const cudaError_t status = cudaMalloc(&p, n_bytes ? n_bytes : 1);
    if (status != cudaSuccess) {
        size_t free_bytes = 0, total_bytes = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_bytes, &total_bytes);
        rwkv_fail(err, print, (enum rwkv_error_flags) (RWKV_ERROR_CTX | RWKV_ERROR_ALLOC),
            "CUDA: cannot allocate %zu MiB of device memory (%zu MiB free of %zu): %s",
            n_bytes >> 20, free_bytes >> 20, total_bytes >> 20, cudaGetErrorString(status));
        return NULL;
    }
    return p;
}

extern "C" void rwkv_cuda_free(void * device_pointer) {
    if (device_pointer) {
        cudaFree(device_pointer);
    }
}

extern "C" bool rwkv_cuda_upload(void * device_dst, const void * host_src, size_t n_bytes, struct rwkv_error * err, bool print) {
    const cudaError_t status = cudaMemcpy(device_dst, host_src, n_bytes, cudaMemcpyHostToDevice);
    return status == cudaSuccess || fail_cuda(status, "copy to the device", RWKV_ERROR_GRAPH, err, print);
}

extern "C" bool rwkv_cuda_download(void * host_dst, const void * device_src, size_t n_bytes, struct rwkv_error * err, bool print) {
    const cudaError_t status = cudaMemcpy(host_dst, device_src, n_bytes, cudaMemcpyDeviceToHost);
    return status == cudaSuccess || fail_cuda(status, "copy from the device", RWKV_ERROR_GRAPH, err, print);
}

extern "C" bool rwkv_cuda_synchronize(rwkv_cuda_stream stream, struct rwkv_error * err, bool print) {
    const cudaError_t status = cudaStreamSynchronize(stream);
    if (status != cudaSuccess) {
        return fail_cuda(status, "running the kernels", RWKV_ERROR_GRAPH, err, print);
    }
    return rwkv_cuda_check("a kernel launch", err, print);
}

extern "C" size_t rwkv_cuda_row_stride(size_t row_bytes) {
    return (row_bytes + 15) / 16 * 16;
}

extern "C" bool rwkv_cuda_upload_rows(void * dst, size_t dst_stride, const void * src, size_t src_stride, size_t row_bytes,
                                      size_t n_rows, struct rwkv_error * err, bool print) {
    if (n_rows == 0 || row_bytes == 0) {
        return true;
    }
    cudaError_t status;
    if (dst_stride == row_bytes && src_stride == row_bytes) {
        status = cudaMemcpy(dst, src, row_bytes * n_rows, cudaMemcpyHostToDevice);
    } else {
        status = cudaMemcpy2D(dst, dst_stride, src, src_stride, row_bytes, n_rows, cudaMemcpyHostToDevice);
    }
    return status == cudaSuccess || fail_cuda(status, "copying weights to the device", RWKV_ERROR_GRAPH, err, print);
}
