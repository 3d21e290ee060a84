/* emulator.cpp: the CPU emulation behind include/cuda_runtime.h, for checking the CUDA backend's
 * logic where there is no GPU (x86-64 only). One block at a time; its threads are fibers, each
 * run until it reaches a barrier or ends; a barrier opens when every live thread of its block
 * (__syncthreads) or of its warp (shuffles) waits at it. Device memory is host memory filled
 * with NaN bytes; streams run work at once; graph capture records closures and replays them. */
#include <stdio.h>
#include <stdlib.h>
#include <vector>
#include "cuda_runtime.h"

namespace {

enum wait_kind { RUNNING = 0, AT_BLOCK_BARRIER = 1, AT_WARP_BARRIER = 2, DONE = 3 };

/* Saves the callee-saved registers on the current stack, stores the stack pointer in *from,
 * switches to the stack `to` and restores its registers (System V x86-64). */
extern "C" void emu_switch(void ** from, void * to);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
)");

struct fiber {
    void * sp;
    uint3_emu thread_idx;
    int state;
    char * stack;
};

const size_t STACK_BYTES = 256 * 1024;
std::vector<fiber> fibers(1024);
void * scheduler_sp;
int current = -1;
uint3_emu block_idx, block_dim;
unsigned int n_threads;
const std::function<void()> * running_kernel;
std::vector<uint64_t> warp_slots(1024);
std::vector<unsigned char> dynamic_shared;
cudaError_t last_error = cudaSuccess;
uint3_emu host_dummy;

extern "C" void fiber_main() {
    (*running_kernel)();
    fibers[current].state = DONE;
    emu_switch(&fibers[current].sp, scheduler_sp);
    abort();  /* never resumed */
}

void wait(int kind) {
    fibers[current].state = kind;
    emu_switch(&fibers[current].sp, scheduler_sp);
}

void run_block(const std::function<void()> & kernel) {
    running_kernel = &kernel;
    for (unsigned int i = 0; i < n_threads; i++) {
        fiber & f = fibers[i];
        if (!f.stack) {
            f.stack = (char *) malloc(STACK_BYTES);
        }
        f.thread_idx.x = i % block_dim.x;
        f.thread_idx.y = i / block_dim.x % block_dim.y;
        f.thread_idx.z = i / (block_dim.x * block_dim.y);
        f.state = RUNNING;
        /* A fresh stack that "returns" into fiber_main with 16-byte alignment at its entry. */
        void ** top = (void **) (((uintptr_t) (f.stack + STACK_BYTES)) & ~(uintptr_t) 15);
        *--top = nullptr;                    /* fake return address of fiber_main */
        *--top = (void *) fiber_main;        /* popped by emu_switch's ret */
        for (int r = 0; r < 6; r++) *--top = nullptr;  /* rbp rbx r12 r13 r14 r15 */
        f.sp = top;
    }
    for (;;) {
        for (unsigned int i = 0; i < n_threads; i++) {
            if (fibers[i].state == RUNNING) {
                current = (int) i;
                emu_switch(&scheduler_sp, fibers[i].sp);
            }
        }
        current = -1;
        bool all_done = true, released = false;
        for (unsigned int i = 0; i < n_threads; i++) {
            all_done = all_done && fibers[i].state == DONE;
        }
        if (all_done) {
            return;
        }
        /* Warp barriers first: a warp whose live threads all wait at one opens. */
        for (unsigned int w = 0; w * 32 < n_threads; w++) {
            bool all_waiting = true, any = false;
            for (unsigned int i = w * 32; i < n_threads && i < w * 32 + 32; i++) {
                if (fibers[i].state == DONE) continue;
                any = true;
                all_waiting = all_waiting && fibers[i].state == AT_WARP_BARRIER;
            }
            if (any && all_waiting) {
                for (unsigned int i = w * 32; i < n_threads && i < w * 32 + 32; i++) {
                    if (fibers[i].state == AT_WARP_BARRIER) fibers[i].state = RUNNING;
                }
                released = true;
            }
        }
        if (released) continue;
        bool all_block = true;
        for (unsigned int i = 0; i < n_threads; i++) {
            if (fibers[i].state != DONE && fibers[i].state != AT_BLOCK_BARRIER) all_block = false;
        }
        if (all_block) {
            for (unsigned int i = 0; i < n_threads; i++) {
                if (fibers[i].state == AT_BLOCK_BARRIER) fibers[i].state = RUNNING;
            }
            continue;
        }
        fprintf(stderr, "cuda emulation: deadlock in block (%u,%u): threads wait at different barriers\n", block_idx.x, block_idx.y);
        abort();
    }
}

void launch_now(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()> & kernel) {
    const size_t threads = (size_t) block.x * block.y * block.z;
    if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || shared_bytes > 48 * 1024) {
        fprintf(stderr, "cuda emulation: invalid launch grid (%u,%u,%u) block (%u,%u,%u) shared %zu\n",
                grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes);
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    n_threads = (unsigned int) threads;
    block_dim = {block.x, block.y, block.z};
    dynamic_shared.assign(shared_bytes + 1, 0xff);  /* uninitialized shared memory reads as NaN */
    for (unsigned int z = 0; z < grid.z; z++) {
        for (unsigned int y = 0; y < grid.y; y++) {
            for (unsigned int x = 0; x < grid.x; x++) {
                block_idx = {x, y, z};
                run_block(kernel);
            }
        }
    }
}

struct recorded_graph {
    std::vector<std::function<void()>> steps;
};
bool capturing = false;
recorded_graph * capture_target = nullptr;

}  // namespace

struct CUstream_st { int id; };

uint3_emu & rwkv_emu_thread_idx() { return current >= 0 ? fibers[current].thread_idx : host_dummy; }
uint3_emu & rwkv_emu_block_idx() { return block_idx; }
uint3_emu & rwkv_emu_block_dim() { return block_dim; }
void rwkv_emu_syncthreads() { wait(AT_BLOCK_BARRIER); }
void rwkv_emu_warp_barrier() { wait(AT_WARP_BARRIER); }
uint64_t * rwkv_emu_warp_slots() { return &warp_slots[(unsigned int) current / 32 * 32]; }
unsigned int rwkv_emu_lane() { return (unsigned int) current % 32; }
void * rwkv_emu_dynamic_shared() { return dynamic_shared.data(); }

void rwkv_emu_launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, std::function<void()> kernel) {
    if (capturing) {
        capture_target->steps.push_back([=]() { launch_now(grid, block, shared_bytes, kernel); });
        return;
    }
    launch_now(grid, block, shared_bytes, kernel);
}

const char * cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
const char * cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
cudaError_t cudaGetLastError() { cudaError_t e = last_error; last_error = cudaSuccess; return e; }

static void * garbage_malloc(size_t n) {
    void * p = malloc(n ? n : 1);
    memset(p, 0xff, n ? n : 1);  /* NaN floats: reading memory never written shows */
    return p;
}
cudaError_t cudaMalloc(void ** p, size_t n) { *p = garbage_malloc(n); return cudaSuccess; }
cudaError_t cudaFree(void * p) { free(p); return cudaSuccess; }
cudaError_t cudaMallocHost(void ** p, size_t n) { *p = garbage_malloc(n); return cudaSuccess; }
cudaError_t cudaFreeHost(void * p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void * dst, const void * src, size_t n, cudaMemcpyKind) { memmove(dst, src, n); return cudaSuccess; }
cudaError_t cudaMemcpy2D(void * dst, size_t dpitch, const void * src, size_t spitch, size_t width, size_t height, cudaMemcpyKind) {
    for (size_t r = 0; r < height; r++) memcpy((char *) dst + r * dpitch, (const char *) src + r * spitch, width);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void * dst, const void * src, size_t n, cudaMemcpyKind, cudaStream_t) {
    if (capturing) {
        capture_target->steps.push_back([=]() { memmove(dst, src, n); });
    } else {
        memmove(dst, src, n);
    }
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t * f, size_t * t) { *f = 1ull << 30; *t = 1ull << 30; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return capturing ? cudaErrorStreamCaptureInvalidated : cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t * s, unsigned int) { *s = new CUstream_st{1}; return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int * c) { *c = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int * d) { *d = 0; return cudaSuccess; }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int * v) { *v = 13000; return cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int * v) { *v = 13000; return cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int * value, cudaDeviceAttr attr, int) {
    switch (attr) {
        case cudaDevAttrClockRate: *value = 1980000; break;
        case cudaDevAttrMultiProcessorCount: *value = 132; break;
        case cudaDevAttrMemoryClockRate: *value = 2619000; break;
        case cudaDevAttrGlobalMemoryBusWidth: *value = 5120; break;
        case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
        default: *value = 0; break;
    }
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp * p, int) {
    memset(p, 0, sizeof(*p));
    strcpy(p->name, "CPU emulation of an H100");
    p->major = 9;
    p->multiProcessorCount = 132;
    p->totalGlobalMem = 80ull << 30;
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    capturing = true;
    capture_target = new recorded_graph;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t * graph) {
    capturing = false;
    *graph = (cudaGraph_t) capture_target;
    capture_target = nullptr;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t * exec, cudaGraph_t graph, unsigned long long) {
    *exec = (cudaGraphExec_t) new recorded_graph(*(recorded_graph *) graph);
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete (recorded_graph *) g; return cudaSuccess; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) { delete (recorded_graph *) e; return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
    for (auto & step : ((recorded_graph *) e)->steps) step();
    return cudaSuccess;
}
