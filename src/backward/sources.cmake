list(APPEND FASTCONV_SOURCES src/backward/backward_data.cpp src/backward/backward_weights.cpp)
