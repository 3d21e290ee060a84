CMakeFiles/rwkv_objects.dir/native/src/eval.c.obj: \
 /work/main/native/src/eval.c /work/main/native/src/eval.h \
 /usr/lib/gcc/x86_64-w64-mingw32/12-win32/include/stdbool.h \
 /usr/lib/gcc/x86_64-w64-mingw32/12-win32/include/stddef.h \
 /usr/share/mingw-w64/include/stddef.h \
 /usr/share/mingw-w64/include/crtdefs.h \
 /usr/share/mingw-w64/include/corecrt.h \
 /usr/share/mingw-w64/include/_mingw.h \
 /usr/share/mingw-w64/include/_mingw_mac.h \
 /usr/share/mingw-w64/include/_mingw_secapi.h \
 /usr/share/mingw-w64/include/vadefs.h \
 /usr/share/mingw-w64/include/sdks/_mingw_ddk.h \
 /usr/lib/gcc/x86_64-w64-mingw32/12-win32/include/stdint.h \
 /usr/share/mingw-w64/include/stdint.h /work/main/native/src/context.h \
 /work/main/native/src/errors.h /work/main/native/include/rwkv.h \
 /work/main/native/src/kernels.h /work/main/native/src/quant.h \
 /work/main/native/src/tensor_types.h /work/main/native/src/model.h \
 /usr/lib/gcc/x86_64-w64-mingw32/12-win32/include/stdatomic.h \
 /work/main/native/src/file_format.h /work/main/native/src/platform.h \
 /usr/share/mingw-w64/include/stdio.h \
 /usr/share/mingw-w64/include/corecrt_stdio_config.h \
 /usr/share/mingw-w64/include/_mingw_off_t.h \
 /usr/share/mingw-w64/include/swprintf.inl \
 /usr/share/mingw-w64/include/sec_api/stdio_s.h \
 /work/main/native/src/threadpool.h /usr/share/mingw-w64/include/math.h \
 /usr/share/mingw-w64/include/string.h \
 /usr/share/mingw-w64/include/sec_api/string_s.h \
 /work/main/native/src/ops.h /work/main/native/src/wkv.h
