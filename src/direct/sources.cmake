list(APPEND FASTCONV_SOURCES src/direct/reference.cpp src/direct/direct_plain.cpp)
