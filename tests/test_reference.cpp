// The oracle itself, on cases worked by hand.
#include <catch2/catch.hpp>

#include <vector>

#include "direct/reference.hpp"
#include "fastconv/fastconv.hpp"

using namespace fastconv;

namespace {

ConvProblem single(int64_t h, int64_t w, int64_t r, int64_t s) {
  ConvProblem p;
  p.in_channels = 1, p.in_height = h, p.in_width = w, p.out_channels = 1, p.kernel_height = r, p.kernel_width = s;
  return p;
}

}  // namespace

TEST_CASE("Sobel-X on the 5x5 image 1..25", "[reference]") {
  // Pixel (i, j) holds 5i + j + 1: every 3x3 window rises by 1 per column, so the Sobel-X response
  // is (1 + 2 + 1) * (right column - left column) = 4 * 2 = 8 at all nine outputs.
  std::vector<float> x(25);
  for (int i = 0; i < 25; ++i) x[i] = float(i + 1);
  const std::vector<float> sobel_x = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
  const ConvProblem p = single(5, 5, 3, 3);
  std::vector<double> y(9);
  detail::reference_conv2d(p, x.data(), sobel_x.data(), nullptr, y.data());
  // Worked for [0,0]: -1*1 + 1*3 - 2*6 + 2*8 - 1*11 + 1*13 = -1 + 3 - 12 + 16 - 11 + 13 = 8.
  for (double v : y) CHECK(v == 8.0);
  // Through the library too.
  std::vector<float> yf(9, -1.0f);
  conv2d(p, x.data(), sobel_x.data(), nullptr, yf.data());
  for (float v : yf) CHECK(v == 8.0f);
}

TEST_CASE("the 6x6 half-dark image shows its vertical edge", "[reference]") {
  // Left half bright (10), right half dark (0); the vertical-edge filter [1 0 -1] on each row.
  // Output column j sees input columns j..j+2: column 0 sees 10,10,10 -> 0; column 1 sees
  // 10,10,0 -> 3*(10 - 0) = 30; column 2 sees 10,0,0 -> 30; column 3 sees 0,0,0 -> 0.
  std::vector<float> x(36);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) x[i * 6 + j] = j < 3 ? 10.0f : 0.0f;
  const std::vector<float> edge = {1, 0, -1, 1, 0, -1, 1, 0, -1};
  const ConvProblem p = single(6, 6, 3, 3);
  std::vector<double> y(16);
  detail::reference_conv2d(p, x.data(), edge.data(), nullptr, y.data());
  for (int i = 0; i < 4; ++i) {
    CHECK(y[i * 4 + 0] == 0.0);
    CHECK(y[i * 4 + 1] == 30.0);
    CHECK(y[i * 4 + 2] == 30.0);
    CHECK(y[i * 4 + 3] == 0.0);
  }
}

TEST_CASE("reference: padding, stride, dilation, groups and bias by hand", "[reference]") {
  // 1 channel 3x3 input 1..9, 2x2 kernel of ones, pad 1, stride 2: windows at rows/cols -1 and 1.
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> ones = {1, 1, 1, 1};
  ConvProblem p = single(3, 3, 2, 2);
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1, p.stride_h = p.stride_w = 2;
  REQUIRE(p.out_height() == 2);
  std::vector<double> y(4);
  const float bias = 0.5f;
  detail::reference_conv2d(p, x.data(), ones.data(), &bias, y.data());
  // (-1,-1): just 1. (-1,1): 2+3. (1,-1): 4+7. (1,1): 5+6+8+9.
  CHECK(y == std::vector<double>{1.5, 5.5, 11.5, 28.5});

  // Dilation 2: a 2x2 kernel samples the corners of a 3x3 window.
  ConvProblem d = single(3, 3, 2, 2);
  d.dilation_h = d.dilation_w = 2;
  std::vector<double> yd(1), yd_abs(1);
  std::vector<float> w = {1, -1, 2, -2};
  detail::reference_conv2d(d, x.data(), w.data(), nullptr, yd.data(), yd_abs.data());
  CHECK(yd[0] == 1 * 1 - 1 * 3 + 2 * 7 - 2 * 9);
  CHECK(yd_abs[0] == 1 + 3 + 14 + 18);

  // Groups: two channels, two groups, each output sees only its own channel.
  ConvProblem g = single(1, 1, 1, 1);
  g.in_channels = g.out_channels = g.groups = 2;
  std::vector<float> xg = {3, 5}, wg = {2, 7};
  std::vector<double> yg(2);
  detail::reference_conv2d(g, xg.data(), wg.data(), nullptr, yg.data());
  CHECK(yg == std::vector<double>{6, 35});
}
