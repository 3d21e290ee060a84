# Cross-compiles for 64-bit ARM Linux with Debian's cross gcc (apt-get install gcc-aarch64-linux-gnu):
#   cmake -S . -B build-arm -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
# ctest runs the tests through qemu-user when it is installed (apt-get install qemu-user).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(RWKV_CROSS_PREFIX aarch64-linux-gnu CACHE STRING "Target triple prefix of the cross tools")
set(CMAKE_C_COMPILER ${RWKV_CROSS_PREFIX}-gcc)
set(CMAKE_CXX_COMPILER ${RWKV_CROSS_PREFIX}-g++)

set(CMAKE_FIND_ROOT_PATH /usr/${RWKV_CROSS_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(RWKV_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(RWKV_QEMU_AARCH64)
    # -L: where the target's dynamic loader and libc live.
    set(CMAKE_CROSSCOMPILING_EMULATOR ${RWKV_QEMU_AARCH64} -L /usr/${RWKV_CROSS_PREFIX})
endif()
