// Fuzz target: parse_problem and the other parsers of names (algorithm, plan mode). A problem that
// parses and validates prints back to the same canonical name and parses to an equal problem.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fastconv/fastconv.hpp"

using namespace fastconv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)parse_algorithm(text);
  } catch (const Error&) {
  }
  try {
    (void)parse_plan_mode(text);
  } catch (const Error&) {
  }
  ConvProblem p;
  try {
    p = parse_problem(text);
  } catch (const Error&) {
    return 0;
  }
  try {
    p.validate();
  } catch (const Error&) {
    return 0;
  }
  const std::string name = to_string(p);
  const ConvProblem again = parse_problem(name);  // must not throw: it is canonical
  if (!(again == p) || to_string(again) != name) std::abort();
  (void)output_shape(p);
  (void)flop_count(p);
  (void)parameter_count(p, true);
  (void)std::hash<ConvProblem>()(p);
  return 0;
}
