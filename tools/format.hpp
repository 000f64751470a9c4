// Small formatting helpers shared by the tool's tables.
#pragma once

#include <cstdio>
#include <string>

namespace fastconv::tools {

inline std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

inline std::string human_bytes(std::size_t b) {
  if (b == 0) return "0";
  if (b < 1024) return std::to_string(b) + " B";
  if (b < (std::size_t(1) << 20)) return fmt("%.1f KiB", double(b) / 1024);
  if (b < (std::size_t(1) << 30)) return fmt("%.1f MiB", double(b) / (1 << 20));
  return fmt("%.2f GiB", double(b) / (1 << 30));
}

// Left- or right-aligned cell of a fixed width (never truncated).
inline std::string cell(const std::string& s, int width, bool right = false) {
  if (int(s.size()) >= width) return s + " ";
  const std::string pad(std::size_t(width - int(s.size())), ' ');
  return (right ? pad + s : s + pad) + " ";
}

}  // namespace fastconv::tools
