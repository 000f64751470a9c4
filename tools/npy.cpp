#include "npy.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/file_read.hpp"
#include "fastconv/fastconv.hpp"

namespace fastconv::tools {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kMaxHeader = 1 << 20;

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name) : t_(text), name_(name) {}

  void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        if (have_descr) fail("duplicate key 'descr'");
        descr = string_literal(), have_descr = true;
      } else if (key == "fortran_order") {
        if (have_fortran) fail("duplicate key 'fortran_order'");
        fortran = boolean(), have_fortran = true;
      } else if (key == "shape") {
        if (have_shape) fail("duplicate key 'shape'");
        shape = tuple(), have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}' in the header");
    }
    ++i_;
    skip_space();
    if (i_ != t_.size()) fail("text after the header dictionary");
    if (!have_descr || !have_fortran || !have_shape)
      fail("header lacks one of 'descr', 'fortran_order', 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw NpyError(name_ + ": malformed header: " + why); }
  char peek() const { return i_ < t_.size() ? t_[i_] : '\0'; }
  void skip_space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n')) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string_literal() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const std::size_t end = t_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string s = t_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return s;
  }
  bool boolean() {
    skip_space();
    if (t_.compare(i_, 4, "True") == 0) return i_ += 4, true;
    if (t_.compare(i_, 5, "False") == 0) return i_ += 5, false;
    fail("expected True or False");
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> v;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("shape entries must be non-negative integers");
      int64_t x = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, peek() - '0', &x))
          fail("shape entry too large");
        ++i_;
      }
      v.push_back(x);
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++i_;
    return v;
  }

  const std::string& t_;
  const std::string& name_;
  std::size_t i_ = 0;
};

uint32_t read_le(const std::string& b, std::size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b[at + i]);
  return v;
}

}  // namespace

std::string format_shape(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

namespace {

struct NpyLayout {
  std::vector<int64_t> shape;
  int64_t count;            // elements
  std::size_t data_at;      // where the data starts
  std::size_t data_bytes;
};

// The header at the start of `b` (which must hold at least the whole header).
NpyLayout parse_header(const std::string& b, const std::string& name) {
  if (b.size() < kMagicLen + 2 || b.compare(0, kMagicLen, kMagic, kMagicLen) != 0)
    throw NpyError(name + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(b[6]), minor = static_cast<unsigned char>(b[7]);
  if ((major != 1 && major != 2) || minor != 0)
    throw NpyError(name + ": .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " is not supported (1.0 and 2.0 are)");
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  if (b.size() < 8 + len_bytes) throw NpyError(name + ": truncated header");
  const std::size_t header_len = read_le(b, 8, int(len_bytes));
  const std::size_t data_at = 8 + len_bytes + header_len;
  if (header_len > kMaxHeader) throw NpyError(name + ": header length " + std::to_string(header_len) + " is absurd");
  if (b.size() < data_at) throw NpyError(name + ": truncated header");
  std::string header = b.substr(8 + len_bytes, header_len);
  if (header.empty() || header.back() != '\n') throw NpyError(name + ": malformed header: no terminating newline");
  for (char c : header)
    if (static_cast<unsigned char>(c) > 127) throw NpyError(name + ": malformed header: not ASCII");

  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  HeaderParser(header, name).parse(descr, fortran, shape);
  if (descr != "<f4")
    throw NpyError(name + ": dtype '" + descr + "' is not supported (fastconv reads little-endian float32 '<f4')");
  if (fortran) throw NpyError(name + ": Fortran order is not supported (save a C-contiguous array)");

  int64_t count = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(count, d, &count) || count > (int64_t(1) << 40))
      throw NpyError(name + ": shape " + format_shape(shape) + " is absurd");
  return {shape, count, data_at, std::size_t(count) * sizeof(float)};
}

// The data must fill the rest of the file exactly.
void check_data_size(const NpyLayout& l, uint64_t file_bytes, const std::string& name) {
  const uint64_t have = file_bytes - l.data_at;
  if (have < l.data_bytes)
    throw NpyError(name + ": truncated data: shape " + format_shape(l.shape) + " needs " + std::to_string(l.data_bytes) +
                   " bytes, the file holds " + std::to_string(have));
  if (have > l.data_bytes)
    throw NpyError(name + ": " + std::to_string(have - l.data_bytes) + " bytes after the data of shape " +
                   format_shape(l.shape));
}

}  // namespace

NpyArray parse_npy(const std::string& b, const std::string& name) {
  const NpyLayout l = parse_header(b, name);
  check_data_size(l, b.size(), name);
  NpyArray a;
  a.shape = l.shape;
  a.data.resize(std::size_t(l.count));
  if (l.count) std::memcpy(a.data.data(), b.data() + l.data_at, l.data_bytes);
  return a;
}

NpyArray read_npy(const std::string& path) {
  // Header first, sizes checked against the file's size before the data is read: a FIFO, a device or
  // a huge file of garbage is refused at once.
  try {
    detail::RegularFile f(path, "npy file");
    std::string head(std::size_t(std::min<uint64_t>(f.size(), 12 + kMaxHeader)), '\0');
    if (!head.empty()) f.read_at(0, &head[0], head.size());
    if (head.size() >= 12) {  // cut to the header's own length before parsing
      const int major = static_cast<unsigned char>(head[6]);
      const std::size_t len_bytes = major == 1 ? 2 : 4;
      const std::size_t data_at = 8 + len_bytes + read_le(head, 8, int(len_bytes));
      if (data_at < head.size()) head.resize(data_at);
    }
    const NpyLayout l = parse_header(head, path);
    check_data_size(l, f.size(), path);
    NpyArray a;
    a.shape = l.shape;
    a.data.resize(std::size_t(l.count));
    if (l.count) f.read_at(l.data_at, a.data.data(), l.data_bytes);
    return a;
  } catch (const Error& e) {
    throw NpyError(e.what());
  }
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + format_shape(shape) + ", }";
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  // Pad with spaces so that the data starts on a 64-byte boundary, as NumPy does.
  std::size_t prefix = kMagicLen + 2 + 2;
  int major = 1;
  std::size_t total = prefix + dict.size() + 1;
  if ((total + 63) / 64 * 64 - prefix > 65535) major = 2, prefix += 2, total += 2;
  const std::size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  const std::size_t header_len = dict.size();

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw NpyError(path + ": cannot write: " + std::strerror(errno));
  std::string head(kMagic, kMagicLen);
  head.push_back(char(major));
  head.push_back(0);
  for (std::size_t i = 0; i < (major == 1 ? 2u : 4u); ++i) head.push_back(char(header_len >> (8 * i) & 0xff));
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size() &&
            std::fwrite(dict.data(), 1, dict.size(), f) == dict.size() &&
            (count == 0 || std::fwrite(data, sizeof(float), std::size_t(count), f) == std::size_t(count));
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw NpyError(path + ": write failed");
  }
}

}  // namespace fastconv::tools
