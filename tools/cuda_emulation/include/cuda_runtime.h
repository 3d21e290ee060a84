/* cuda_runtime.h (emulation): the parts of CUDA that native/src/cuda/ uses, for compiling it as
 * plain C++ against emulator.cpp. Kernels are ordinary functions; convert.py rewrites each
 * `kernel<<<grid, block, shared, stream>>>(args)` into rwkv_emu_launch. Checks logic, not speed,
 * and not what only hardware shows (alignment faults, register limits, memory ordering). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __syncthreads() rwkv_emu_syncthreads()
#define __shfl_xor_sync(mask, v, offset) rwkv_emu_shfl_xor(v, offset)

struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3_emu { unsigned int x, y, z; };
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct uint4 { unsigned int x, y, z, w; };

uint3_emu & rwkv_emu_thread_idx();
uint3_emu & rwkv_emu_block_idx();
uint3_emu & rwkv_emu_block_dim();
#define threadIdx (rwkv_emu_thread_idx())
#define blockIdx (rwkv_emu_block_idx())
#define blockDim (rwkv_emu_block_dim())

void rwkv_emu_syncthreads();
void rwkv_emu_warp_barrier();
uint64_t * rwkv_emu_warp_slots();  /* 32 slots of the current warp */
unsigned int rwkv_emu_lane();
void * rwkv_emu_dynamic_shared();

template <typename T>
T rwkv_emu_shfl_xor(T v, int offset) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    uint64_t * slots = rwkv_emu_warp_slots();
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    slots[rwkv_emu_lane()] = bits;
    rwkv_emu_warp_barrier();
    T r;
    const uint64_t other = slots[rwkv_emu_lane() ^ (unsigned int) offset];
    memcpy(&r, &other, sizeof(T));
    rwkv_emu_warp_barrier();
    return r;
}

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureInvalidated = 901,
} cudaError_t;

struct CUstream_st;
typedef struct CUstream_st * cudaStream_t;
struct CUgraph_st;
typedef struct CUgraph_st * cudaGraph_t;
struct CUgraphExec_st;
typedef struct CUgraphExec_st * cudaGraphExec_t;

enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeRelaxed };
enum cudaDeviceAttr {
    cudaDevAttrClockRate = 13, cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMemoryClockRate = 36,
    cudaDevAttrGlobalMemoryBusWidth = 37, cudaDevAttrComputeCapabilityMajor = 75, cudaDevAttrComputeCapabilityMinor = 76,
};
#define cudaStreamNonBlocking 1

struct cudaFuncAttributes { int dummy; };
struct cudaDeviceProp { char name[256]; int major, minor, multiProcessorCount; size_t totalGlobalMem; };

const char * cudaGetErrorString(cudaError_t e);
const char * cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaMalloc(void ** p, size_t n);
cudaError_t cudaFree(void * p);
cudaError_t cudaMallocHost(void ** p, size_t n);
cudaError_t cudaFreeHost(void * p);
cudaError_t cudaMemcpy(void * dst, const void * src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpy2D(void * dst, size_t dpitch, const void * src, size_t spitch, size_t width, size_t height, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void * dst, const void * src, size_t n, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemGetInfo(size_t * free_bytes, size_t * total);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t * stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaGetDeviceCount(int * count);
cudaError_t cudaGetDevice(int * device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDriverGetVersion(int * v);
cudaError_t cudaRuntimeGetVersion(int * v);
cudaError_t cudaDeviceGetAttribute(int * value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp * prop, int device);
template <typename F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes * a, F) { a->dummy = 0; return cudaSuccess; }
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t * graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t * exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);

void rwkv_emu_launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, std::function<void()> kernel);
