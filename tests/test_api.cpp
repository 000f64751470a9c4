// The public API's contract: plans, packed weights, errors that write nothing, thread safety,
// find_algorithms, wisdom.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "conv_tester.hpp"
#include "fastconv/fastconv.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;
using fastconv::testing::Data;
using fastconv::testing::make_data;

namespace {

ConvProblem layer() { return ConvTester().input(2, 6, 11, 13).kernel(8, 3, 3).pad(1).get_problem(); }

std::string temp_path(const std::string& name) {
  return (std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/fastconv_test_" +
          std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST_CASE("algorithm and mode names", "[api]") {
  for (Algorithm a : {Algorithm::Auto, Algorithm::Direct, Algorithm::Im2col, Algorithm::Winograd, Algorithm::FFT})
    CHECK(parse_algorithm(to_string(a)) == a);
  CHECK(to_string(Algorithm::FFT) == "fft");
  CHECK(to_string(Algorithm::Im2col) == "im2col");
  CHECK_THROWS_WITH(parse_algorithm("gemm"), Catch::Contains("'gemm'"));
  CHECK(parse_plan_mode("measure") == PlanMode::Measure);
  CHECK_THROWS_AS(parse_plan_mode("fast"), Error);
  CHECK((instruction_set() == "avx512" || instruction_set() == "avx2" || instruction_set() == "sse2"));
}

TEST_CASE("a plan describes itself and executes", "[api]") {
  const ConvProblem p = layer();
  const Plan plan = Plan::create(p);
  CHECK(plan.problem() == p);
  CHECK(plan.threads() >= 1);
  const std::string d = plan.describe();
  CHECK_THAT(d, Catch::Contains(to_string(p)) && Catch::Contains(to_string(plan.algorithm())) &&
                    Catch::Contains("workspace") && Catch::Contains("why"));
  ConvTester().problem(p).check(plan.algorithm());
}

TEST_CASE("the three execute overloads agree", "[api]") {
  const ConvProblem p = layer();
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
  const Plan plan = Plan::create(p);
  std::vector<float> y1(p.output_elements()), y2(y1.size()), y3(y1.size()), y4(y1.size());
  const PackedWeights packed = plan.pack_weights(w.data(), b.data());
  CHECK(packed.size_bytes() > 0);
  plan.execute(x.data(), packed, y1.data());
  plan.execute(x.data(), w.data(), b.data(), y2.data());
  // Caller workspace, deliberately misaligned by 4 bytes.
  std::vector<char> ws(plan.workspace_bytes() + 64 + 4);
  plan.execute(x.data(), packed, y3.data(), ws.data() + 4, ws.size() - 4);
  conv2d(p, x.data(), w.data(), b.data(), y4.data());
  CHECK(y1 == y2);
  CHECK(y1 == y3);
  CHECK(y1 == y4);
}

TEST_CASE("errors write nothing to the output", "[api][validation]") {
  const ConvProblem p = layer();
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  const Plan plan = Plan::create(p);
  const Plan other = Plan::create(p);
  std::vector<float> y(p.output_elements(), 42.0f);
  auto untouched = [&] {
    for (float v : y)
      if (v != 42.0f) return false;
    return true;
  };
  CHECK_THROWS_WITH(plan.execute(nullptr, plan.pack_weights(w.data(), nullptr), y.data()), Catch::Contains("input=null"));
  CHECK_THROWS_WITH(plan.execute(x.data(), plan.pack_weights(w.data(), nullptr), nullptr), Catch::Contains("output=null"));
  CHECK_THROWS_WITH(plan.pack_weights(nullptr, nullptr), Catch::Contains("weight=null"));
  CHECK_THROWS_WITH(plan.execute(x.data(), other.pack_weights(w.data(), nullptr), y.data()),
                    Catch::Contains("another plan"));
  CHECK_THROWS_WITH(plan.execute(x.data(), PackedWeights(), y.data()), Catch::Contains("empty"));
  CHECK_THROWS_WITH(conv2d(p, x.data(), nullptr, nullptr, y.data()), Catch::Contains("weight=null"));
  CHECK_THROWS_WITH(conv2d(p, nullptr, w.data(), nullptr, y.data()), Catch::Contains("input=null"));
  ConvProblem bad = p;
  bad.stride_h = 0;
  CHECK_THROWS_WITH(conv2d(bad, x.data(), w.data(), nullptr, y.data()), Catch::Contains("stride_h=0"));
  CHECK_THROWS_WITH(Plan::create(bad), Catch::Contains("stride_h=0"));
  if (plan.workspace_bytes() > 0) {
    std::vector<char> small(plan.workspace_bytes() / 2);
    CHECK_THROWS_WITH(plan.execute(x.data(), plan.pack_weights(w.data(), nullptr), y.data(), small.data(), small.size()),
                      Catch::Contains("workspace_size"));
  }
  CHECK(untouched());
}

TEST_CASE("bad options are refused", "[api][validation]") {
  const ConvProblem p = layer();
  PlanOptions o;
  o.threads = -1;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("threads=-1"));
  o.threads = 100000;
  CHECK_THROWS_WITH(Plan::create(p, o), Catch::Contains("threads=100000"));
  PlanOptions a;
  a.algorithm = static_cast<Algorithm>(17);
  CHECK_THROWS_WITH(Plan::create(p, a), Catch::Contains("algorithm=17"));
  PlanOptions i;
  i.implementation = "no_such_kernel";
  CHECK_THROWS_WITH(Plan::create(p, i), Catch::Contains("not requested"));
  CHECK_THROWS_WITH(Plan::create(p, i), Catch::Contains("implementation=no_such_kernel names no implementation"));
}

TEST_CASE("find_algorithms ranks every algorithm, applicable first", "[api][planner]") {
  const auto cands = find_algorithms(layer());
  REQUIRE(!cands.empty());
  CHECK(cands.front().applicable);
  bool seen_inapplicable = false;
  double last = 0;
  for (const Candidate& c : cands) {
    if (!c.applicable) {
      seen_inapplicable = true;
      CHECK(!c.reason.empty());
      continue;
    }
    CHECK_FALSE(seen_inapplicable);  // applicable ones come first
    CHECK(c.time_ms >= last);        // fastest first
    CHECK(c.time_ms > 0);
    CHECK_FALSE(c.implementation.empty());
    last = c.time_ms;
  }
  for (Algorithm a : {Algorithm::Direct, Algorithm::Im2col, Algorithm::Winograd, Algorithm::FFT}) {
    bool listed = false;
    for (const Candidate& c : cands) listed |= c.algorithm == a;
    INFO(to_string(a));
    CHECK(listed);
  }
  // The plan picks the first candidate.
  CHECK(Plan::create(layer()).implementation() == cands.front().implementation);
}

TEST_CASE("execute from many threads at once gives the serial result", "[api][threads]") {
  const ConvProblem p = layer();
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  const Plan plan = Plan::create(p);
  const PackedWeights packed = plan.pack_weights(w.data(), nullptr);
  std::vector<float> serial(p.output_elements());
  plan.execute(x.data(), packed, serial.data());
  std::vector<std::vector<float>> outs(6, std::vector<float>(serial.size()));
  std::vector<std::vector<float>> outs_conv2d = outs;
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < outs.size(); ++t)
    pool.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) plan.execute(x.data(), packed, outs[t].data());
      conv2d(p, x.data(), w.data(), nullptr, outs_conv2d[t].data());
    });
  for (auto& th : pool) th.join();
  for (std::size_t t = 0; t < outs.size(); ++t) {
    CHECK(outs[t] == serial);
    CHECK(outs_conv2d[t] == serial);
  }
}

TEST_CASE("wisdom round trip, and bad files refused", "[api][wisdom]") {
  forget_wisdom();
  const ConvProblem p = layer();
  PlanOptions m;
  m.mode = PlanMode::Measure;
  const Plan measured = Plan::create(p, m);
  REQUIRE(wisdom_size() == 1);
  const std::string path = temp_path("wisdom.txt");
  save_wisdom(path);
  forget_wisdom();
  REQUIRE(wisdom_size() == 0);
  load_wisdom(path);
  CHECK(wisdom_size() == 1);
  const Plan again = Plan::create(p, m);
  CHECK(again.implementation() == measured.implementation());
  CHECK_THAT(again.describe(), Catch::Contains("from wisdom"));

  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_THAT(text, Catch::Contains("\nfftw ") && Catch::Contains("(fftw-3.3"));  // FFTW's wisdom rides along
  auto refused = [&](const std::string& content, const char* why) {
    const std::string bad = temp_path("bad_wisdom.txt");
    std::ofstream(bad) << content;
    const std::size_t before = wisdom_size();
    CHECK_THROWS_WITH(load_wisdom(bad), Catch::Contains(why));
    CHECK(wisdom_size() == before);
    std::remove(bad.c_str());
  };
  refused("", "not a fastconv wisdom file");  // empty
  refused("hello\n", "not a fastconv wisdom file");
  refused(text.substr(0, text.size() / 2), "");  // truncated
  std::string flipped = text;
  flipped[text.find("entry ") + 7] ^= 1;
  refused(flipped, "checksum mismatch");
  std::string stale = text;
  stale.replace(stale.find("library ") + 8, std::string(kVersion).size(), "0.0.0-old");
  refused(stale, "stale");
  std::string foreign = text;
  foreign.replace(foreign.find("cpu ") + 4, 1, "#");
  refused(foreign, "foreign");
  refused(text + "entry x y\n", "after the checksum");
  std::string bad_fftw = text;
  bad_fftw.replace(bad_fftw.find("(fftw-3.3"), 9, "(nonsense");
  const std::string body = bad_fftw.substr(0, bad_fftw.find("checksum "));
  // A section FFTW rejects is refused even with a valid checksum.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) h = (h ^ c) * 1099511628211ull;
  char sum[17];
  std::snprintf(sum, sizeof sum, "%016llx", static_cast<unsigned long long>(h));
  refused(body + "checksum " + sum + "\n", "FFTW refused");
  CHECK_THROWS_WITH(load_wisdom(temp_path("missing")), Catch::Contains("cannot open"));
  std::remove(path.c_str());
  forget_wisdom();
}
