// Fuzz target: the wisdom loader (src/planner/wisdom.cpp), FFTW's wisdom import included. The first
// byte chooses whether this CPU's valid header is put in front and whether a correct checksum seals
// the end, so that the fuzzer reaches the records past them (it cannot forge an FNV-1a hash).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fastconv/fastconv.hpp"
#include "planner/wisdom.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0];
  std::string text = (mode & 1) ? fastconv::detail::wisdom_header() : "";
  text.append(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode & 2) text += fastconv::detail::wisdom_checksum_line(text);
  try {
    fastconv::detail::load_wisdom_text(text, "fuzz.wisdom");
  } catch (const fastconv::Error&) {
  }
  if (fastconv::wisdom_size() > 10000) std::abort();  // nothing loads more entries than lines
  fastconv::forget_wisdom();
  return 0;
}
