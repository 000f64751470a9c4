list(APPEND FASTCONV_SOURCES src/gemm/sgemm_kernel.cpp src/gemm/pack.cpp src/gemm/macro_kernel.cpp src/gemm/sgemm.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/gemm/sgemm_ukernel__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/gemm/sgemm_ukernel__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/gemm/sgemm_ukernel__avx512.cpp)
