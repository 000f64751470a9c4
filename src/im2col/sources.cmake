list(APPEND FASTCONV_SOURCES src/im2col/im2col_pack.cpp src/im2col/im2col_conv.cpp src/im2col/im2col_regions.cpp
     src/im2col/im2col_pixels.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/im2col/im2col_pack__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/im2col/im2col_pack__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/im2col/im2col_pack__avx512.cpp)
