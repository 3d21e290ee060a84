# CMake generated Testfile for 
# Source directory: /work/main/native/tests
# Build directory: /work/main/build-win/native/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
