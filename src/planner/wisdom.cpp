// Wisdom files: what Measure mode chose, so that later runs plan without timing.
//
// Text format, one record per line:
//   fastconv-wisdom 1
//   library <version>            a file from another version is stale: refused
//   cpu <brand string>           a file from another CPU model is foreign: refused
//   entry <key> <implementation>
//   machine <isa> <rate>=<value>... note <words>   a calibrated machine model (fastconv calibrate)
//   fftw <n>                     then FFTW's own wisdom, n bytes, and a newline
//   checksum <16 hex digits>     FNV-1a of every line above it: a damaged file is refused
#include "planner/wisdom.hpp"

#include <cpuid.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/file_read.hpp"
#include "core/machine_model.hpp"
#include "core/verbose.hpp"
#include "fft/fft_wisdom.hpp"

namespace fastconv {
namespace detail {
namespace {

constexpr const char* kMagic = "fastconv-wisdom 1";

struct WisdomStore {
  std::mutex mutex;
  std::map<std::string, std::string> entries;
};
WisdomStore& store() {
  static WisdomStore s;
  return s;
}

std::string cpu_brand() {
  unsigned regs[12] = {};
  for (unsigned i = 0; i < 3; ++i)
    if (!__get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]))
      return "unknown";
  char brand[49] = {};
  std::memcpy(brand, regs, 48);
  std::string s(brand);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  std::size_t first = s.find_first_not_of(' ');
  s = first == std::string::npos ? "unknown" : s.substr(first);
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool valid_token(const std::string& s) {
  if (s.empty() || s.size() > 512) return false;
  for (char c : s)
    if (c <= ' ' || c > '~') return false;
  return true;
}

}  // namespace

std::string wisdom_key(const Geometry& g, const PlanContext& ctx, const PlanOptions& options) {
  std::string key = to_string(g.problem) + "|t" + std::to_string(ctx.threads) + "|" + isa_name(ctx.isa) + "|ws" +
                    std::to_string(ctx.workspace_limit) + "|" + to_string(options.algorithm);
  if (!options.implementation.empty()) key += "|" + options.implementation;
  if (ctx.direction != Direction::Forward) key += "|" + to_string(ctx.direction);
  if (ctx.epilogue.active()) key += "|post_ops=" + to_string(options.post_ops);
  if (ctx.weights_change) key += "|weights_change";
  return key;
}

std::optional<std::string> wisdom_lookup(const std::string& key) {
  std::lock_guard<std::mutex> lock(store().mutex);
  auto it = store().entries.find(key);
  if (it == store().entries.end()) return std::nullopt;
  return it->second;
}

void wisdom_remember(const std::string& key, const std::string& implementation) {
  if (!valid_token(key) || !valid_token(implementation)) return;
  std::lock_guard<std::mutex> lock(store().mutex);
  store().entries[key] = implementation;
}

std::string wisdom_header() {
  return std::string(kMagic) + "\n" + "library " + kVersion + "\n" + "cpu " + cpu_brand() + "\n";
}
std::string wisdom_checksum_line(const std::string& body) { return "checksum " + hex16(fnv1a(body)) + "\n"; }

void wisdom_load_from_environment() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* path = std::getenv("FASTCONV_WISDOM");
    if (!path || !*path) return;
    try {
      load_wisdom(path);
      if (verbose_level() >= 1) verbose_print(std::string("loaded wisdom from ") + path);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fastconv: FASTCONV_WISDOM ignored: %s\n", e.what());
    }
  });
}

}  // namespace detail

void save_wisdom(const std::string& path) {
  std::string body = detail::wisdom_header();
  {
    std::lock_guard<std::mutex> lock(detail::store().mutex);
    for (const auto& [key, impl] : detail::store().entries) body += "entry " + key + " " + impl + "\n";
  }
  for (const detail::MachineModel& m : detail::calibrated_machine_models()) body += detail::machine_model_record(m) + "\n";
  const std::string fftw = detail::fft_export_wisdom();
  body += "fftw " + std::to_string(fftw.size()) + "\n" + fftw + "\n";
  body += detail::wisdom_checksum_line(body);
  // Write beside the target and rename, so that a failed save never leaves half a file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("wisdom file '" + path + "': cannot write");
    out << body;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error("wisdom file '" + path + "': write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("wisdom file '" + path + "': cannot replace it");
  }
}

void load_wisdom(const std::string& path) {
  // Size-checked before a byte is read: /dev/zero, a FIFO or a 10 GB sparse file is refused at once.
  constexpr std::size_t kMaxBytes = std::size_t(16) << 20;
  detail::load_wisdom_text(detail::read_regular_file(path, kMaxBytes, "wisdom file"), path);
}

namespace detail {

void load_wisdom_text(const std::string& text, const std::string& path) {
  auto fail = [&](const std::string& why) -> void { throw Error("wisdom file '" + path + "': " + why); };
  std::istringstream lines(text);
  std::string line, body;
  std::map<std::string, std::string> entries;
  std::vector<MachineModel> machines;
  std::string fftw;
  bool have_fftw = false;
  int n = 0;
  bool sealed = false;
  while (std::getline(lines, line)) {
    ++n;
    const std::string at = "line " + std::to_string(n) + ": ";
    if (sealed) fail(at + "text after the checksum");
    if (n == 1) {
      if (line != detail::kMagic) fail("not a fastconv wisdom file (first line is not '" + std::string(detail::kMagic) + "')");
    } else if (line.rfind("library ", 0) == 0) {
      if (n != 2) fail(at + "'library' out of place");
      const std::string v = line.substr(8);
      if (v != kVersion) fail("stale: written by fastconv " + v + ", this is " + kVersion);
    } else if (line.rfind("cpu ", 0) == 0) {
      if (n != 3) fail(at + "'cpu' out of place");
      const std::string cpu = line.substr(4), here = detail::cpu_brand();
      if (cpu != here) fail("foreign: made on '" + cpu + "', this CPU is '" + here + "'");
    } else if (line.rfind("entry ", 0) == 0) {
      if (n < 4) fail(at + "entry before the header");
      std::istringstream fields(line.substr(6));
      std::string key, impl, extra;
      if (!(fields >> key >> impl) || (fields >> extra) || !detail::valid_token(key) || !detail::valid_token(impl))
        fail(at + "malformed entry");
      entries[key] = impl;
    } else if (line.rfind("machine ", 0) == 0) {
      if (n < 4) fail(at + "machine model before the header");
      try {
        machines.push_back(parse_machine_model_record(line));
      } catch (const Error& e) {
        fail(at + e.what());
      }
    } else if (line.rfind("fftw ", 0) == 0) {
      if (n < 4 || have_fftw) fail(at + "'fftw' out of place");
      const std::string count = line.substr(5);
      if (count.empty() || count.size() > 9 || count.find_first_not_of("0123456789") != std::string::npos)
        fail(at + "malformed fftw section size");
      if (std::stoul(count) > text.size()) fail(at + "fftw section larger than the file");
      fftw.resize(std::stoul(count));
      if (!lines.read(&fftw[0], std::streamsize(fftw.size())) || lines.get() != '\n')
        fail(at + "fftw section truncated");
      body += line + "\n" + fftw + "\n";
      have_fftw = true;
      continue;
    } else if (line.rfind("checksum ", 0) == 0) {
      if (line.substr(9) != detail::hex16(detail::fnv1a(body))) fail(at + "checksum mismatch: the file is damaged");
      sealed = true;
      continue;
    } else {
      fail(at + "unexpected record");
    }
    body += line + "\n";
  }
  if (n == 0) fail("empty: not a fastconv wisdom file");
  if (n < 3) fail("truncated header");
  if (!sealed) fail("no checksum: the file is truncated");
  if (have_fftw) {
    try {
      detail::fft_import_wisdom(fftw);
    } catch (const Error& e) {
      fail(std::string("FFTW refused its section: ") + e.what());
    }
  }
  for (const MachineModel& m : machines) set_machine_model(m);
  std::lock_guard<std::mutex> lock(detail::store().mutex);
  for (auto& [key, impl] : entries) detail::store().entries[key] = impl;
}

}  // namespace detail

void forget_wisdom() {
  detail::forget_machine_models();
  std::lock_guard<std::mutex> lock(detail::store().mutex);
  detail::store().entries.clear();
}

std::size_t wisdom_size() {
  std::lock_guard<std::mutex> lock(detail::store().mutex);
  return detail::store().entries.size();
}

}  // namespace fastconv
