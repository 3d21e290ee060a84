# Cross-compiles for 64-bit Windows with Debian's MinGW-w64 (apt-get install gcc-mingw-w64-x86-64):
#   cmake -S . -B build-win -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-x86_64.cmake
# The result, rwkv.dll, needs only system DLLs: libgcc is linked statically (CMakeLists.txt).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR AMD64)

set(RWKV_MINGW_PREFIX x86_64-w64-mingw32 CACHE STRING "Target triple prefix of the MinGW-w64 tools")
# Debian ships a "-posix" and a "-win32" thread model flavour; the plain names point at one of them.
# The library itself uses Win32 threads either way.
set(CMAKE_C_COMPILER ${RWKV_MINGW_PREFIX}-gcc)
set(CMAKE_CXX_COMPILER ${RWKV_MINGW_PREFIX}-g++)
set(CMAKE_RC_COMPILER ${RWKV_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${RWKV_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Test executables run through wine when it is installed (ctest, try_run).
find_program(RWKV_WINE NAMES wine64 wine)
if(RWKV_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${RWKV_WINE})
endif()
