list(APPEND FASTCONV_SOURCES src/winograd/winograd_transforms.cpp src/winograd/winograd_conv.cpp
                             src/winograd/dilated_phases.cpp src/winograd/winograd_1d.cpp
                             src/winograd/winograd_1d_kernels.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/winograd/winograd_transforms__sse2.cpp src/winograd/winograd_1d_kernels__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/winograd/winograd_transforms__avx2.cpp src/winograd/winograd_1d_kernels__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/winograd/winograd_transforms__avx512.cpp src/winograd/winograd_1d_kernels__avx512.cpp)
