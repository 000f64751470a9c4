list(APPEND FASTCONV_SOURCES src/fft/fft_conv.cpp src/fft/fft_kernels.cpp src/fft/fftw_plans.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/fft/fft_kernels__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/fft/fft_kernels__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/fft/fft_kernels__avx512.cpp)
