// Overflow-checked integer arithmetic for sizes that come from users.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {

// a*b, or Error naming `what` when the product overflows int64_t.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Error(std::string(what) + " overflows int64_t");
  return r;
}
inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw Error(std::string(what) + " overflows int64_t");
  return r;
}
// Bytes of `count` elements of `elem` bytes, or Error when that does not fit size_t.
inline std::size_t checked_bytes(int64_t count, std::size_t elem, const char* what) {
  std::size_t r;
  if (count < 0 || __builtin_mul_overflow(static_cast<std::size_t>(count), elem, &r))
    throw Error(std::string(what) + " overflows size_t");
  return r;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// n items cut into blocks of `block` (the last one shorter), each block padded to a multiple of
// `pad`: the padded total, in closed form (layers with billions of rows or tiles reach the planner),
// as a double (it feeds cost estimates and may pass int64_t).
inline double padded_blocks(int64_t n, int64_t block, int64_t pad) {
  const int64_t rest = n % block;
  return double(n / block) * double(round_up(block, pad)) + (rest ? double(round_up(rest, pad)) : 0.0);
}

}  // namespace fastconv::detail
