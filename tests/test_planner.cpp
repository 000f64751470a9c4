// The planner: what it may pick, how the budget steers it, Measure mode and wisdom.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include "conv_tester.hpp"
#include "npy.hpp"
#include "planner/planner.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;

namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/fastconv_planner_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace

TEST_CASE("planner: the pick applies and fits the budget, for every budget", "[planner]") {
  const std::size_t budgets[] = {0, 4 << 10, 64 << 10, 1 << 20, PlanOptions::kDefaultWorkspaceLimit};
  int index = 0;
  for (const ConvProblem& p : testing::foundation_sweep()) {
    if (index++ % 3) continue;  // a third of the sweep, every budget
    for (std::size_t budget : budgets) {
      PlanOptions o;
      o.workspace_limit = budget;
      INFO(to_string(p) << " budget " << budget);
      const Plan plan = Plan::create(p, o);
      CHECK(plan.workspace_bytes() <= budget);
      bool listed = false;
      for (const Candidate& c : find_algorithms(p, o))
        if (c.applicable && c.implementation == plan.implementation()) {
          listed = true;
          CHECK(c.workspace_bytes <= budget);
        }
      CHECK(listed);
    }
  }
  // And the pick under a small budget computes the right thing.
  ConvTester().input(2, 16, 20, 20).kernel(24, 3, 3).pad(1).workspace_limit(8 << 10).check(
      Plan::create(ConvTester().input(2, 16, 20, 20).kernel(24, 3, 3).pad(1).get_problem(),
                   [] { PlanOptions o; o.workspace_limit = 8 << 10; return o; }())
          .algorithm());
}

TEST_CASE("planner: a budget below the pick's workspace changes the choice or its blocking", "[planner]") {
  for (const char* name : {"n1c64h56w56k64r3s3_p1", "n1c16h64w64k16r9s9_p4", "n1c256h14w14k256r1s1"}) {
    const ConvProblem p = parse_problem(name);
    const Plan roomy = Plan::create(p);
    if (roomy.workspace_bytes() == 0) continue;
    PlanOptions tight;
    tight.workspace_limit = roomy.workspace_bytes() - 1;
    const Plan constrained = Plan::create(p, tight);
    INFO(name << ": " << roomy.implementation() << " " << roomy.workspace_bytes() << " -> "
              << constrained.implementation() << " " << constrained.workspace_bytes());
    CHECK(constrained.workspace_bytes() < roomy.workspace_bytes());
  }
}

TEST_CASE("planner: Measure times the candidates and picks the fastest measured", "[planner]") {
  forget_wisdom();
  const ConvProblem p = parse_problem("n1c32h28w28k32r3s3_p1");
  PlanOptions m;
  m.mode = PlanMode::Measure;
  const uint64_t before = detail::measurements_performed();
  const auto cands = find_algorithms(p, m);
  CHECK(detail::measurements_performed() == before + 1);
  // Every applicable candidate is timed, except those whose estimate is over 8x the best estimate
  // (measure.cpp): they keep their estimate. The estimates of the same Measure-mode candidates:
  const detail::Geometry g(p);
  const detail::Ranking estimated = detail::rank_candidates(g, detail::make_context(m), m, false);
  const double best_estimate = estimated.ranked.front().estimate_ms;
  for (const auto& e : estimated.ranked) {
    bool measured = false;
    for (const Candidate& mc : cands)
      if (mc.implementation == e.impl->name()) measured = mc.measured;
    INFO(e.impl->name() << " estimated " << e.estimate_ms << " ms, best estimate " << best_estimate);
    CHECK(measured == (e.estimate_ms <= 8 * best_estimate));
  }
  CHECK(cands.front().measured);
  // Plan::create after find_algorithms in Measure mode reuses that measurement (it is wisdom).
  const Plan plan = Plan::create(p, m);
  CHECK(plan.implementation() == cands.front().implementation);
  CHECK(detail::measurements_performed() == before + 1);
  forget_wisdom();
}

TEST_CASE("planner: with wisdom loaded, Measure does no timing", "[planner][wisdom]") {
  forget_wisdom();
  const ConvProblem p = parse_problem("n2c8h19w17k12r3s3_p1");
  PlanOptions m;
  m.mode = PlanMode::Measure;
  m.threads = 1;
  const std::string chosen = Plan::create(p, m).implementation();
  const std::string path = temp_path("wisdom");
  save_wisdom(path);
  forget_wisdom();
  load_wisdom(path);
  const uint64_t before = detail::measurements_performed();
  const Plan again = Plan::create(p, m);
  CHECK(detail::measurements_performed() == before);
  CHECK(again.implementation() == chosen);
  // Other thread counts are other keys: they measure.
  m.threads = 2;
  Plan::create(p, m);
  CHECK(detail::measurements_performed() == before + 1);

  // FASTCONV_WISDOM loads the file when a process first plans in Measure mode.
  const std::string cmd = "FASTCONV_WISDOM=" + path + " FASTCONV_VERBOSE=1 " + std::string(FASTCONV_CLI) +
                          " plan " + to_string(p) + " --mode measure --threads 1 >/dev/null 2>" + path + ".err";
  const int status = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(status) == 0);
  std::ifstream err(path + ".err");
  const std::string log((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK_THAT(log, Catch::Contains("loaded wisdom") && Catch::Contains("from wisdom"));
  std::remove(path.c_str());
  std::remove((path + ".err").c_str());
  forget_wisdom();
}

TEST_CASE("planner: FASTCONV_VERBOSE prints plans, executes and declined candidates", "[planner]") {
  // `fastconv run` plans and executes once: the log must hold one line of each kind.
  const std::string x = temp_path("verbose_x.npy"), w = temp_path("verbose_w.npy"), y = temp_path("verbose_y.npy");
  const std::string err = temp_path("verbose.err");
  const std::vector<float> xs(3 * 9 * 9, 0.5f), ws(4 * 3 * 3 * 3, 0.25f);
  tools::write_npy(x, {1, 3, 9, 9}, xs.data());
  tools::write_npy(w, {4, 3, 3, 3}, ws.data());
  const std::string cmd = "FASTCONV_VERBOSE=2 " + std::string(FASTCONV_CLI) + " run --input " + x + " --weight " + w +
                          " --stride 2 --threads 1 --output " + y + " >/dev/null 2>" + err;
  CHECK(WEXITSTATUS(std::system(cmd.c_str())) == 0);
  std::ifstream in(err);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(log);
  CHECK_THAT(log, Catch::Contains("fastconv: plan n1c3h9w9k4r3s3_st2 threads=1"));
  CHECK_THAT(log, Catch::Contains("fastconv: execute n1c3h9w9k4r3s3_st2 "));
  CHECK_THAT(log, Catch::Contains("GFLOP/s"));
  // Winograd needs stride 1: declined, with the reason.
  CHECK_THAT(log, Catch::Contains("fastconv: declined winograd") && Catch::Contains("stride"));
  for (const auto& f : {x, w, y, err}) std::remove(f.c_str());
}

TEST_CASE("planner: Measure on a huge problem estimates instead of allocating it", "[planner]") {
  forget_wisdom();
  ConvProblem p = parse_problem("n64c256h224w224k256r3s3_p1");  // 3.3 GB of input alone
  PlanOptions m;
  m.mode = PlanMode::Measure;
  const uint64_t before = detail::measurements_performed();
  const Plan plan = Plan::create(p, m);
  CHECK(detail::measurements_performed() == before);
  CHECK_THAT(plan.describe(), Catch::Contains("not timed"));
  CHECK(wisdom_size() == 0);  // an estimate is not wisdom
}

TEST_CASE("planner: Estimate ranks direct ahead of im2col's strided gather on the strided stems", "[planner]") {
  // Measured on AVX-512 (Xeon, Zen 5) and AVX2: direct 1.15-1.4x faster than im2col on these, which
  // the model ranked the other way while it priced the gather like a flat copy.
  for (const char* name : {"n1c3h227w227k96r11s11_st4", "n1c128h56w56k128r3s3_st2_p1"})
    for (detail::Isa isa : {detail::Isa::Avx2, detail::Isa::Avx512}) {
      INFO(name << " isa " << int(isa));
      detail::PlanContext ctx;
      ctx.isa = isa, ctx.threads = 2, ctx.machine = detail::default_machine_model(isa);
      const detail::Ranking r = detail::rank_candidates(detail::Geometry(parse_problem(name)), ctx, PlanOptions(), false);
      double direct = -1, im2col = -1;
      for (const auto& c : r.ranked) {
        if (c.impl->algorithm() == Algorithm::Direct && direct < 0) direct = c.estimate_ms;
        // im2col's gather (the implicit GEMM, which gathers nothing, may rank ahead of both)
        if (c.impl->name().rfind("im2col_gemm_", 0) == 0 && im2col < 0) im2col = c.estimate_ms;
      }
      REQUIRE(direct > 0);
      REQUIRE(im2col > 0);
      CHECK(direct < im2col);
    }
}

TEST_CASE("planner: weights that change every execute rank by packing plus executing", "[planner]") {
  // 512 channels on 4x4 images at batch 8: Winograd's product is the fastest, but its transformed
  // filters (16 per 3x3) cost more to pack than the product saves when every execute packs them.
  const ConvProblem p = ConvTester().input(8, 512, 4, 4).kernel(512, 3, 3).pad(1).get_problem();
  for (Direction d : {Direction::Forward, Direction::BackwardData}) {
    PlanOptions o;
    o.threads = 2, o.direction = d;
    PlanOptions changing = o;
    changing.weights_change = true;
    auto estimate = [&](const PlanOptions& opt, const std::string& name) {
      for (const Candidate& c : find_algorithms(p, opt))
        if (c.implementation == name) return c.time_ms;
      FAIL("no candidate " << name);
      return 0.0;
    };
    const std::string wino = Plan::create(p, o).implementation();
    INFO(to_string(d) << ": " << wino);
    CHECK(wino.find("winograd") != std::string::npos);
    // Every candidate pays for its packing; the planner's pick changes away from Winograd.
    CHECK(estimate(changing, wino) > estimate(o, wino));
    const Plan plan = Plan::create(p, changing);
    CHECK(plan.implementation().find("winograd") == std::string::npos);
    CHECK_THAT(plan.describe(), Catch::Contains("packed for every execute"));
  }
}
