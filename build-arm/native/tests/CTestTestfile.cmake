# CMake generated Testfile for 
# Source directory: /work/main/native/tests
# Build directory: /work/main/build-arm/native/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(file_format_crafted "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/main/build-arm/native/tests/test_file_format" "crafted")
set_tests_properties(file_format_crafted PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;40;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(file_format_fixtures "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/main/build-arm/native/tests/test_file_format" "fixtures" "/work/main/../shared/fixtures/rwkvcpp")
set_tests_properties(file_format_fixtures PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;41;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(api "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/main/build-arm/native/tests/test_api" "synthetic")
set_tests_properties(api PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;42;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(api_fixtures "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/main/build-arm/native/tests/test_api" "fixtures" "/work/main/../shared/fixtures/rwkvcpp")
set_tests_properties(api_fixtures PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;43;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(kernels "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/main/build-arm/native/tests/test_kernels")
set_tests_properties(kernels PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;44;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(quant "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/main/build-arm/native/tests/test_quant")
set_tests_properties(quant PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;45;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(sampling "/usr/bin/qemu-aarch64" "-L" "/usr/aarch64-linux-gnu" "/work/main/build-arm/native/tests/test_sampling")
set_tests_properties(sampling PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;46;add_test;/work/main/native/tests/CMakeLists.txt;0;")
