# CMake generated Testfile for 
# Source directory: /work/main/native/tests
# Build directory: /work/main/build-samp-asan/native/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(file_format_crafted "/work/main/build-samp-asan/native/tests/test_file_format" "crafted")
set_tests_properties(file_format_crafted PROPERTIES  ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;40;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(file_format_fixtures "/work/main/build-samp-asan/native/tests/test_file_format" "fixtures" "/work/main/../shared/fixtures/rwkvcpp")
set_tests_properties(file_format_fixtures PROPERTIES  ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;41;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(api "/work/main/build-samp-asan/native/tests/test_api" "synthetic")
set_tests_properties(api PROPERTIES  ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;42;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(api_fixtures "/work/main/build-samp-asan/native/tests/test_api" "fixtures" "/work/main/../shared/fixtures/rwkvcpp")
set_tests_properties(api_fixtures PROPERTIES  ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;43;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(kernels "/work/main/build-samp-asan/native/tests/test_kernels")
set_tests_properties(kernels PROPERTIES  ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;44;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(quant "/work/main/build-samp-asan/native/tests/test_quant")
set_tests_properties(quant PROPERTIES  ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;45;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(sampling "/work/main/build-samp-asan/native/tests/test_sampling")
set_tests_properties(sampling PROPERTIES  ENVIRONMENT "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1" SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;46;add_test;/work/main/native/tests/CMakeLists.txt;0;")
