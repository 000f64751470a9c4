list(APPEND FASTCONV_SOURCES src/direct/reference.cpp src/direct/direct_kernels.cpp src/direct/direct_conv.cpp
     src/direct/direct_dots.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/direct/direct_kernels__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/direct/direct_kernels__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/direct/direct_kernels__avx512.cpp)
