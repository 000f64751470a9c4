// A strict reader and writer of NumPy .npy files: format versions 1.0 and 2.0, little-endian float32
// ('<f4'), C order. Anything else is refused with a one-line NpyError.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastconv::tools {

struct NpyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

NpyArray read_npy(const std::string& path);
// Parses a whole file held in memory (the reader's core, exposed for tests).
NpyArray parse_npy(const std::string& bytes, const std::string& name);
// Writes version 1.0 (2.0 when the header needs it) to a temporary file in the same folder and
// renames it, so that a failure never leaves a partial file behind.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data);
std::string format_shape(const std::vector<int64_t>& shape);  // "(1, 3, 224, 224)"

}  // namespace fastconv::tools
