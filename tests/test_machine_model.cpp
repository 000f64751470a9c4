// The machine model (src/core/machine_model.hpp): caches read from the CPU, per-ISA defaults, the
// wisdom record that carries a calibration (and refuses a hostile one), and the planner pricing
// with whatever model is installed.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/machine_model.hpp"
#include "fastconv/fastconv.hpp"
#include "planner/planner.hpp"

using namespace fastconv;
using namespace fastconv::detail;

namespace {

std::string temp_path(const char* name) { return "/tmp/fastconv_mm_" + std::to_string(getpid()) + "_" + name; }

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

double estimate_of(const std::vector<Candidate>& cands, Algorithm a) {
  for (const Candidate& c : cands)
    if (c.applicable && c.algorithm == a) return c.time_ms;
  return -1;
}

}  // namespace

TEST_CASE("machine model: cache sizes in sysfs's format and from this CPU", "[machine_model]") {
  CHECK(parse_cache_size("48K") == 48 << 10);
  CHECK(parse_cache_size("2048K") == std::size_t(2) << 20);
  CHECK(parse_cache_size("32M") == std::size_t(32) << 20);
  CHECK(parse_cache_size("1G") == std::size_t(1) << 30);
  CHECK(parse_cache_size("4096") == 4096);
  for (const char* bad : {"", "K", "12X", "12KB", "-3K", "99999999999999999999K"}) {
    INFO(bad);
    CHECK(parse_cache_size(bad) == 0);
  }
  const CacheSizes& c = cpu_cache_sizes();
  CHECK(c.l1d >= 4096);
  CHECK(c.l2 >= c.l1d);
  CHECK(c.l3 > 0);
  CHECK(default_machine_model(best_isa()).cache.l2 == c.l2);
}

TEST_CASE("machine model: per-ISA defaults, wider vectors faster", "[machine_model]") {
  const MachineModel s = default_machine_model(Isa::Sse2), a = default_machine_model(Isa::Avx2),
                     z = default_machine_model(Isa::Avx512);
  for (const MachineModel* m : {&s, &a, &z}) {
    CHECK_FALSE(m->calibrated);
    for (int i = 0; i < kWorkRateCount; ++i) CHECK(work_rate(m->rates, i) > 0);
    CHECK_THAT(m->describe(), Catch::StartsWith("defaults for "));
  }
  CHECK(s.rates.gemm < a.rates.gemm);
  CHECK(a.rates.gemm < z.rates.gemm);
  // The last-level share and the Winograd group never exceed what was measured to pay.
  CHECK(z.cached_bytes() <= 16.0 * (1 << 20));
  CHECK(z.winograd_group_bytes() <= 256 << 10);
}

TEST_CASE("machine model: the wisdom record round-trips and refuses what is not a model", "[machine_model]") {
  MachineModel m = default_machine_model(Isa::Avx2);
  m.rates.gemm = 123.456, m.rates.dram = 7.5, m.fixed_overhead_seconds = 12.5e-6, m.parallel_efficiency = 0.8;
  m.calibration = "fastconv calibrate: a test";
  const std::string line = machine_model_record(m);
  const MachineModel back = parse_machine_model_record(line);
  CHECK(back.isa == Isa::Avx2);
  CHECK(back.calibrated);
  CHECK(back.calibration == "fastconv calibrate: a test");
  for (int i = 0; i < kWorkRateCount; ++i) CHECK(work_rate(back.rates, i) == Approx(work_rate(m.rates, i)));
  CHECK(back.fixed_overhead_seconds == Approx(12.5e-6));
  CHECK(back.parallel_efficiency == Approx(0.8));

  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = line;
    const std::size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  for (const std::string& bad :
       {replaced("gemm=123.456", "gemm=nan"), replaced("gemm=123.456", "gemm=inf"), replaced("gemm=123.456", "gemm=-5"),
        replaced("gemm=123.456", "gemm=1e300"), replaced("gemm=123.456", "gemm=12x"), replaced("gemm=123.456", "gemm="),
        replaced("gemm=123.456 ", ""), replaced("dram=7.5", "dram=7.5 dram=7.5"), replaced("gemm=123.456", "speed=3"),
        replaced("efficiency=0.8", "efficiency=2"), replaced("machine avx2", "machine avx9"),
        replaced("gemm=123.456", "gemm")}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_machine_model_record(bad), Error);
  }
}

TEST_CASE("machine model: a calibration travels with the wisdom and prices the candidates", "[machine_model]") {
  forget_wisdom();
  const Isa isa = best_isa();
  const ConvProblem p = parse_problem("n1c256h28w28k256r1s1");  // im2col's 1x1 GEMM applies
  PlanOptions o;
  o.threads = 2;
  const double gemm_default = estimate_of(find_algorithms(p, o), Algorithm::Im2col);
  REQUIRE(gemm_default > 0);
  CHECK_THAT(describe_machine_model(), Catch::StartsWith("defaults for"));

  // A machine whose GEMM runs at a tenth of the default rate: im2col's estimate grows accordingly.
  MachineModel slow = default_machine_model(isa);
  slow.rates.gemm /= 10;
  slow.calibration = "a test";
  set_machine_model(slow);
  const double gemm_slow = estimate_of(find_algorithms(p, o), Algorithm::Im2col);
  CHECK(gemm_slow > 5 * gemm_default);
  const Plan plan = Plan::create(p, o);
  CHECK_THAT(plan.describe(), Catch::Contains("machine model calibrated for " + std::string(isa_name(isa)) + " (a test)"));

  const std::string path = temp_path("wisdom");
  save_wisdom(path);
  CHECK_THAT(slurp(path), Catch::Contains("\nmachine " + std::string(isa_name(isa)) + " gemm="));
  forget_wisdom();
  CHECK_FALSE(machine_model(isa).calibrated);
  CHECK(estimate_of(find_algorithms(p, o), Algorithm::Im2col) == Approx(gemm_default));
  load_wisdom(path);
  CHECK(machine_model(isa).calibrated);
  CHECK(machine_model(isa).rates.gemm == Approx(slow.rates.gemm));
  CHECK(estimate_of(find_algorithms(p, o), Algorithm::Im2col) == Approx(gemm_slow));

  // A damaged model line: the file is refused as a whole and the model in use stays.
  forget_wisdom();
  std::string text = slurp(path);
  const std::size_t at = text.find(" gemm=");
  text.replace(at, 6, " gemm=nan");
  std::ofstream(path, std::ios::trunc) << text;
  CHECK_THROWS_WITH(load_wisdom(path), Catch::Contains("machine model"));
  CHECK_FALSE(machine_model(isa).calibrated);
  std::remove(path.c_str());
}

TEST_CASE("machine model: calibrate times the layers, fits and installs a model", "[machine_model][calibrate]") {
  forget_wisdom();
  CHECK_THROWS_AS(calibrate(0), Error);
  CHECK_THROWS_AS(calibrate(-1), Error);
  CHECK_THROWS_AS(calibrate(1, -2), Error);
  const std::string report = calibrate(0.5, 2);  // one pass over the layers, whatever the budget
  INFO(report);
  CHECK_THAT(report, Catch::Contains("calibration: ") && Catch::Contains("picks within 10% of the fastest") &&
                         Catch::Contains("installed"));
  const MachineModel m = machine_model(best_isa());
  CHECK(m.calibrated);
  CHECK_THAT(m.calibration, Catch::StartsWith("fastconv calibrate: "));
  for (int i = 0; i < kWorkRateCount; ++i) CHECK(work_rate(m.rates, i) > 0);
  CHECK_THAT(describe_machine_model(), Catch::StartsWith("calibrated for"));
  forget_wisdom();
}

TEST_CASE("machine model: where permutes share an FMA port, stride-2 depthwise stays packed", "[machine_model]") {
  forget_wisdom();
  const Isa isa = best_isa();
  CHECK(default_machine_model(isa).permutes_share_fma_port == cpu_is_intel());
  PlanOptions o;
  o.threads = 2;
  auto pick = [&](bool permutes_share, const char* problem) {
    MachineModel m = default_machine_model(isa);
    m.permutes_share_fma_port = permutes_share;
    m.calibration = "a test";
    set_machine_model(m);
    return Plan::create(parse_problem(problem), o).implementation();
  };
  // The in-place stencil exists only for AVX-512; elsewhere both choices are the packed stencil.
  const std::string in_place = isa == Isa::Avx512 ? "direct_depthwise_in_place_3x3_" : "direct_depthwise_3x3_";
  CHECK_THAT(pick(false, "n1c144h56w56k144r3s3_st2_p1_g144"), Catch::StartsWith(in_place + "s2"));
  CHECK_THAT(pick(true, "n1c144h56w56k144r3s3_st2_p1_g144"), Catch::StartsWith("direct_depthwise_3x3_s2"));
  // Stride 1 permutes nothing: in place either way.
  CHECK_THAT(pick(true, "n1c144h56w56k144r3s3_p1_g144"), Catch::StartsWith(in_place + "s1"));
  forget_wisdom();
}
