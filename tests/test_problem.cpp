// Shapes, sizes, names and validation of ConvProblem, worked from the formulas by hand.
#include <catch2/catch.hpp>

#include <climits>

#include "fastconv/fastconv.hpp"

using namespace fastconv;

namespace {

ConvProblem square(int64_t c, int64_t hw, int64_t k, int64_t r, int64_t stride, int64_t pad, int64_t groups = 1) {
  ConvProblem p;
  p.in_channels = c, p.in_height = p.in_width = hw, p.out_channels = k;
  p.kernel_height = p.kernel_width = r, p.stride_h = p.stride_w = stride;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = pad, p.groups = groups;
  return p;
}

// The message of the Error that validate() throws, or "" when it does not.
std::string validation_message(const ConvProblem& p) {
  try {
    p.validate();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("output sizes of the classic worked examples", "[problem]") {
  // P = floor((H + 2 pad - k) / stride) + 1
  CHECK(output_shape(square(3, 224, 64, 7, 2, 3)).height == 112);  // (224 + 6 - 7) / 2 + 1
  CHECK(output_shape(square(3, 224, 64, 3, 1, 1)).height == 224);  // (224 + 2 - 3) / 1 + 1
  CHECK(output_shape(square(3, 224, 64, 3, 2, 0)).height == 111);  // (224 - 3) / 2 + 1
  const OutputShape o = output_shape(square(3, 224, 64, 7, 2, 3));
  CHECK(o.batch == 1);
  CHECK(o.channels == 64);
  CHECK(o.width == 112);
  ConvProblem d = square(1, 10, 1, 3, 1, 0);
  d.dilation_h = d.dilation_w = 2;  // extent 5: 10 - 5 + 1
  CHECK(d.out_height() == 6);
  ConvProblem asym = square(1, 10, 1, 3, 3, 0);
  asym.pad_top = 2, asym.pad_bottom = 0;  // (10 + 2 - 3) / 3 + 1
  CHECK(asym.out_height() == 4);
}

TEST_CASE("parameter counts", "[problem]") {
  CHECK(parameter_count(square(3, 32, 64, 3, 1, 1), true) == 1792);          // 64*3*9 + 64
  CHECK(parameter_count(square(128, 32, 256, 3, 1, 1), true) == 295168);     // 256*128*9 + 256
  CHECK(parameter_count(square(64, 32, 128, 3, 1, 1), false) == 73728);      // 128*64*9
  // Depthwise-separable 64 -> 128: depthwise 3x3 (64*1*9) plus pointwise 1x1 (128*64).
  CHECK(parameter_count(square(64, 32, 64, 3, 1, 1, 64), false) + parameter_count(square(64, 32, 128, 1, 1, 0), false) ==
        8768);
  CHECK(parameter_count(square(256, 32, 256, 3, 1, 1, 1), true) == 590080);  // 256*256*9 + 256
  CHECK(parameter_count(square(256, 32, 256, 3, 1, 1, 4), true) == 147712);  // 256*64*9 + 256
  CHECK(parameter_count(square(3, 32, 64, 3, 1, 1), false) == 1728);
}

TEST_CASE("flop count is 2*N*K*P*Q*C/g*R*S", "[problem]") {
  ConvProblem p = square(64, 56, 64, 3, 1, 1);
  p.batch = 2;
  CHECK(flop_count(p) == 2.0 * 2 * 64 * 56 * 56 * 64 * 9);
  CHECK(flop_count(square(32, 112, 32, 3, 1, 1, 32)) == 2.0 * 32 * 112 * 112 * 9);
}

TEST_CASE("receptive field of a stack", "[problem]") {
  CHECK(receptive_field({}) == 1);
  CHECK(receptive_field({{3, 1, 1}, {3, 1, 1}, {3, 1, 1}}) == 7);
  // RF_L = RF_(L-1) + (k_L - 1) * prod(stride_i, i < L): 7, 7 + 2*2 = 11, 11 + 2*(2*2) = 19.
  CHECK(receptive_field({{7, 2, 1}}) == 7);
  CHECK(receptive_field({{7, 2, 1}, {3, 2, 1}}) == 11);
  CHECK(receptive_field({{7, 2, 1}, {3, 2, 1}, {3, 1, 1}}) == 19);
  // A dilated layer counts its dilated extent: 3x3 dilation 2 spans 5.
  CHECK(receptive_field({{3, 1, 2}}) == 5);
  CHECK(receptive_field({{3, 1, 1}, {3, 1, 2}, {3, 1, 4}}) == 15);
  CHECK_THROWS_WITH(receptive_field({{3, 0, 1}}), Catch::Contains("layers[0].stride=0"));
  CHECK_THROWS_AS(receptive_field({{INT64_MAX / 2, 4, 1}, {INT64_MAX / 2, 4, 1}}), Error);
}

TEST_CASE("padding modes follow PyTorch", "[problem]") {
  ConvProblem p = square(3, 10, 4, 4, 1, 0);  // even kernel: total 3, top 1, bottom 2
  apply_padding(p, PaddingMode::Same);
  CHECK(p.pad_top == 1);
  CHECK(p.pad_bottom == 2);
  CHECK(p.pad_left == 1);
  CHECK(p.pad_right == 2);
  CHECK(p.out_height() == 10);
  ConvProblem d = square(3, 10, 4, 3, 1, 0);
  d.dilation_h = 3;  // total 3*(3-1) = 6
  d.kernel_width = 5;
  apply_padding(d, PaddingMode::Same);
  CHECK(d.pad_top == 3);
  CHECK(d.pad_bottom == 3);
  CHECK(d.pad_left == 2);
  CHECK(d.pad_right == 2);
  CHECK(d.out_height() == 10);
  CHECK(d.out_width() == 10);
  apply_padding(d, PaddingMode::Valid);
  CHECK(d.pad_top + d.pad_bottom + d.pad_left + d.pad_right == 0);
  ConvProblem s = square(3, 10, 4, 3, 2, 0);
  CHECK_THROWS_WITH(apply_padding(s, PaddingMode::Same), Catch::Contains("stride_h=2"));
}

TEST_CASE("canonical names round-trip", "[problem]") {
  ConvProblem p = square(64, 56, 64, 3, 1, 1);
  CHECK(to_string(p) == "n1c64h56w56k64r3s3_p1");
  CHECK(parse_problem("n1c64h56w56k64r3s3_p1") == p);
  ConvProblem q = square(12, 30, 24, 5, 2, 0, 3);
  q.stride_w = 1, q.pad_top = 1, q.pad_bottom = 2, q.pad_left = 0, q.pad_right = 3;
  q.dilation_h = 2, q.batch = 4, q.in_width = 31, q.kernel_width = 3;
  CHECK(to_string(q) == "n4c12h30w31k24r5s3_st2x1_p1x2x0x3_d2x1_g3");
  CHECK(parse_problem(to_string(q)) == q);
  ConvProblem r = square(8, 9, 8, 3, 1, 0);
  r.pad_top = r.pad_bottom = 2;
  CHECK(to_string(r) == "n1c8h9w9k8r3s3_p2x0");
  CHECK(parse_problem(to_string(r)) == r);
  CHECK(std::hash<ConvProblem>()(q) == std::hash<ConvProblem>()(parse_problem(to_string(q))));
  CHECK(std::hash<ConvProblem>()(q) != std::hash<ConvProblem>()(p));
  for (const char* bad : {"", "n1", "n1c64h56w56k64r3s3_", "n1c64h56w56k64r3s3_p1x2x3", "n-1c64h56w56k64r3s3",
                          "n1c64h56w56k64r3s3 ", "n1c64h56w56k64r3s3_g", "n99999999999999999999c1h1w1k1r1s1"})
    CHECK_THROWS_AS(parse_problem(bad), Error);
}

TEST_CASE("every bad field is named with its value", "[problem][validation]") {
  const ConvProblem good = square(8, 16, 8, 3, 1, 1, 2);
  REQUIRE(validation_message(good).empty());
  struct Case {
    int64_t ConvProblem::*field;
    int64_t value;
    const char* expect;
  };
  const Case cases[] = {
      {&ConvProblem::batch, 0, "batch=0"},
      {&ConvProblem::batch, -3, "batch=-3"},
      {&ConvProblem::in_channels, 0, "in_channels=0"},
      {&ConvProblem::in_height, 0, "in_height=0"},
      {&ConvProblem::in_width, -1, "in_width=-1"},
      {&ConvProblem::out_channels, 0, "out_channels=0"},
      {&ConvProblem::kernel_height, 0, "kernel_height=0"},
      {&ConvProblem::kernel_width, -2, "kernel_width=-2"},
      {&ConvProblem::stride_h, 0, "stride_h=0"},
      {&ConvProblem::stride_w, -1, "stride_w=-1"},
      {&ConvProblem::dilation_h, 0, "dilation_h=0"},
      {&ConvProblem::dilation_w, -4, "dilation_w=-4"},
      {&ConvProblem::pad_top, -1, "pad_top=-1"},
      {&ConvProblem::pad_bottom, -1, "pad_bottom=-1"},
      {&ConvProblem::pad_left, -2, "pad_left=-2"},
      {&ConvProblem::pad_right, -1, "pad_right=-1"},
      {&ConvProblem::groups, 0, "groups=0"},
      {&ConvProblem::groups, 3, "groups=3: must divide in_channels=8"},
      {&ConvProblem::out_channels, 7, "groups=2: must divide out_channels=7"},
  };
  for (const Case& c : cases) {
    ConvProblem p = good;
    p.*(c.field) = c.value;
    const std::string m = validation_message(p);
    INFO("set to " << c.value << ": " << m);
    CHECK_THAT(m, Catch::Contains(c.expect));
  }
}

TEST_CASE("an empty output is refused", "[problem][validation]") {
  ConvProblem p = square(1, 4, 1, 5, 1, 0);
  CHECK_THAT(validation_message(p), Catch::Contains("kernel_height=5") && Catch::Contains("empty"));
  p.pad_top = p.pad_bottom = 1;  // 6 rows now hold the 5-row kernel; the width still does not
  CHECK_THAT(validation_message(p), Catch::Contains("kernel_width=5"));
  ConvProblem d = square(1, 6, 1, 3, 1, 0);
  d.dilation_w = 3;  // extent 7 > 6
  CHECK_THAT(validation_message(d), Catch::Contains("kernel_width=3") && Catch::Contains("dilation_w=3"));
}

TEST_CASE("sizes whose products overflow are refused", "[problem][validation]") {
  ConvProblem p = square(1, 16, 1, 1, 1, 0);
  p.in_height = int64_t(1) << 40, p.in_width = int64_t(1) << 30;
  CHECK_THAT(validation_message(p), Catch::Contains("overflows"));
  ConvProblem q = square(1, 16, 1, 1, 1, 0);
  q.in_channels = q.out_channels = int64_t(1) << 32;
  q.in_height = q.in_width = 1 << 16;
  CHECK_THAT(validation_message(q), Catch::Contains("overflows"));
  ConvProblem r = square(1, 16, 1, 3, 1, 0);
  r.in_height = INT64_MAX - 4, r.pad_top = 8;
  CHECK_THAT(validation_message(r), Catch::Contains("overflows"));
  ConvProblem s = square(1, 16, 1, 3, 1, 0);
  s.dilation_h = 2147483647, s.kernel_height = int64_t(1) << 33;  // (2^31 - 1) * (2^33 - 1) + 1 overflows
  CHECK_THAT(validation_message(s), Catch::Contains("overflows"));
  // Steps past 2^31 - 1 are refused before any arithmetic on them (the fuzzer found overflows in
  // the packing's rounding of positions when they were allowed).
  for (int64_t ConvProblem::*field : {&ConvProblem::stride_h, &ConvProblem::stride_w, &ConvProblem::dilation_h,
                                      &ConvProblem::dilation_w, &ConvProblem::pad_top, &ConvProblem::pad_bottom,
                                      &ConvProblem::pad_left, &ConvProblem::pad_right}) {
    ConvProblem u = square(1, 16, 1, 3, 1, 0);
    u.*field = int64_t(1) << 31;
    CHECK_THAT(validation_message(u), Catch::Contains("at most 2147483647"));
    u.*field = INT64_MAX;
    CHECK_THAT(validation_message(u), Catch::Contains("at most 2147483647"));
  }
  ConvProblem t = square(4, 16, 4, 3, 1, 1);  // the bytes of the output exceed size_t
  t.batch = int64_t(1) << 40, t.out_channels = int64_t(1) << 20;
  CHECK_FALSE(validation_message(t).empty());
}
