// The fastconv tool end to end: run on .npy files, its errors, plan and bench.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "conv_tester.hpp"
#include "direct/reference.hpp"
#include "bench_report.hpp"
#include "npy.hpp"

using namespace fastconv;
using fastconv::testing::Data;
using fastconv::testing::make_data;
using fastconv::tools::read_npy;
using fastconv::tools::write_npy;

namespace {

struct Result {
  int code;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fastconv_cli_XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string operator/(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

Result cli(const TempDir& tmp, const std::string& args) {
  const std::string out = tmp / "stdout.txt", err = tmp / "stderr.txt";
  const int status = std::system((std::string(FASTCONV_CLI) + " " + args + " >" + out + " 2>" + err).c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Writes x, w and b for the problem; returns the reference output.
std::vector<double> write_case(const TempDir& tmp, const ConvProblem& p, bool bias) {
  const auto x = make_data(p.input_elements(), Data::Random, 7);
  const auto w = make_data(p.weight_elements(), Data::Random, 8);
  const auto b = make_data(std::size_t(p.out_channels), Data::Random, 9);
  write_npy(tmp / "x.npy", {p.batch, p.in_channels, p.in_height, p.in_width}, x.data());
  write_npy(tmp / "w.npy", {p.out_channels, p.in_channels / p.groups, p.kernel_height, p.kernel_width}, w.data());
  write_npy(tmp / "b.npy", {p.out_channels}, b.data());
  std::vector<double> ref(p.output_elements());
  detail::reference_conv2d(p, x.data(), w.data(), bias ? b.data() : nullptr, ref.data());
  return ref;
}

void require_close(const std::vector<float>& y, const std::vector<double>& ref) {
  REQUIRE(y.size() == ref.size());
  double scale = 1e-30, err = 0;
  for (std::size_t i = 0; i < y.size(); ++i) scale = std::max(scale, std::fabs(ref[i])), err = std::max(err, std::fabs(y[i] - ref[i]));
  REQUIRE(err / scale < 1e-4);
}

}  // namespace

TEST_CASE("cli: run convolves .npy files", "[cli]") {
  TempDir tmp;
  struct Case {
    ConvProblem p;
    std::string flags;
    bool bias;
  };
  using fastconv::testing::ConvTester;
  const Case cases[] = {
      {ConvTester().input(2, 3, 12, 10).kernel(4, 3, 3).pad(1).get_problem(), "--padding 1", true},
      {ConvTester().input(1, 4, 15, 16).kernel(6, 3, 5).stride(2, 1).pad(1, 2).get_problem(),
       "--stride 2,1 --padding 1,2", false},
      {ConvTester().input(1, 6, 9, 9).kernel(6, 3, 3).dilation(2).pad(2).groups(3).get_problem(),
       "--dilation 2 --padding same --groups 3 --algo direct", true},
      {ConvTester().input(1, 2, 8, 7).kernel(3, 4, 4).pad(1, 2, 1, 2).get_problem(), "--padding same --threads 1", true},
      {ConvTester().input(1, 2, 8, 7).kernel(3, 2, 3).pad(0, 1, 2, 0).get_problem(), "--padding 0,1,2,0", true},
      {ConvTester().input(1, 3, 9, 9).kernel(2, 3, 3).stride(2).get_problem(), "--stride 2 --padding valid --repeat 3", false},
  };
  for (const Case& c : cases) {
    INFO(to_string(c.p) << " " << c.flags);
    const auto ref = write_case(tmp, c.p, c.bias);
    std::remove((tmp / "y.npy").c_str());
    const Result r = cli(tmp, "run --input " + tmp / "x.npy" + " --weight " + tmp / "w.npy" +
                                  (c.bias ? " --bias " + tmp / "b.npy" : "") + " --output " + tmp / "y.npy " + c.flags);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("algorithm:") && Catch::Contains("time:") && Catch::Contains(" ms"));
    const auto y = read_npy(tmp / "y.npy");
    CHECK(y.shape == std::vector<int64_t>{c.p.batch, c.p.out_channels, c.p.out_height(), c.p.out_width()});
    require_close(y.data, ref);
  }
}

TEST_CASE("cli: errors are one line on stderr, a non-zero exit and no output file", "[cli]") {
  TempDir tmp;
  const ConvProblem p = fastconv::testing::ConvTester().input(1, 4, 8, 8).kernel(2, 3, 3).get_problem();
  write_case(tmp, p, true);
  std::vector<float> junk(4 * 8 * 8, 1.0f);
  write_npy(tmp / "x3d.npy", {4, 8, 8}, junk.data());
  write_npy(tmp / "bias_bad.npy", {3}, junk.data());
  write_npy(tmp / "w_grouped.npy", {2, 1, 3, 3}, junk.data());
  {  // a float64 file, otherwise well formed
    std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::ofstream(tmp / "f64.npy", std::ios::binary)
        << std::string("\x93NUMPY\x01\x00", 8) << char(header.size()) << '\0' << header << std::string(8, '\0');
  }
  const std::string io = " --output " + tmp / "y.npy";
  const std::string xw = " --input " + tmp / "x.npy" + " --weight " + tmp / "w.npy";
  struct Case {
    std::string args;
    const char* expect;
  };
  const Case cases[] = {
      {"run --input " + tmp / "missing.npy" + " --weight " + tmp / "w.npy" + io, "No such file"},
      {"run --input " + tmp / "f64.npy" + " --weight " + tmp / "w.npy" + io, "'<f8'"},
      {"run --input " + tmp / "x3d.npy" + " --weight " + tmp / "w.npy" + io, "4 dimensions"},
      {"run" + xw + " --bias " + tmp / "bias_bad.npy" + io, "expected (2,)"},
      {"run --input " + tmp / "x.npy" + " --weight " + tmp / "w_grouped.npy" + io, "--groups 4"},
      {"run" + xw + io + " --stride 2 --padding same", "stride_h=2"},
      {"run" + xw + io + " --stride 0", "--stride"},
      {"run" + xw + io + " --padding 1,2,3", "1, 2 or 4 values"},
      {"run" + xw + io + " --groups 3", "groups=3"},
      {"run" + xw + io + " --algo gemm", "'gemm'"},
      {"run" + xw + io + " --dilation 9", "empty"},
      {"run" + xw + io + " --bogus 1", "unknown option --bogus"},
      {"run" + xw, "--output is required"},
      {"frobnicate", "unknown command"},
      {"plan not_a_shape", "not canonical"},
      {"bench --suite " + tmp / "missing.csv", "cannot open"},
  };
  for (const Case& c : cases) {
    std::remove((tmp / "y.npy").c_str());
    const Result r = cli(tmp, c.args);
    INFO(c.args << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.code != 0);
    CHECK_THAT(r.err, Catch::Contains(c.expect));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK_FALSE(exists(tmp / "y.npy"));
    CHECK_FALSE(exists(tmp / "y.npy.tmp"));
  }
}

TEST_CASE("cli: --help everywhere", "[cli]") {
  TempDir tmp;
  for (const char* cmd : {"--help", "run --help", "bench --help", "plan --help", "calibrate --help"}) {
    const Result r = cli(tmp, cmd);
    INFO(cmd);
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("usage: fastconv"));
  }
}

TEST_CASE("cli: plan ranks the candidates", "[cli]") {
  TempDir tmp;
  const Result r = cli(tmp, "plan resnet50_l1_3x3_64 --threads 1");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("n1c64h56w56k64r3s3_p1") && Catch::Contains("choice:") && Catch::Contains("rank"));
  const Result m = cli(tmp, "plan 1,3,9,9,4,3,3,1,1,1,1,1,1,1 --mode measure --workspace-limit 1000000");
  INFO(m.err);
  REQUIRE(m.code == 0);
  CHECK_THAT(m.out, Catch::Contains(" m ") && Catch::Contains("n1c3h9w9k4r3s3_p1"));
}

TEST_CASE("cli: calibrate keeps the machine model with the wisdom, and plan shows it", "[cli][calibrate]") {
  TempDir tmp;
  const Result before = cli(tmp, "calibrate --show");
  REQUIRE(before.code == 0);
  CHECK_THAT(before.out, Catch::StartsWith("machine model: defaults for"));
  const Result c = cli(tmp, "calibrate --seconds 1 --threads 2 --wisdom " + tmp / "w.wisdom");
  INFO(c.err);
  REQUIRE(c.code == 0);
  CHECK_THAT(c.out, Catch::Contains("installed") && Catch::Contains("saved to"));
  CHECK_THAT(slurp(tmp / "w.wisdom"), Catch::Contains("\nmachine "));
  const std::string with = "FASTCONV_WISDOM=" + tmp / "w.wisdom" + " ";
  const Result show = cli(tmp, "calibrate --show");  // FASTCONV_WISDOM is read by the library
  CHECK_THAT(show.out, Catch::Contains("defaults for"));
  const int status = std::system((with + FASTCONV_CLI + " plan resnet50_l1_3x3_64 >" + tmp / "plan.txt").c_str());
  REQUIRE(status == 0);
  CHECK_THAT(slurp(tmp / "plan.txt"), Catch::Contains("machine model calibrated for"));
  for (const char* bad : {"calibrate --seconds 0", "calibrate --seconds x", "calibrate --threads -1", "calibrate extra"}) {
    INFO(bad);
    CHECK(cli(tmp, bad).code == 2);
  }
}

TEST_CASE("cli: bench writes a table, JSON and SVG", "[cli]") {
  TempDir tmp;
  std::ofstream(tmp / "suite.csv") << "# tiny\nname,N,C,H,W,K,R,S,stride_h,stride_w,pad_h,pad_w,dil_h,dil_w,groups\n"
                                      "tiny_3x3,1,4,12,12,8,3,3,1,1,1,1,1,1,1\n"
                                      "tiny_dw_s2,1,8,13,13,8,3,3,2,2,1,1,1,1,8\n";
  const Result r = cli(tmp, "bench --suite " + tmp / "suite.csv" + " --runs 2 --json " + tmp / "b.json" + " --plot " +
                                tmp / "b.svg");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("tiny_3x3") && Catch::Contains("tiny_dw_s2") && Catch::Contains("GFLOP/s"));
  CHECK_THAT(r.err, Catch::Contains("[1/2]") && Catch::Contains("[2/2]"));
  // Well formed: parsed by Python's own JSON and XML parsers.
  const Result check = {std::system(("python3 -c \"import json,sys,xml.etree.ElementTree as E; d=json.load(open('" +
                                     tmp / "b.json" + "')); assert len(d['shapes'])==2, d; E.parse('" + tmp / "b.svg" +
                                     "')\"").c_str()),
                        "", ""};
  CHECK(check.code == 0);
}

TEST_CASE("cli: bench judges the pick by its implementation's own runner", "[cli]") {
  auto entry = [](const char* label, const char* algorithm, double ms, const char* note = "") {
    tools::BenchEntry e;
    e.label = label, e.algorithm = algorithm, e.note = note, e.median_ms = ms;
    return e;
  };
  tools::BenchShape s;
  s.entries = {entry("auto", "auto", 1.25, "winograd_x"), entry("winograd_x", "winograd", 1.0),
               entry("direct_y", "direct", 0.9), entry("onednn", "onednn", 0.5)};
  CHECK(s.pick_over_best() == Approx(1.0 / 0.9));  // the same code timed twice is not the choice
  s.entries[1].timed_once = true;                   // the twin not timed: the 'auto' runner's time
  CHECK(s.pick_over_best() == Approx(1.25 / 0.9));
  s.entries[0].note = "fft_z";                      // no runner of its own
  CHECK(s.pick_over_best() == Approx(1.25 / 0.9));
  s.entries.erase(s.entries.begin());
  CHECK(s.pick_over_best() == 0);
}

TEST_CASE("cli: run with post-ops and a padding mode", "[cli][post_ops]") {
  TempDir tmp;
  using fastconv::testing::ConvTester;
  ConvProblem p = ConvTester().input(1, 3, 9, 11).kernel(4, 3, 3).pad(2).get_problem();
  p.padding_mode = PadMode::Reflect;
  auto ref = write_case(tmp, p, true);
  const OutputShape o = output_shape(p);
  const auto r = make_data(p.output_elements(), Data::Random, 10);
  write_npy(tmp / "r.npy", {o.batch, o.channels, o.height, o.width}, r.data());
  const std::vector<float> r_bad(static_cast<size_t>(o.batch * o.channels * o.height * (o.width + 1)));
  write_npy(tmp / "r_bad.npy", {o.batch, o.channels, o.height, o.width + 1}, r_bad.data());
  PostOps po = parse_post_ops("leaky_relu:0.25");
  po.residual = true, po.residual_scale = 0.5f;
  detail::reference_post_ops(po, r.data(), ref.data(), nullptr, ref.size());
  const std::string base = "run --input " + tmp / "x.npy" + " --weight " + tmp / "w.npy" + " --bias " + tmp / "b.npy" +
                           " --output " + tmp / "y.npy --padding 2";
  for (const char* algo : {"direct", "im2col", "winograd", "fft"}) {
    std::remove((tmp / "y.npy").c_str());
    const Result res = cli(tmp, base + " --padding-mode reflect --algo " + algo + " --activation leaky_relu:0.25 --residual " + tmp / "r.npy" +
                                    " --residual-scale 0.5");
    INFO(algo << ": " << res.out << res.err);
    REQUIRE(res.code == 0);
    CHECK_THAT(res.out, Catch::Contains("leaky_relu:0.25+residual*0.5") && Catch::Contains("_reflect"));
    require_close(read_npy(tmp / "y.npy").data, ref);
  }
  // Errors: nothing written.
  const struct {
    std::string flags;
    const char* expect;
  } bad[] = {
      {" --residual " + tmp / "r_bad.npy", "expected the output's shape"},
      {" --activation swish", "swish"},
      {" --activation clamp:6,0", "above"},
      {" --residual-scale 2", "needs --residual"},
      {" --padding-mode mirror", "mirror"},
  };
  for (const auto& b : bad) {
    std::remove((tmp / "y.npy").c_str());
    const Result res = cli(tmp, base + b.flags);
    INFO(b.flags << ": " << res.err);
    CHECK(res.code != 0);
    CHECK_THAT(res.err, Catch::Contains(b.expect));
    CHECK(!exists(tmp / "y.npy"));
  }
  std::remove((tmp / "y.npy").c_str());
  const Result big = cli(tmp, "run --input " + tmp / "x.npy" + " --weight " + tmp / "w.npy" + " --output " + tmp / "y.npy" +
                                  " --padding 9 --padding-mode reflect");
  CHECK(big.code != 0);
  CHECK_THAT(big.err, Catch::Contains("pad_top=9") && Catch::Contains("reflect"));
  CHECK(!exists(tmp / "y.npy"));
  // plan shows both.
  const Result plan = cli(tmp, "plan n1c8h14w14k8r3s3_p1_circular --activation relu --residual");
  INFO(plan.out << plan.err);
  CHECK(plan.code == 0);
  CHECK_THAT(plan.out, Catch::Contains("post-ops relu+residual") && Catch::Contains("padding mode circular") &&
                           Catch::Contains("padded copy"));
}
