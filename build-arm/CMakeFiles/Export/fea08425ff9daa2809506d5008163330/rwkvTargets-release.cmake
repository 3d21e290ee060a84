#----------------------------------------------------------------
# Generated CMake target import file for configuration "Release".
#----------------------------------------------------------------

# Commands may need to know the format version.
set(CMAKE_IMPORT_FILE_VERSION 1)

# Import target "rwkv::rwkv" for configuration "Release"
set_property(TARGET rwkv::rwkv APPEND PROPERTY IMPORTED_CONFIGURATIONS RELEASE)
set_target_properties(rwkv::rwkv PROPERTIES
  IMPORTED_LOCATION_RELEASE "${_IMPORT_PREFIX}/lib/librwkv.so"
  IMPORTED_SONAME_RELEASE "librwkv.so"
  )

list(APPEND _cmake_import_check_targets rwkv::rwkv )
list(APPEND _cmake_import_check_files_for_rwkv::rwkv "${_IMPORT_PREFIX}/lib/librwkv.so" )

# Commands beyond this point should not need to know the version.
set(CMAKE_IMPORT_FILE_VERSION)
