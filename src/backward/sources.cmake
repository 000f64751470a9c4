list(APPEND FASTCONV_SOURCES src/backward/backward_data.cpp src/backward/backward_weights.cpp
     src/backward/backward_weights_outer.cpp src/backward/backward_data_depthwise.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/backward/dot_kernels__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/backward/dot_kernels__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/backward/dot_kernels__avx512.cpp)
