// Winograd F(2x2,3x3) and F(4x4,3x3): each transform against double precision on every instruction
// set the host runs, the convolution against the reference (sweep, partial tiles, padding, groups,
// batch, channels past every width), exactness, thread counts, budgets, declines, non-finite inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "conv_tester.hpp"
#include "core/aligned_buffer.hpp"
#include "core/checked.hpp"
#include "core/cpu.hpp"
#include "direct/reference.hpp"
#include "winograd/winograd_conv.hpp"
#include "winograd/winograd_transforms.hpp"

using namespace fastconv;
using fastconv::testing::ConvTester;
using fastconv::testing::Data;
using fastconv::testing::make_data;
using fastconv::testing::named_minimum;
using fastconv::testing::plan_error;

namespace {

// The transform matrices in double precision, written out independently of the kernels.
const double kBT2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
const double kAT2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
const double kBT4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                           {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
const double kAT4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

double bt(int m, int i, int j) { return m == 2 ? kBT2[i][j] : kBT4[i][j]; }
double at(int m, int i, int j) { return m == 2 ? kAT2[i][j] : kAT4[i][j]; }

std::vector<detail::Isa> runnable_isas() {
  std::vector<detail::Isa> out;
  for (auto isa : {detail::Isa::Sse2, detail::Isa::Avx2, detail::Isa::Avx512})
    if (int(isa) <= int(detail::best_isa())) out.push_back(isa);
  return out;
}

std::vector<float> random_floats(std::size_t n, uint32_t seed) { return make_data(n, Data::Random, seed); }

// One input-transform call of the kernels over a tile range, with V checked against B^T d B.
struct InputCase {
  int64_t C, H, W, pad_t, pad_l, P, Q, t0, tiles;
  int nr_vectors;  // NR in vectors
};

// Runs the input transform; returns V (xi-major, then panels, then channels, then lanes).
std::vector<float> run_input(detail::Isa isa, int m, const InputCase& k, const std::vector<float>& x, int64_t& nr,
                             int64_t& columns, int64_t& xs) {
  const auto& tr = detail::winograd_transforms(isa);
  nr = int64_t(tr.lanes) * k.nr_vectors;
  columns = detail::round_up(k.tiles, nr);
  xs = detail::round_up(columns * k.C, 16) + 16;  // a stride past the minimum
  const int a = m + 2;
  detail::AlignedBuffer<float> v(std::size_t(a * a * xs));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::nanf("");
  detail::WinogradInputArgs args;
  args.x = x.data(), args.channels = k.C, args.H = k.H, args.W = k.W, args.pad_top = k.pad_t, args.pad_left = k.pad_l;
  args.tiles_w = detail::ceil_div(k.Q, m), args.t0 = k.t0, args.tiles = k.tiles, args.columns = columns, args.nr = nr;
  args.v = v.data(), args.xi_stride = xs;
  (m == 2 ? tr.input_f2x2 : tr.input_f4x4)(args);
  return std::vector<float>(v.data(), v.data() + v.size());
}

float v_at(const std::vector<float>& v, int64_t xs, int64_t nr, int64_t C, int64_t xi, int64_t j, int64_t c) {
  return v[std::size_t(xi * xs + (j / nr) * C * nr + c * nr + j % nr)];
}

}  // namespace

TEST_CASE("winograd: the filter transform satisfies the F(m,3) identity in double precision", "[winograd][transform]") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> dist(-1, 1);
  for (int m : {2, 4}) {
    const int a = m + 2;
    for (int trial = 0; trial < 20; ++trial) {
      float g[9];
      double d[6][6], u[36], s[6][6];
      for (float& e : g) e = float(dist(rng));
      for (auto& row : d)
        for (double& e : row) e = dist(rng);
      detail::winograd_filter_transform(m, g, u);
      // V = B^T d B, then y = A^T (U .* V) A must be the 3x3 correlation of d with g.
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j) {
          double acc = 0;
          for (int r = 0; r < a; ++r)
            for (int c = 0; c < a; ++c) acc += bt(m, i, r) * d[r][c] * bt(m, j, c);
          s[i][j] = u[i * a + j] * acc;
        }
      for (int p = 0; p < m; ++p)
        for (int q = 0; q < m; ++q) {
          double y = 0, ref = 0;
          for (int i = 0; i < a; ++i)
            for (int j = 0; j < a; ++j) y += at(m, p, i) * s[i][j] * at(m, q, j);
          for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 3; ++c) ref += double(g[r * 3 + c]) * d[p + r][q + c];
          CHECK(std::fabs(y - ref) <= 1e-12);
        }
    }
  }
}

TEST_CASE("winograd: the packed filter transform gives each filter's transform bitwise, any row count", "[isa][winograd][transform]") {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> dist(-3, 3);
  constexpr int L = detail::kWinogradFilterLanes;
  for (detail::Isa isa : runnable_isas())
    for (int m : {2, 4}) {
      const detail::WinogradTransforms& tr = detail::winograd_transforms(isa);
      const detail::WinogradFilterFn filter = m == 2 ? tr.filter_f2x2 : tr.filter_f4x4;
      const int a2 = (m + 2) * (m + 2);
      for (int rows = 1; rows <= L; ++rows) {
        const int64_t stride = 9 * 5;  // filters of one input channel, 5 channels apart
        std::vector<float> w(std::size_t(stride * rows));
        for (float& e : w) e = dist(rng);
        w[4] = 1e30f, w[w.size() - 2] = -0.0f;  // large and signed-zero entries keep their bits too
        std::vector<double> packed(std::size_t(36 * L));
        double one[36];
        filter(w.data(), stride, rows, packed.data());
        for (int r = 0; r < rows; ++r) {
          detail::winograd_filter_transform(m, w.data() + r * stride, one);
          for (int xi = 0; xi < a2; ++xi) {
            INFO(tr.isa << " m " << m << " rows " << rows << " filter " << r << " value " << xi);
            CHECK(std::memcmp(&packed[std::size_t(xi * L + r)], &one[xi], sizeof(double)) == 0);
          }
        }
      }
    }
}

TEST_CASE("winograd: input transform against double precision, padding and partial ranges", "[isa][winograd][transform]") {
  const InputCase cases[] = {
      {3, 13, 75, 1, 1, 13, 75, 0, 0, 2},   // wide rows: whole-vector loads and edges (tiles set below)
      {2, 9, 40, 0, 0, 7, 38, 5, 23, 2},    // no padding, range starting mid-row, odd count
      {1, 3, 3, 2, 2, 5, 5, 0, 0, 1},       // padding past the kernel, tiles past the image
      {4, 11, 64, 0, 2, 11, 66, 3, 41, 4},  // asymmetric padding, NR of 4 vectors
      {17, 6, 37, 1, 0, 6, 36, 0, 0, 2},    // channels past every width
  };
  for (detail::Isa isa : runnable_isas())
    for (int m : {2, 4})
      for (InputCase k : cases) {
        const int a = m + 2;
        const int64_t tiles_w = detail::ceil_div(k.Q, m), all = detail::ceil_div(k.P, m) * tiles_w;
        if (k.tiles == 0) k.tiles = all - k.t0;
        k.tiles = std::min(k.tiles, all - k.t0);
        INFO("isa " << detail::isa_name(isa) << ", F(" << m << "x" << m << "), C " << k.C << ", H " << k.H << ", W " << k.W
                    << ", tiles [" << k.t0 << ", " << k.t0 + k.tiles << ")");
        const auto x = random_floats(std::size_t(k.C * k.H * k.W), 11);
        int64_t nr, columns, xs;
        const auto v = run_input(isa, m, k, x, nr, columns, xs);
        double worst = 0;
        for (int64_t j = 0; j < columns; ++j)
          for (int64_t c = 0; c < k.C; ++c) {
            const int64_t t = k.t0 + j;
            const int64_t r0 = (t / tiles_w) * m - k.pad_t, c0 = (t % tiles_w) * m - k.pad_l;
            auto in = [&](int r, int i) {
              const int64_t y = r0 + r, xx = c0 + i;
              return (j < k.tiles && y >= 0 && y < k.H && xx >= 0 && xx < k.W) ? double(x[std::size_t((c * k.H + y) * k.W + xx)]) : 0.0;
            };
            for (int xr = 0; xr < a; ++xr)
              for (int xc = 0; xc < a; ++xc) {
                double ref = 0, mag = 0;
                for (int r = 0; r < a; ++r)
                  for (int i = 0; i < a; ++i) {
                    ref += bt(m, xr, r) * in(r, i) * bt(m, xc, i);
                    mag += std::fabs(bt(m, xr, r) * in(r, i) * bt(m, xc, i));
                  }
                const float got = v_at(v, xs, nr, k.C, xr * a + xc, j, c);
                if (j >= k.tiles) {
                  REQUIRE(got == 0.0f);  // padding columns are zeros, never garbage
                } else {
                  const double err = std::fabs(double(got) - ref) / std::max(mag, 1e-30);
                  worst = std::max(worst, err);
                  if (!(err <= 4e-7)) FAIL("tile " << t << " channel " << c << " xi " << xr * a + xc << ": got " << got << " want " << ref);
                }
              }
          }
        INFO("worst relative error " << worst);
        CHECK(worst <= 4e-7);
      }
}

TEST_CASE("winograd: a tile's transform has the same bits in every lane and path", "[isa][winograd][transform]") {
  // The same tiles started at every lane offset go through the whole-vector and the gathering
  // paths in different lanes: tile groups depend on the thread count, so their bits must not.
  for (detail::Isa isa : runnable_isas())
    for (int m : {2, 4}) {
      const InputCase base = {3, 10, 90, 1, 1, 10, 90, 0, 64, 2};
      const auto x = random_floats(std::size_t(base.C * base.H * base.W), 5);
      int64_t nr, columns, xs;
      const auto v0 = run_input(isa, m, base, x, nr, columns, xs);
      const int a = m + 2, lanes = detail::winograd_transforms(isa).lanes;
      for (int shift = 1; shift <= lanes + 1; ++shift) {
        InputCase k = base;
        k.t0 = shift, k.tiles = base.tiles - shift;
        int64_t nr1, columns1, xs1;
        const auto v1 = run_input(isa, m, k, x, nr1, columns1, xs1);
        for (int64_t j = 0; j < k.tiles; ++j)
          for (int64_t c = 0; c < k.C; ++c)
            for (int xi = 0; xi < a * a; ++xi) {
              const float want = v_at(v0, xs, nr, base.C, xi, j + shift, c), got = v_at(v1, xs1, nr1, k.C, xi, j, c);
              if (std::memcmp(&want, &got, sizeof(float)) != 0)
                FAIL(detail::isa_name(isa) << " F(" << m << ") shift " << shift << " tile " << j + shift << " xi " << xi);
            }
      }
      SUCCEED();
    }
}

TEST_CASE("winograd: output transform against double precision, partial tiles and bias", "[isa][winograd][transform]") {
  struct Case {
    int64_t channels, P, Q, t0, tiles;
  };
  const Case cases[] = {{3, 17, 75, 0, -1}, {2, 9, 9, 2, 7}, {1, 1, 1, 0, -1}, {5, 12, 70, 11, 29}, {2, 6, 66, 0, -1}};
  for (detail::Isa isa : runnable_isas())
    for (int m : {2, 4})
      for (Case k : cases) {
        const auto& tr = detail::winograd_transforms(isa);
        const int a = m + 2;
        const int64_t tiles_w = detail::ceil_div(k.Q, m), all = detail::ceil_div(k.P, m) * tiles_w;
        if (k.tiles < 0) k.tiles = all - k.t0;
        k.tiles = std::min(k.tiles, all - k.t0);
        const int64_t ldm = detail::round_up(k.tiles, tr.lanes) + tr.lanes, xs = detail::round_up(k.channels * ldm, 16);
        INFO("isa " << detail::isa_name(isa) << ", F(" << m << "x" << m << "), P " << k.P << ", Q " << k.Q << ", tiles ["
                    << k.t0 << ", " << k.t0 + k.tiles << ")");
        detail::AlignedBuffer<float> mb(std::size_t(a * a * xs));
        const auto r = random_floats(mb.size(), 21);
        std::copy(r.begin(), r.end(), mb.data());
        const auto bias = random_floats(std::size_t(k.channels), 22);
        const float sentinel = 777.0f;
        std::vector<float> y(std::size_t(k.channels * k.P * k.Q), sentinel);
        detail::WinogradOutputArgs args;
        args.m = mb.data(), args.ldm = ldm, args.xi_stride = xs, args.channels = k.channels, args.bias = bias.data();
        args.y = y.data(), args.P = k.P, args.Q = k.Q, args.tiles_w = tiles_w, args.t0 = k.t0, args.tiles = k.tiles;
        (m == 2 ? tr.output_f2x2 : tr.output_f4x4)(args);
        for (int64_t ch = 0; ch < k.channels; ++ch)
          for (int64_t p = 0; p < k.P; ++p)
            for (int64_t q = 0; q < k.Q; ++q) {
              const int64_t t = (p / m) * tiles_w + q / m, j = t - k.t0;
              const float got = y[std::size_t((ch * k.P + p) * k.Q + q)];
              if (j < 0 || j >= k.tiles) {
                REQUIRE(got == sentinel);  // outside the range: untouched
                continue;
              }
              double ref = bias[std::size_t(ch)], mag = std::fabs(ref);
              for (int i = 0; i < a; ++i)
                for (int jj = 0; jj < a; ++jj) {
                  const double e = at(m, int(p % m), i) * double(mb[std::size_t((i * a + jj) * xs + ch * ldm + j)]) * at(m, int(q % m), jj);
                  ref += e, mag += std::fabs(e);
                }
              if (!(std::fabs(double(got) - ref) <= 4e-7 * mag))
                FAIL("channel " << ch << " (" << p << ", " << q << "): got " << got << " want " << ref);
            }
        SUCCEED();
      }
}

namespace {

// The 3x3 stride-1 cases the sweep has, and targeted ones for Winograd.
std::vector<ConvProblem> winograd_cases() {
  std::vector<ConvProblem> out;
  for (const ConvProblem& p : testing::foundation_sweep())
    if (p.kernel_height == 3 && p.kernel_width == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 &&
        p.dilation_w == 1)
      out.push_back(p);
  using T = ConvTester;
  auto add = [&](const T& t) { out.push_back(t.get_problem()); };
  for (int64_t h : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13})  // partial tiles of both sizes, odd and even
    add(T().input(1, 3, h, h % 2 ? 2 * h + 2 : 2 * h + 3).kernel(4, 3, 3).pad(1));
  for (int64_t w : {4, 5, 6, 7, 10, 11, 18, 19})
    add(T().input(1, 2, 11 - w % 3, w).kernel(3, 3, 3).pad(w % 2));
  for (int64_t p : {0, 1, 2}) add(T().input(2, 5, 11, 14).kernel(6, 3, 3).pad(p));
  add(T().input(1, 4, 10, 9).kernel(3, 3, 3).pad(0, 2, 1, 0));  // asymmetric
  add(T().input(1, 4, 9, 10).kernel(3, 3, 3).pad(2, 0, 0, 1));
  add(T().input(1, 2, 3, 3).kernel(2, 3, 3).pad(3, 1, 2, 4));   // padding past the kernel
  add(T().input(3, 6, 8, 8).kernel(6, 3, 3).pad(1).groups(3));  // groups with batch
  add(T().input(1, 16, 9, 9).kernel(16, 3, 3).pad(1).groups(16));
  add(T().input(1, 8, 30, 70).kernel(8, 3, 3).pad(1));  // wide rows: whole-vector transforms
  for (int64_t c : {1, 7, 8, 9, 15, 16, 17, 33})          // channels past every vector width
    add(T().input(1, c, 7, 9).kernel(5, 3, 3).pad(1));
  for (int64_t k : {5, 6, 7, 13, 16, 17, 31, 33, 65})  // output channels past MR, NR and a vector
    add(T().input(1, 6, 8, 7).kernel(k, 3, 3).pad(1));
  add(T().input(1, 300, 6, 5).kernel(7, 3, 3).pad(1));  // channels past KC (two depth blocks)
  add(T().input(1, 9, 5, 6).kernel(150, 3, 3).pad(1));  // output channels past MC
  add(T().input(1, 20, 40, 41).kernel(19, 3, 3).pad(1));  // tiles past one group
  // Batches of small images: tile groups span images (whole and partial tiles, groups).
  add(T().input(9, 7, 5, 6).kernel(10, 3, 3).pad(1, 0, 2, 1));
  add(T().input(40, 3, 3, 3).kernel(5, 3, 3).pad(1));
  add(T().input(6, 8, 7, 7).kernel(12, 3, 3).pad(1).groups(4));
  add(T().input(3, 17, 14, 13).kernel(33, 3, 3).pad(1));
  return out;
}

int check_cases(const std::string& variant) {
  int index = 0;
  for (const ConvProblem& p : winograd_cases()) {
    INFO("case " << index << ": " << to_string(p));
    ConvTester t;
    t.problem(p).implementation(variant).bias(index % 3 != 2).seed(uint32_t(500 + index));
    if (index % 4 == 0) t.compare_threads({1, 2, 3});
    const std::string impl = t.check(Algorithm::Winograd);
    CHECK(impl.rfind(variant, 0) == 0);
    ++index;
  }
  return index;
}

}  // namespace

TEST_CASE("winograd F(2x2,3x3) matches the reference (3x3 stride-1 sweep and targeted cases)", "[isa][winograd][sweep]") {
  CHECK(check_cases("winograd_f2x2") > 40);
}

TEST_CASE("winograd F(4x4,3x3) matches the reference (3x3 stride-1 sweep and targeted cases)", "[isa][winograd][sweep]") {
  CHECK(check_cases("winograd_f4x4") > 40);
}

TEST_CASE("winograd: the same bits on 1, 2 and 3 threads, whatever the blocking", "[isa][winograd][threads]") {
  // Small images split output channels across tasks, large ones split tiles: both change with
  // the thread count.
  for (const char* variant : {"winograd_f2x2", "winograd_f4x4"}) {
    ConvTester().input(1, 64, 7, 7).kernel(200, 3, 3).pad(1).implementation(variant).threads(1).compare_threads({2, 3}).check(Algorithm::Winograd);
    ConvTester().input(2, 24, 37, 29).kernel(20, 3, 3).pad(1).implementation(variant).threads(3).compare_threads({1, 2}).check(Algorithm::Winograd);
    ConvTester().input(1, 8, 5, 300).kernel(8, 3, 3).pad(0, 1, 2, 0).implementation(variant).threads(2).compare_threads({1, 3}).check(Algorithm::Winograd);
  }
}

TEST_CASE("winograd: layer-sized problems, and the accuracy of F(4x4,3x3) on random data", "[winograd][accuracy]") {
  // Normwise error max|y - ref| / max(conv(|x|,|w|) + |b|) on uniform [-1, 1] data.
  for (const ConvProblem& p : {ConvTester().input(1, 64, 56, 56).kernel(64, 3, 3).pad(1).get_problem(),
                               ConvTester().input(1, 256, 14, 14).kernel(256, 3, 3).pad(1).get_problem(),
                               ConvTester().input(1, 512, 7, 7).kernel(512, 3, 3).pad(1).get_problem()}) {
    const auto x = make_data(p.input_elements(), Data::Random, 1);
    const auto w = make_data(p.weight_elements(), Data::Random, 2);
    const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
    std::vector<double> ref(p.output_elements()), ref_abs(p.output_elements());
    detail::reference_conv2d(p, x.data(), w.data(), b.data(), ref.data(), ref_abs.data());
    for (const char* variant : {"winograd_f2x2", "winograd_f4x4"}) {
      PlanOptions o;
      o.algorithm = Algorithm::Winograd;
      o.implementation = variant;
      const Plan plan = Plan::create(p, o);
      std::vector<float> y(p.output_elements());
      plan.execute(x.data(), w.data(), b.data(), y.data());
      const auto d = testing::diff_report(p, y, ref, ref_abs);
      WARN(plan.implementation() << ": " << d.text);
      CHECK(d.max_error <= testing::tolerance_for(plan.implementation()));
    }
  }
}

TEST_CASE("winograd: every budget gives the same bits, and below the minimum it declines with it", "[isa][winograd][workspace]") {
  const ConvProblem p = ConvTester().input(2, 40, 21, 23).kernel(30, 3, 3).pad(1).get_problem();
  const auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  const auto b = make_data(std::size_t(p.out_channels), Data::Random, 3);
  for (const char* variant : {"winograd_f2x2", "winograd_f4x4"}) {
    PlanOptions o;
    o.algorithm = Algorithm::Winograd;
    o.implementation = variant;
    o.threads = 2;
    const Plan big = Plan::create(p, o);
    std::vector<float> want(p.output_elements());
    big.execute(x.data(), w.data(), b.data(), want.data());
    // The smallest budget: the one the refusal names.
    o.workspace_limit = 1000;
    const std::size_t minimum = named_minimum(plan_error(p, o), std::string(variant) + "_3x3: needs at least ");
    for (std::size_t limit : {minimum, minimum + 5000, std::size_t(300000), std::size_t(1) << 30}) {
      if (limit < minimum) continue;
      o.workspace_limit = limit;
      const Plan plan = Plan::create(p, o);
      INFO("limit " << limit << ": " << plan.describe());
      CHECK(plan.workspace_bytes() <= limit);
      std::vector<float> y(p.output_elements());
      std::vector<char> ws(plan.workspace_bytes() + 64);
      plan.execute(x.data(), plan.pack_weights(w.data(), b.data()), y.data(), ws.data(), ws.size());
      CHECK(y == want);
    }
    o.workspace_limit = minimum - 1;
    CHECK_THROWS_AS(Plan::create(p, o), Error);
  }
}

TEST_CASE("winograd declines what it cannot do, in words", "[winograd][validation]") {
  auto reason = [](const ConvProblem& p) {
    std::string r;
    for (const Candidate& c : find_algorithms(p))
      if (c.algorithm == Algorithm::Winograd && !c.applicable) r += c.reason + "|";
    return r;
  };
  using T = ConvTester;
  CHECK_THAT(reason(T().input(1, 4, 9, 9).kernel(4, 3, 3).stride(2).get_problem()), Catch::Contains("stride 2 (needs 1)"));
  CHECK_THAT(reason(T().input(1, 4, 9, 9).kernel(4, 3, 3).stride(1, 2).get_problem()), Catch::Contains("stride 1x2 (needs 1)"));
  CHECK_THAT(reason(T().input(1, 4, 9, 9).kernel(4, 5, 5).get_problem()), Catch::Contains("kernel 5x5 (needs 3x3)"));
  CHECK_THAT(reason(T().input(1, 4, 9, 9).kernel(4, 1, 3).get_problem()), Catch::Contains("kernel 1x3 (needs 3x3)"));
  for (const ConvProblem& p : {T().input(1, 4, 9, 9).kernel(4, 3, 3).stride(2).get_problem(),
                               T().input(1, 4, 9, 9).kernel(4, 1, 1).get_problem()})
    ConvTester().problem(p).check_if_applicable(Algorithm::Winograd);  // declines, and Plan::create throws
  PlanOptions o;
  o.algorithm = Algorithm::Winograd;
  CHECK_THROWS_WITH(Plan::create(T().input(1, 4, 9, 9).kernel(4, 3, 3).stride(2).get_problem(), o),
                    Catch::Contains("stride 2 (needs 1)"));
}

TEST_CASE("winograd: F(2x2,3x3) can be forced through PlanOptions::implementation", "[winograd][api]") {
  const ConvProblem p = ConvTester().input(1, 64, 28, 28).kernel(64, 3, 3).pad(1).get_problem();
  PlanOptions o;
  o.algorithm = Algorithm::Winograd;
  o.implementation = "winograd_f2x2";
  CHECK(Plan::create(p, o).implementation().rfind("winograd_f2x2_3x3_", 0) == 0);
  o.implementation = "winograd_f4x4";
  CHECK(Plan::create(p, o).implementation().rfind("winograd_f4x4_3x3_", 0) == 0);
  bool both[2] = {false, false};
  for (const Candidate& c : find_algorithms(p)) {
    both[0] |= c.applicable && c.implementation.rfind("winograd_f2x2", 0) == 0;
    both[1] |= c.applicable && c.implementation.rfind("winograd_f4x4", 0) == 0;
  }
  CHECK(both[0]);
  CHECK(both[1]);
}

TEST_CASE("winograd: where a NaN in the input reaches the output", "[isa][winograd][nonfinite]") {
  // One NaN at input (4, 4) of a 10x10 image, pad 1: the reference makes outputs rows and columns
  // 3..5 NaN (its receptive field). F(2x2,3x3) does exactly the same; F(4x4,3x3) spreads it
  // through tile row/column 1 (outputs 4..7), whose input patch holds the pixel at position 1.
  const ConvProblem p = ConvTester().input(1, 2, 10, 10).kernel(3, 3, 3).pad(1).get_problem();
  auto x = make_data(p.input_elements(), Data::Random, 1);
  const auto w = make_data(p.weight_elements(), Data::Random, 2);
  x[std::size_t(1 * 100 + 4 * 10 + 4)] = std::nanf("");
  for (const char* variant : {"winograd_f2x2", "winograd_f4x4"}) {
    PlanOptions o;
    o.algorithm = Algorithm::Winograd;
    o.implementation = variant;
    std::vector<float> y(p.output_elements());
    Plan::create(p, o).execute(x.data(), w.data(), nullptr, y.data());
    const int hi = std::string(variant) == "winograd_f2x2" ? 5 : 7;
    for (int k = 0; k < 3; ++k)
      for (int r = 0; r < 10; ++r)
        for (int c = 0; c < 10; ++c) {
          const bool expect_nan = r >= 3 && r <= hi && c >= 3 && c <= hi;
          INFO(variant << " output (" << k << ", " << r << ", " << c << ")");
          CHECK(std::isnan(y[std::size_t(k * 100 + r * 10 + c)]) == expect_nan);
        }
  }
}

TEST_CASE("winograd: dilated 3x3 through input phases", "[isa][winograd][dilation]") {
  using T = ConvTester;
  // Every residue pattern: dilations 2 and 3, unequal ones, paddings that do and do not divide the
  // dilation, outputs fewer than the dilation on an axis, groups and batch.
  const ConvProblem cases[] = {
      T().input(1, 6, 17, 19).kernel(5, 3, 3).pad(2).dilation(2).get_problem(),
      T().input(2, 8, 20, 13).kernel(12, 3, 3).pad(3).dilation(3).groups(2).get_problem(),
      T().input(1, 7, 15, 16).kernel(9, 3, 3).pad(1, 2, 0, 3).dilation(2, 3).get_problem(),
      T().input(1, 5, 6, 30).kernel(4, 3, 3).dilation(2, 1).pad(1).get_problem(),
      T().input(1, 3, 5, 6).kernel(2, 3, 3).dilation(2).get_problem(),        // one output row
      T().input(1, 16, 33, 33).kernel(16, 3, 3).pad(2).dilation(2).get_problem(),
      T().input(1, 4, 9, 9).kernel(4, 3, 3).pad(4).dilation(4).get_problem(),  // phases of padding only
  };
  for (const ConvProblem& p : cases)
    for (const char* variant : {"winograd_f2x2", "winograd_f4x4"}) {
      INFO(to_string(p) << " " << variant);
      const std::string impl = T().problem(p).implementation(variant).compare_threads({1, 3}).check(Algorithm::Winograd);
      CHECK_THAT(impl, Catch::StartsWith(std::string(variant) + "_3x3_dilated_"));
    }
  // Dilations 2-24 on each axis alone and both, with more residues than outputs (ASPP: dilation
  // 12 and 24 on 33x33 and 65x65 images), asymmetric padding, batch: the phases are batched as one
  // problem whose tile groups span phases and images.
  int index = 0;
  for (int64_t d = 2; d <= 24; d += d < 6 ? 1 : 3)
    for (int axes = 0; axes < 3; ++axes) {
      const int64_t dh = axes == 1 ? 1 : d, dw = axes == 0 ? 1 : d;
      // Sizes the kernel's span fits (2 * dil + 1 within the padded input), or a few rows past it.
      const int64_t h = 2 * dh + 1 + d % 7 + (axes == 2 ? d / 3 : 0), w = 2 * dw + 3 + d % 5;
      T t;
      t.input(1 + d % 3, 3 + d % 5, h, w).kernel(4 + d % 6, 3, 3).dilation(dh, dw);
      if (d % 2) t.pad(dh, dw);
      else t.pad(dh / 2, dh + 1, dw, dw / 3);
      const char* variant = index % 2 ? "winograd_f2x2" : "winograd_f4x4";
      INFO(to_string(t.get_problem()) << " " << variant);
      t.implementation(variant).bias(index % 3 != 0).seed(uint32_t(700 + index));
      if (index % 3 == 0) t.compare_threads({1, 2, 3});
      CHECK_THAT(t.check(Algorithm::Winograd), Catch::StartsWith(std::string(variant) + "_3x3_dilated_"));
      ++index;
    }
  for (const char* variant : {"winograd_f2x2", "winograd_f4x4"})
    T().input(1, 20, 33, 33).kernel(18, 3, 3).pad(12).dilation(12).implementation(variant).compare_threads({1, 2, 3})
        .check(Algorithm::Winograd);
  T().input(2, 9, 65, 65).kernel(7, 3, 3).pad(24).dilation(24).implementation("winograd_f4x4").check(Algorithm::Winograd);
  // The foundation sweep's dilated 3x3 stride-1 cases apply too.
  int dilated = 0;
  for (const ConvProblem& p : testing::foundation_sweep())
    if (p.kernel_height == 3 && p.kernel_width == 3 && p.stride_h == 1 && p.stride_w == 1 &&
        (p.dilation_h > 1 || p.dilation_w > 1)) {
      T().problem(p).check(Algorithm::Winograd);
      ++dilated;
    }
  CHECK(dilated > 0);
}
