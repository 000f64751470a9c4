// The strict .npy reader and writer.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include <unistd.h>

#include "npy.hpp"

using namespace fastconv::tools;

namespace {

// A .npy file's bytes with the given version and header text (padded and newline-terminated as
// NumPy does unless raw), followed by `data`.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1, bool raw = false) {
  std::string header = dict;
  if (!raw) {
    const std::size_t prefix = major == 1 ? 10 : 12;
    while ((prefix + header.size() + 1) % 64) header += ' ';
    header += '\n';
  }
  std::string b = std::string("\x93NUMPY", 6) + char(major) + '\0';
  const std::size_t n = header.size();
  b += char(n & 0xff), b += char(n >> 8 & 0xff);
  if (major != 1) b += char(n >> 16 & 0xff), b += char(n >> 24 & 0xff);
  return b + header + data;
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(&s[0], v.begin(), s.size());
  return s;
}

const std::string kGood = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes, "t.npy");
  } catch (const NpyError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("npy: versions 1.0 and 2.0 read", "[npy]") {
  const std::string data = floats({1, 2, 3, 4});
  for (int major : {1, 2}) {
    const NpyArray a = parse_npy(npy_bytes(kGood, data, major), "t.npy");
    CHECK(a.shape == std::vector<int64_t>{2, 2});
    CHECK(a.data == std::vector<float>{1, 2, 3, 4});
  }
  // Double quotes, no trailing comma, other key order, 1-tuples and scalars are Python too.
  const NpyArray b = parse_npy(npy_bytes("{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"<f4\"}", data), "t");
  CHECK(b.shape == std::vector<int64_t>{4});
  const NpyArray s = parse_npy(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", floats({7})), "t");
  CHECK(s.shape.empty());
  CHECK(s.data == std::vector<float>{7});
}

TEST_CASE("npy: write then read", "[npy]") {
  const std::string path = "/tmp/fastconv_npy_roundtrip_" + std::to_string(::getpid()) + ".npy";
  std::vector<float> v(2 * 3 * 5);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(i) * 0.5f - 3;
  write_npy(path, {2, 3, 5}, v.data());
  const NpyArray a = read_npy(path);
  CHECK(a.shape == std::vector<int64_t>{2, 3, 5});
  CHECK(a.data == v);
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK((bytes.size() - v.size() * 4) % 64 == 0);  // data aligned as NumPy aligns it
  std::remove(path.c_str());
}

TEST_CASE("npy: malformed files are refused with one line", "[npy]") {
  const std::string data = floats({1, 2, 3, 4});
  struct Case {
    std::string bytes;
    const char* expect;
  };
  const Case cases[] = {
      {"", "bad magic"},
      {"GIF89a....", "bad magic"},
      {npy_bytes(kGood, data, 3), "version 3.0"},
      {npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data), "'<f8'"},
      {npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", data), "'>f4'"},
      {npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", data), "'<i4'"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data), "Fortran"},
      {npy_bytes(kGood, floats({1, 2, 3})), "truncated data"},
      {npy_bytes(kGood, data + floats({5})), "bytes after the data"},
      {npy_bytes(kGood, data).substr(0, 20), "truncated header"},
      {npy_bytes(kGood, data, 1, true), "newline"},
      {npy_bytes("{'descr': '<f4', 'shape': (2, 2), }", data), "lacks"},
      {npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", data), "duplicate"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", data), "unexpected key"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2)}", data), "non-negative"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2.5)}", data), "shape"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': maybe, 'shape': (2, 2)}", data), "True or False"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}", data), "absurd"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", data), "too large"},
      {npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} junk", data), "after the header"},
      {npy_bytes("{'descr': '\xc3\xa9', 'fortran_order': False, 'shape': (2, 2)}", data), "ASCII"},
  };
  for (const Case& c : cases) {
    const std::string m = error_of(c.bytes);
    INFO("expected '" << c.expect << "', got '" << m << "'");
    CHECK_THAT(m, Catch::Contains(c.expect));
    CHECK(m.find('\n') == std::string::npos);
  }
  // A header whose declared length runs past the file.
  std::string b = npy_bytes(kGood, data);
  b[8] = '\xff', b[9] = '\x7f';
  CHECK_THAT(error_of(b), Catch::Contains("truncated header"));
}

TEST_CASE("npy: missing files and directories", "[npy]") {
  CHECK_THROWS_WITH(read_npy("/nonexistent/x.npy"), Catch::Contains("No such file"));
  CHECK_THROWS_WITH(read_npy("/tmp"), Catch::Contains("not a regular file"));
  CHECK_THROWS_AS(write_npy("/nonexistent/dir/y.npy", {1}, nullptr), NpyError);
}
