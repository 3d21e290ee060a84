# cuda.cmake: the GPU backend. RWKV_CUDA=ON compiles native/src/cuda/ into the same library, the
# CUDA runtime linked statically (librwkv then needs only the driver, libcuda, and still loads and
# runs on the CPU where there is none); RWKV_CUDA=OFF (the default) compiles the stub that answers
# gpu.h with "built without CUDA". Included from the top-level CMakeLists.txt after the rwkv and
# rwkv_objects targets exist.
#   cmake -S . -B build-cuda -DRWKV_CUDA=ON [-DCMAKE_CUDA_ARCHITECTURES="80-real;90"]
#   CMAKE_ARGS="-DRWKV_CUDA=ON" pip install .

if(NOT RWKV_CUDA)
    target_sources(rwkv_objects PRIVATE native/src/cuda/gpu_none.c)
    return()
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "rwkv_cpp: RWKV_CUDA=ON but no CUDA compiler was found: install the CUDA toolkit, "
                        "put nvcc on PATH or set CMAKE_CUDA_COMPILER")
endif()
# Real code for Turing (T4), Ampere (A100; 8.6 and 8.9 run the 8.0 code) and Hopper, plus PTX for
# Hopper that the driver compiles for anything newer.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "75-real;80-real;90" CACHE STRING "CUDA architectures the GPU backend is compiled for")
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
message(STATUS "rwkv_cpp: CUDA backend on, CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")

add_library(rwkv_cuda_objects OBJECT
    native/src/cuda/gpu_model.c
    native/src/cuda/gpu.cu
    native/src/cuda/forward.cu
    native/src/cuda/matmul.cu
    native/src/cuda/norm.cu
    native/src/cuda/elementwise.cu
    native/src/cuda/wkv.cu
    native/src/cuda/weights.cu
    native/src/cuda/memory.cu
)
target_include_directories(rwkv_cuda_objects PRIVATE native/include native/src native/src/cuda)
string(REPLACE ";" " " RWKV_CUDA_ARCHITECTURES_TEXT "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(rwkv_cuda_objects PRIVATE RWKV_BUILD _FILE_OFFSET_BITS=64
    RWKV_CUDA_ARCHITECTURES="${RWKV_CUDA_ARCHITECTURES_TEXT}")
set_target_properties(rwkv_cuda_objects PROPERTIES
    POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden)
if(NOT MSVC)
    target_compile_options(rwkv_cuda_objects PRIVATE
        $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wno-unused-parameter>
        $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter,-fno-exceptions>)
endif()
target_link_libraries(rwkv_cuda_objects PUBLIC CUDA::cudart_static)

# The shared library, and everything that links the library's objects directly (the C tests of
# internal pieces), get the CUDA objects and the runtime.
target_sources(rwkv PRIVATE $<TARGET_OBJECTS:rwkv_cuda_objects>)
target_link_libraries(rwkv PRIVATE CUDA::cudart_static)
target_sources(rwkv_objects INTERFACE $<TARGET_OBJECTS:rwkv_cuda_objects>)
target_link_libraries(rwkv_objects PUBLIC CUDA::cudart_static)
target_compile_definitions(rwkv_objects PUBLIC RWKV_CUDA)
# rwkv was created before CUDA was enabled: it takes the architectures from here.
set_target_properties(rwkv PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # The static runtime's own symbols (cudaMalloc, ...) stay inside: the library exports its C API only.
    # libstdc++ (the kernel launch stubs' thread-safe statics) linked in too: no GLIBCXX version
    # requirement on the machine that loads the library.
    target_link_options(rwkv PRIVATE "LINKER:--exclude-libs,ALL" -static-libstdc++ -static-libgcc)
endif()

# test_cuda: every kernel against the CPU reference functions; exit 77 (skipped) without a device.
if(RWKV_BUILD_TESTS AND NOT SKBUILD AND NOT (WIN32 AND NOT MINGW))
    enable_testing()
    add_executable(test_cuda native/tests/test_cuda.c)
    target_link_libraries(test_cuda PRIVATE rwkv_objects)
    target_include_directories(test_cuda PRIVATE native/src/cuda)
    set(RWKV_TEST_FIXTURE_DIR "${PROJECT_SOURCE_DIR}/../shared/fixtures/rwkvcpp" CACHE PATH
        "Directory holding rwkv.cpp's tiny model files (tiny-rwkv-*.bin, expected-logits-*.bin)")
    target_compile_definitions(test_cuda PRIVATE _GNU_SOURCE RWKV_TEST_FIXTURE_DIR="${RWKV_TEST_FIXTURE_DIR}")
    target_compile_options(test_cuda PRIVATE -Wall -Wextra -Wno-unused-function)
    add_test(NAME cuda COMMAND test_cuda)
    set_tests_properties(cuda PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
