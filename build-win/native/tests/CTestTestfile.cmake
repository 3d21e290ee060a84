# CMake generated Testfile for 
# Source directory: /work/main/native/tests
# Build directory: /work/main/build-win/native/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(file_format_crafted "/usr/bin/wine" "/work/main/build-win/native/tests/test_file_format.exe" "crafted")
set_tests_properties(file_format_crafted PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;40;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(file_format_fixtures "/usr/bin/wine" "/work/main/build-win/native/tests/test_file_format.exe" "fixtures" "/work/shared/fixtures/rwkvcpp")
set_tests_properties(file_format_fixtures PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;41;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(api "/usr/bin/wine" "/work/main/build-win/native/tests/test_api.exe" "synthetic")
set_tests_properties(api PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;42;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(api_fixtures "/usr/bin/wine" "/work/main/build-win/native/tests/test_api.exe" "fixtures" "/work/shared/fixtures/rwkvcpp")
set_tests_properties(api_fixtures PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;43;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(kernels "/usr/bin/wine" "/work/main/build-win/native/tests/test_kernels.exe")
set_tests_properties(kernels PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;44;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(quant "/usr/bin/wine" "/work/main/build-win/native/tests/test_quant.exe")
set_tests_properties(quant PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;45;add_test;/work/main/native/tests/CMakeLists.txt;0;")
add_test(sampling "/usr/bin/wine" "/work/main/build-win/native/tests/test_sampling.exe")
set_tests_properties(sampling PROPERTIES  SKIP_RETURN_CODE "77" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/native/tests/CMakeLists.txt;46;add_test;/work/main/native/tests/CMakeLists.txt;0;")
