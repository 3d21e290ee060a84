# Installs what a native host needs: the library, rwkv.h, a CMake package
#   find_package(rwkv 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE rwkv::rwkv)
# and a pkg-config file (pkg-config --cflags --libs rwkv). Both are relocatable: they find the
# library relative to where they are installed, so `cmake --install build --prefix DIR` works.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RWKV_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rwkv)

install(TARGETS rwkv EXPORT rwkvTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/native/include/rwkv.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT rwkvTargets NAMESPACE rwkv:: DESTINATION ${RWKV_CMAKE_PACKAGE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/rwkvConfig.cmake.in
    ${PROJECT_BINARY_DIR}/rwkvConfig.cmake
    INSTALL_DESTINATION ${RWKV_CMAKE_PACKAGE_DIR})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rwkvConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rwkvConfig.cmake ${PROJECT_BINARY_DIR}/rwkvConfigVersion.cmake
    DESTINATION ${RWKV_CMAKE_PACKAGE_DIR})

# pkg-config: the prefix is found from the .pc file's own place (${pcfiledir}).
file(RELATIVE_PATH RWKV_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
if(WIN32)
    set(RWKV_PC_LIBS_PRIVATE "")
else()
    set(RWKV_PC_LIBS_PRIVATE "-lm -pthread")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/rwkv.pc.in ${PROJECT_BINARY_DIR}/rwkv.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/rwkv.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
