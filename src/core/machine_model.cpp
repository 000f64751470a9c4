#include "core/machine_model.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "fastconv/fastconv.hpp"

namespace fastconv::detail {
namespace {

// Rates on one core, per instruction set, of the counts each implementation reports. Fitted by
// bench/fit_cost_model.py (or `fastconv calibrate`) to every implementation on the suite at 2 threads
// on the development machine (AMD EPYC Zen 3), the Winograd transform rate fixed at what the
// transforms measure alone (the data cannot separate it from the products). AVX-512 could not run
// there: its row is the AVX2 row scaled by the usual gain of twice the lanes at a lower clock, and
// checked since against calibration runs on two AVX-512 machines (a Xeon, Sapphire/Emerald Rapids
// class, and a Zen 5; docs/results/): a least-squares refit on either picked worse than this row.
// Its bandwidth is between the two machines' (the Xeon reads 20 GB/s on 2 threads, the Zen 5 48):
// at 20 the Zen 5 priced 17-38 MB of Winograd weights (512 channels, 7x7-14x14 images; they stay in
// its L3) at twice their time and picked 1.2-1.3x slower; 23 and up pick within 10% on 42/44 there,
// and any value on the Xeon's set.
constexpr WorkRates kDefaultRates[] = {
    {45.8, 1.42, 31.3, 26.7, 7.2, 6.0, 11.3, 36.2, 20},   // sse2 (fitted)
    {107, 2.44, 88.9, 86.6, 1.93, 18.0, 10.9, 57.8, 20},  // avx2+fma (fitted)
    {170, 2.9, 140, 135, 1.93, 28.0, 13.0, 90.0, 30},     // avx512 (scaled, checked)
};
// The microkernel's loss on a short k loop (C tile loads and stores, loop set-up), in k steps, per
// instruction set: the AVX2 value fitted with the rates on Zen 3; AVX-512's 12x32 tile amortises
// more per step: 8 ranks best on all three AVX-512 calibration sets (Xeon twice, Zen 5: 38/42,
// 42/42 and 31/34 picks within 10% of the fastest against 36, 41 and 29 with 24), while AVX2's own
// set (the Xeon capped at AVX2) ranks best at 24-40.
constexpr double kGemmShortKSteps[] = {24, 24, 8};
constexpr const char* kRateNames[kWorkRateCount] = {"gemm",      "pack", "direct",  "depthwise", "scalar",
                                                    "transform", "fft",  "complex", "dram"};
constexpr CacheSizes kFallbackCaches{32 << 10, 512 << 10, 32 << 20};
constexpr double kMaxCachedBytes = 16.0 * (1 << 20);
// Measured best on Zen 3 (512 KiB L2) and no larger on the AVX-512 Xeon (2 MiB L2): groups of
// 958 KiB there ran the 17-channel layer of the suite 6-20% slower than groups of 243 KiB.
constexpr double kMaxWinogradGroupBytes = 256 << 10;

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  if (!in || !std::getline(in, s)) return std::nullopt;
  return s;
}

CacheSizes read_cache_sizes() {
  CacheSizes c;
  // sysfs: /sys/devices/system/cpu/cpu0/cache/index<i>/{level,type,size}
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const auto level = read_line(dir + "level"), type = read_line(dir + "type"), size = read_line(dir + "size");
    if (!level || !type || !size) continue;
    const std::size_t bytes = parse_cache_size(*size);
    if (bytes == 0 || *type == "Instruction") continue;
    if (*level == "1") c.l1d = bytes;
    if (*level == "2") c.l2 = bytes;
    if (*level == "3") c.l3 = bytes;
  }
#ifdef _SC_LEVEL1_DCACHE_SIZE
  auto sys = [](int name) {
    const long v = sysconf(name);
    return v > 0 ? std::size_t(v) : std::size_t(0);
  };
  if (!c.l1d) c.l1d = sys(_SC_LEVEL1_DCACHE_SIZE);
  if (!c.l2) c.l2 = sys(_SC_LEVEL2_CACHE_SIZE);
  if (!c.l3) c.l3 = sys(_SC_LEVEL3_CACHE_SIZE);
#endif
  if (!c.l1d) c.l1d = kFallbackCaches.l1d;
  if (!c.l2) c.l2 = kFallbackCaches.l2;
  if (!c.l3) c.l3 = kFallbackCaches.l3;
  return c;
}

struct Calibrations {
  std::mutex mutex;
  std::array<std::optional<MachineModel>, 3> by_isa;
};
Calibrations& calibrations() {
  static Calibrations c;
  return c;
}

std::string kib(std::size_t bytes) {
  return bytes >= (std::size_t(1) << 20) && bytes % (std::size_t(1) << 20) == 0 ? std::to_string(bytes >> 20) + " MiB"
                                                                              : std::to_string(bytes >> 10) + " KiB";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Every value a model may hold: finite, positive, within what any machine could measure. A wisdom
// file is input: NaN or 1e300 would rank candidates by garbage.
double checked_value(const std::string& name, const std::string& text, double lo, double hi) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !std::isfinite(v) || v < lo || v > hi)
    throw Error("machine model: " + name + "=" + text + " is not a number in [" + number(lo) + ", " + number(hi) + "]");
  return v;
}

}  // namespace

std::size_t parse_cache_size(const std::string& text) {
  std::size_t i = 0, v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && v < (std::size_t(1) << 40))
    v = v * 10 + std::size_t(text[i++] - '0');
  if (i == 0 || v >= (std::size_t(1) << 40)) return 0;
  const std::string unit = text.substr(i);
  if (unit.empty()) return v;
  if (unit == "K") return v << 10;
  if (unit == "M") return v << 20;
  if (unit == "G") return v << 30;
  return 0;
}

const CacheSizes& cpu_cache_sizes() {
  static const CacheSizes sizes = read_cache_sizes();
  return sizes;
}

const char* work_rate_name(int i) { return kRateNames[i]; }
double& work_rate(WorkRates& r, int i) {
  double* all[kWorkRateCount] = {&r.gemm, &r.pack, &r.direct, &r.depthwise, &r.scalar,
                                 &r.transform, &r.fft, &r.complex, &r.dram};
  return *all[i];
}
double work_rate(const WorkRates& r, int i) { return work_rate(const_cast<WorkRates&>(r), i); }

double MachineModel::cached_bytes() const { return std::min(double(cache.l3) / 2, kMaxCachedBytes); }
double MachineModel::winograd_group_bytes() const { return std::min(double(cache.l2) / 2, kMaxWinogradGroupBytes); }

std::string MachineModel::describe() const {
  std::ostringstream s;
  s << (calibrated ? "calibrated" : "defaults") << " for " << isa_name(isa);
  if (calibrated && !calibration.empty()) s << " (" << calibration << ")";
  s << ": per core";
  for (int i = 0; i < kWorkRateCount; ++i) s << ' ' << kRateNames[i] << ' ' << number(work_rate(rates, i));
  s << ", overhead " << number(fixed_overhead_seconds * 1e6) << " us; caches L1d " << kib(cache.l1d) << ", L2 "
    << kib(cache.l2) << ", L3 " << kib(cache.l3);
  if (permutes_share_fma_port) s << "; permutes on an FMA port";
  return s.str();
}

MachineModel default_machine_model(Isa isa) {
  MachineModel m;
  m.isa = isa;
  m.rates = kDefaultRates[static_cast<int>(isa)];
  m.gemm_short_k_steps = kGemmShortKSteps[static_cast<int>(isa)];
  m.cache = cpu_cache_sizes();
  m.permutes_share_fma_port = cpu_is_intel();
  return m;
}

MachineModel machine_model(Isa isa) {
  {
    Calibrations& c = calibrations();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (const auto& m = c.by_isa[static_cast<int>(isa)]) return *m;
  }
  return default_machine_model(isa);
}

void set_machine_model(const MachineModel& model) {
  Calibrations& c = calibrations();
  std::lock_guard<std::mutex> lock(c.mutex);
  MachineModel m = model;
  m.calibrated = true;
  c.by_isa[static_cast<int>(m.isa)] = m;
}

void forget_machine_models() {
  Calibrations& c = calibrations();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& m : c.by_isa) m.reset();
}

std::vector<MachineModel> calibrated_machine_models() {
  Calibrations& c = calibrations();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::vector<MachineModel> v;
  for (const auto& m : c.by_isa)
    if (m) v.push_back(*m);
  return v;
}

// machine <isa> gemm=<r> ... dram=<r> overhead_us=<t> efficiency=<e> note <words to the end>
std::string machine_model_record(const MachineModel& m) {
  std::ostringstream s;
  s.precision(9);
  s << "machine " << isa_name(m.isa);
  for (int i = 0; i < kWorkRateCount; ++i) s << ' ' << kRateNames[i] << '=' << work_rate(m.rates, i);
  s << " overhead_us=" << m.fixed_overhead_seconds * 1e6 << " efficiency=" << m.parallel_efficiency;
  std::string note = m.calibration;
  for (char& ch : note)
    if (ch < ' ' || ch > '~') ch = ' ';
  s << " note " << note;
  return s.str();
}

MachineModel parse_machine_model_record(const std::string& line) {
  std::istringstream in(line);
  std::string word, isa;
  if (!(in >> word) || word != "machine" || !(in >> isa)) throw Error("machine model: malformed record");
  MachineModel m = default_machine_model(parse_isa(isa));
  bool seen[kWorkRateCount + 2] = {};
  while (in >> word) {
    if (word == "note") {
      std::getline(in, m.calibration);
      const std::size_t first = m.calibration.find_first_not_of(' ');
      m.calibration = first == std::string::npos ? "" : m.calibration.substr(first);
      if (m.calibration.size() > 200) throw Error("machine model: note longer than 200 characters");
      break;
    }
    const std::size_t eq = word.find('=');
    if (eq == std::string::npos) throw Error("machine model: '" + word + "' is not name=value");
    const std::string name = word.substr(0, eq), value = word.substr(eq + 1);
    int index = -1;
    for (int i = 0; i < kWorkRateCount; ++i)
      if (name == kRateNames[i]) index = i;
    if (index >= 0) {
      work_rate(m.rates, index) = checked_value(name, value, 1e-4, 1e5);
    } else if (name == "overhead_us") {
      index = kWorkRateCount;
      m.fixed_overhead_seconds = checked_value(name, value, 0, 1e5) * 1e-6;
    } else if (name == "efficiency") {
      index = kWorkRateCount + 1;
      m.parallel_efficiency = checked_value(name, value, 0.05, 1);
    } else {
      throw Error("machine model: unknown field '" + name + "'");
    }
    if (seen[index]) throw Error("machine model: '" + name + "' given twice");
    seen[index] = true;
  }
  for (int i = 0; i < kWorkRateCount + 2; ++i)
    if (!seen[i])
      throw Error(std::string("machine model: no ") +
                  (i < kWorkRateCount ? kRateNames[i] : i == kWorkRateCount ? "overhead_us" : "efficiency"));
  m.calibrated = true;
  return m;
}

}  // namespace fastconv::detail
