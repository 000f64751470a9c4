list(APPEND FASTCONV_SOURCES src/core/problem.cpp src/core/cpu.cpp src/core/parallel.cpp src/core/verbose.cpp
                             src/core/fma_peak.cpp src/core/phase_stats.cpp src/core/epilogue.cpp
                             src/core/file_read.cpp src/core/isa_dispatch.cpp
                             src/core/machine_model.cpp)
list(APPEND FASTCONV_SOURCES_SSE2 src/core/fma_peak__sse2.cpp src/core/epilogue__sse2.cpp)
list(APPEND FASTCONV_SOURCES_AVX2 src/core/fma_peak__avx2.cpp src/core/epilogue__avx2.cpp)
list(APPEND FASTCONV_SOURCES_AVX512 src/core/fma_peak__avx512.cpp src/core/epilogue__avx512.cpp)
