list(APPEND FASTCONV_SOURCES src/im2col/im2col_pack.cpp src/im2col/im2col_conv.cpp)
