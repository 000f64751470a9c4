// fastconv plan: the planner's ranking of every candidate for one layer, like cuDNN's find.
#include <cstdio>

#include "args.hpp"
#include "commands.hpp"
#include "fastconv/fastconv.hpp"
#include "format.hpp"
#include "suite.hpp"

namespace fastconv::tools {
namespace {

const char* kHelp =
    "usage: fastconv plan <shape> [--mode estimate|measure] [--workspace-limit BYTES] [--threads N]\n"
    "                     [--algo auto|direct|im2col|winograd|fft] [--padding-mode MODE]\n"
    "                     [--direction forward|backward-data|backward-weights]\n"
    "                     [--activation NAME[:ARGS]] [--residual]\n"
    "\n"
    "<shape> is a canonical problem name (n1c64h56w56k64r3s3_p1, with optional _st<stride>,\n"
    "_p<pad>, _d<dilation>, _g<groups>, _reflect|_replicate|_circular), the name of a shape of the built-in suite\n"
    "(resnet50_l1_3x3_64), or the 14 numbers of a suite row: N,C,H,W,K,R,S,sh,sw,ph,pw,dh,dw,g.\n"
    "Prints every candidate, ranked, with its estimated (e) or measured (m) time and workspace,\n"
    "the candidates that declined and why, and the choice.\n";

}  // namespace

int plan_command(const std::vector<std::string>& argv) {
  Args args(argv, {"mode", "workspace-limit", "threads", "algo", "direction", "padding-mode", "activation"},
            {"help", "residual"});
  if (args.flag("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one <shape>");
  SuiteShape shape = parse_shape_argument(args.positional()[0]);
  if (auto m = args.value("padding-mode")) shape.problem.padding_mode = parse_pad_mode(*m), shape.problem.validate();
  PlanOptions options;
  if (auto m = args.value("mode")) options.mode = parse_plan_mode(*m);
  if (auto w = args.value("workspace-limit"))
    options.workspace_limit = std::size_t(parse_count(*w, "workspace-limit", 0, INT64_MAX));
  if (auto t = args.value("threads")) options.threads = int(parse_count(*t, "threads", 0, 4096));
  if (auto a = args.value("algo")) options.algorithm = parse_algorithm(*a);
  if (auto d = args.value("direction")) options.direction = parse_direction(*d);
  if (auto a = args.value("activation")) options.post_ops = parse_post_ops(*a);
  options.post_ops.residual = args.flag("residual");

  const ConvProblem& p = shape.problem;
  const double gflop = flop_count(p) / 1e9;
  const auto candidates = find_algorithms(p, options);
  std::printf("problem %s%s, direction %s, post-ops %s, padding mode %s, %.3f GFLOP, mode %s, workspace limit %s, isa %s\n\n",
              to_string(p).c_str(), shape.name != to_string(p) ? (" (" + shape.name + ")").c_str() : "",
              to_string(options.direction).c_str(), to_string(options.post_ops).c_str(),
              to_string(p.padding_mode).c_str(), gflop,
              to_string(options.mode).c_str(), human_bytes(options.workspace_limit).c_str(),
              instruction_set().c_str());
  std::printf("%s%s%s%s%s%s%s\n", cell("rank", 5).c_str(), cell("implementation", 34).c_str(),
              cell("algorithm", 10).c_str(), cell("time ms", 12, true).c_str(), cell("GFLOP/s", 9, true).c_str(),
              cell("workspace", 11, true).c_str(), "details");
  int rank = 0;
  for (const Candidate& c : candidates) {
    if (!c.applicable) continue;
    std::printf("%s%s%s%s%s%s%s\n", cell(std::to_string(++rank), 5).c_str(), cell(c.implementation, 34).c_str(),
                cell(to_string(c.algorithm), 10).c_str(),
                cell(fmt("%.3f", c.time_ms) + (c.measured ? " m" : " e"), 12, true).c_str(),
                cell(fmt("%.1f", gflop / (c.time_ms * 1e-3)), 9, true).c_str(),
                cell(human_bytes(c.workspace_bytes), 11, true).c_str(), c.reason.c_str());
  }
  for (const Candidate& c : candidates) {
    if (c.applicable) continue;
    std::printf("%s%s%s%s\n", cell("-", 5).c_str(), cell(c.implementation, 34).c_str(),
                cell(to_string(c.algorithm), 10).c_str(), ("declined: " + c.reason).c_str());
  }
  std::printf("\n");
  const Plan plan = Plan::create(p, options);
  std::printf("choice: %s\n%s\n", plan.implementation().c_str(), plan.describe().c_str());
  return 0;
}

}  // namespace fastconv::tools
