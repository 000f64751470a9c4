list(APPEND FASTCONV_SOURCES src/winograd/winograd_transforms.cpp src/winograd/winograd_conv.cpp
                             src/winograd/dilated_phases.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/winograd/winograd_transforms__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/winograd/winograd_transforms__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/winograd/winograd_transforms__avx512.cpp)
