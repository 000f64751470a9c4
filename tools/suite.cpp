#include "suite.hpp"

#include <fstream>
#include <sstream>

#include "args.hpp"
#include "core/file_read.hpp"

namespace fastconv::tools {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(s);
  while (std::getline(in, field, sep)) out.push_back(field);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

int64_t parse_int(const std::string& text, const std::string& where, const char* field) {
  const std::string t = trim(text);
  const std::optional<int64_t> v = to_int64(t);
  if (!v) throw Error(where + ": " + field + "='" + t + "' is not an integer");
  return *v;
}

const char* const kColumns[] = {"N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w",
                                "pad_h", "pad_w", "dil_h", "dil_w", "groups"};

ConvProblem problem_from_numbers(const std::vector<std::string>& f, std::size_t first, const std::string& where) {
  int64_t v[14];
  for (int i = 0; i < 14; ++i) v[i] = parse_int(f[first + i], where, kColumns[i]);
  ConvProblem p;
  p.batch = v[0], p.in_channels = v[1], p.in_height = v[2], p.in_width = v[3];
  p.out_channels = v[4], p.kernel_height = v[5], p.kernel_width = v[6];
  p.stride_h = v[7], p.stride_w = v[8];
  p.pad_top = p.pad_bottom = v[9], p.pad_left = p.pad_right = v[10];
  p.dilation_h = v[11], p.dilation_w = v[12], p.groups = v[13];
  try {
    p.validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return p;
}

}  // namespace

std::vector<SuiteShape> parse_suite(const std::string& csv, const std::string& source) {
  std::vector<SuiteShape> out;
  std::istringstream in(csv);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const std::string where = source + ":" + std::to_string(n);
    const auto f = split(t, ',');
    if (trim(f[0]) == "name") continue;  // a header row
    if (f.size() != 15)
      throw Error(where + ": expected 15 columns (name,N,C,H,W,K,R,S,stride_h,stride_w,pad_h,pad_w,dil_h,dil_w,groups), got " +
                  std::to_string(f.size()));
    out.push_back({trim(f[0]), problem_from_numbers(f, 1, where)});
  }
  if (out.empty()) throw Error(source + ": no shapes");
  return out;
}

std::vector<SuiteShape> load_suite(const std::string& path) {
  // A suite is a small text file: a FIFO, a device or anything over 64 MiB is refused unread.
  return parse_suite(detail::read_regular_file(path, std::size_t(64) << 20, "suite"), path);
}

namespace {
// Parsed once: every shape argument is looked up in it first.
const std::vector<SuiteShape>& parsed_builtin_suite() {
  static const std::vector<SuiteShape> suite = parse_suite(builtin_suite_csv(), "built-in suite");
  return suite;
}
}  // namespace

std::vector<SuiteShape> builtin_suite() { return parsed_builtin_suite(); }

SuiteShape parse_shape_argument(const std::string& arg) {
  const std::vector<SuiteShape>& suite = parsed_builtin_suite();
  for (const auto& s : suite)
    if (s.name == arg) return s;
  const auto f = split(arg, ',');
  if (f.size() == 14) return {arg, problem_from_numbers(f, 0, "shape '" + arg + "'")};
  if (f.size() == 15) return {trim(f[0]), problem_from_numbers(f, 1, "shape '" + arg + "'")};
  ConvProblem p = parse_problem(arg);
  p.validate();
  return {to_string(p), p};
}

}  // namespace fastconv::tools
