// Fuzz target, differential: the bytes decode into a small problem (every field, invalid values
// included), plan options (every algorithm, implementation prefixes, thread counts, budgets) and
// data. Plan::create either throws fastconv::Error or gives a plan whose result matches the double
// reference within its algorithm's tolerance (design.md section 8), on every execute path; an
// execute that throws leaves the output untouched. Anything else (another exception, a crash, a
// sanitizer report, a wrong result) is a finding.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "direct/reference.hpp"
#include "fastconv/fastconv.hpp"

using namespace fastconv;

namespace {

// Most values in [lo, hi]; now and then an invalid or extreme one.
int64_t field(FuzzedDataProvider& in, int64_t lo, int64_t hi) {
  const uint8_t pick = in.ConsumeIntegral<uint8_t>();
  if (pick < 232) return lo + int64_t(pick) % (hi - lo + 1);
  static const int64_t kOdd[] = {0,
                                 -1,
                                 -7,
                                 std::numeric_limits<int64_t>::min(),
                                 std::numeric_limits<int64_t>::max(),
                                 int64_t(1) << 31,
                                 (int64_t(1) << 31) - 1,
                                 int64_t(1) << 40,
                                 int64_t(1) << 62,
                                 3037000500,  // sqrt(2^63): products overflow
                                 65536,
                                 100000};
  return kOdd[(pick - 232) % (sizeof kOdd / sizeof kOdd[0])];
}

double tolerance_for(const std::string& impl) {
  if (impl.rfind("fft", 0) == 0) return 2e-5;
  if (impl.rfind("winograd_f4x4", 0) == 0) return 1e-4;
  if (impl.rfind("winograd_1d", 0) == 0) return 2e-5;
  if (impl.rfind("direct", 0) == 0 || impl.rfind("im2col", 0) == 0 || impl.rfind("winograd_f2x2", 0) == 0) return 1e-5;
  std::fprintf(stderr, "no tolerance for implementation %s\n", impl.c_str());
  std::abort();
}

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_conv_differential: %s\n", what.c_str());
  std::abort();
}

constexpr std::size_t kMaxElements = std::size_t(1) << 16;  // per tensor: keeps one run fast
constexpr double kMaxMacs = 4e6;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  ConvProblem p;
  p.batch = field(in, 1, 3);
  p.in_channels = field(in, 1, 9);
  p.in_height = field(in, 1, 24);
  p.in_width = field(in, 1, 24);
  p.out_channels = field(in, 1, 9);
  p.kernel_height = field(in, 1, 11);
  p.kernel_width = field(in, 1, 11);
  p.stride_h = field(in, 1, 4);
  p.stride_w = field(in, 1, 4);
  p.pad_top = field(in, 0, 5);
  p.pad_bottom = field(in, 0, 5);
  p.pad_left = field(in, 0, 5);
  p.pad_right = field(in, 0, 5);
  p.dilation_h = field(in, 1, 3);
  p.dilation_w = field(in, 1, 3);
  // Groups: usually a divisor of both channel counts (depthwise included), sometimes anything.
  const uint8_t g = in.ConsumeIntegral<uint8_t>();
  if (g < 128) {
    p.groups = 1;
  } else if (g < 192) {
    p.groups = p.in_channels;
    int64_t multiplied;  // a channel multiplier, unless in_channels is one of the extreme values
    if ((g & 1) && !__builtin_mul_overflow(p.in_channels, int64_t(1 + g % 3), &multiplied)) p.out_channels = multiplied;
  } else {
    p.groups = field(in, 1, 9);
  }

  const uint8_t pm = in.ConsumeIntegral<uint8_t>();  // padding mode: 252..255 not a PadMode
  p.padding_mode = static_cast<PadMode>(pm < 128 ? 0 : pm < 252 ? pm % 4 : pm);

  PlanOptions o;
  // Post-ops: every activation (and values that are none), parameters that are invalid now and then.
  static const float kParam[] = {0.0f, 0.1f, -1.0f, 6.0f, 0.5f, -3.0f, 1e30f, std::numeric_limits<float>::quiet_NaN(),
                                 std::numeric_limits<float>::infinity()};
  const uint8_t act = in.ConsumeIntegral<uint8_t>();
  o.post_ops.activation = static_cast<Activation>(act < 96 ? 0 : act < 252 ? act % 10 : act);
  o.post_ops.alpha = kParam[in.ConsumeIntegral<uint8_t>() % 9];
  o.post_ops.beta = kParam[in.ConsumeIntegral<uint8_t>() % 9];
  const uint8_t res = in.ConsumeIntegral<uint8_t>();
  o.post_ops.residual = res >= 192;
  o.post_ops.residual_scale = res % 5 == 4 ? kParam[res % 9] : 1.0f;
  const uint8_t a = in.ConsumeIntegral<uint8_t>();
  o.algorithm = static_cast<Algorithm>(a < 250 ? a % 5 : a);  // 250..255: not an Algorithm
  static const char* kImpl[] = {"",         "",           "",       "",      "direct_general", "direct_depthwise",
                                "im2col_gemm", "im2col_1x1", "im2col_regions", "winograd_f2x2", "winograd_f4x4", "fft_tile", "bogus"};
  o.implementation = kImpl[in.ConsumeIntegral<uint8_t>() % (sizeof kImpl / sizeof kImpl[0])];
  const uint8_t t = in.ConsumeIntegral<uint8_t>();
  o.threads = t < 250 ? t % 4 : (t == 250 ? -1 : 5000);
  const uint8_t w = in.ConsumeIntegral<uint8_t>();
  o.workspace_limit = w < 200 ? PlanOptions::kDefaultWorkspaceLimit
                      : w < 220 ? 0
                      : w < 240 ? std::size_t(w) << 8
                                : std::size_t(in.ConsumeIntegral<uint32_t>());
  const bool with_bias = in.ConsumeBool();
  const bool small_integers = in.ConsumeBool();
  const unsigned misalign = in.ConsumeIntegral<uint8_t>() % 64;

  // FASTCONV_FUZZ_PRINT=1: say what an input decodes to (for reproducing a finding).
  static const bool print = std::getenv("FASTCONV_FUZZ_PRINT") != nullptr;
  if (print)
    std::fprintf(stderr, "problem n%lldc%lldh%lldw%lldk%lldr%llds%lld st%lldx%lld p%lldx%lldx%lldx%lld d%lldx%lld g%lld; "
                 "padding_mode %d post_ops '%s' algorithm %d implementation '%s' threads %d workspace_limit %zu "
                 "bias %d small_integers %d\n",
                 (long long)p.batch, (long long)p.in_channels, (long long)p.in_height, (long long)p.in_width,
                 (long long)p.out_channels, (long long)p.kernel_height, (long long)p.kernel_width,
                 (long long)p.stride_h, (long long)p.stride_w, (long long)p.pad_top, (long long)p.pad_bottom,
                 (long long)p.pad_left, (long long)p.pad_right, (long long)p.dilation_h, (long long)p.dilation_w,
                 (long long)p.groups, int(p.padding_mode),
                 int(o.post_ops.activation) >= 0 && int(o.post_ops.activation) <= 9 ? to_string(o.post_ops).c_str() : "?",
                 int(o.algorithm), o.implementation.c_str(), o.threads, o.workspace_limit,
                 int(with_bias), int(small_integers));
  // Planning walks every kernel tap (direct's tap table): valid layers with 10^5 taps and more plan
  // in seconds under the sanitizers (a 1x100000 kernel: over 10 s, fuzz/regressions). Their sizes' arithmetic is still fuzzed through validate().
  try {
    if (p.weight_elements() > (std::size_t(1) << 15)) return 0;
  } catch (const Error&) {
  }
  std::optional<Plan> plan;
  try {
    plan.emplace(Plan::create(p, o));
  } catch (const Error&) {
    return 0;
  }
  // A plan exists: the problem is valid. Its description and sizes must be printable.
  (void)plan->describe();
  const std::size_t need = plan->workspace_bytes();
  if (need > o.workspace_limit) finding("workspace_bytes above the limit");
  if (p.input_elements() > kMaxElements || p.weight_elements() > kMaxElements || p.output_elements() > kMaxElements ||
      flop_count(p) / 2 > kMaxMacs)
    return 0;

  // Data from a seeded generator: the fuzzer steers the shape, not every value.
  uint32_t state = in.ConsumeIntegral<uint32_t>() | 1u;
  auto next = [&] {
    state ^= state << 13, state ^= state >> 17, state ^= state << 5;
    return small_integers ? float(int(state % 17) - 8) : float(int32_t(state)) / 2147483648.0f;
  };
  std::vector<float> x(p.input_elements()), wt(p.weight_elements()), b(std::size_t(p.out_channels));
  for (float& v : x) v = next();
  for (float& v : wt) v = next();
  for (float& v : b) v = next();
  const float* bias = with_bias ? b.data() : nullptr;

  std::vector<float> residual;
  if (o.post_ops.residual) {
    residual.resize(p.output_elements());
    for (float& v : residual) v = next();
  }
  const float* r = o.post_ops.residual ? residual.data() : nullptr;
  std::vector<double> ref(p.output_elements()), mag(p.output_elements());
  detail::reference_conv2d(p, x.data(), wt.data(), bias, ref.data(), mag.data());
  detail::reference_post_ops(o.post_ops, r, ref.data(), mag.data(), ref.size());
  // The error bound: the convolution's rounding grows with the magnitudes summed (mag); the
  // activation stretches it by at most its steepest slope (leaky_relu's alpha; 1.5 is hardswish's,
  // the steepest of the smooth ones), and a smooth activation's own rounding follows its output.
  const Activation act_kind = o.post_ops.activation;
  const bool smooth = act_kind == Activation::Silu || act_kind == Activation::Hardswish ||
                      act_kind == Activation::Gelu || act_kind == Activation::Sigmoid || act_kind == Activation::Tanh;
  double slope = smooth ? 1.5 : 1.0;
  if (act_kind == Activation::LeakyRelu && std::isfinite(o.post_ops.alpha))
    slope = std::max(1.0, std::fabs(double(o.post_ops.alpha)));
  double scale = 0, out_max = 0;
  for (double m : mag) scale = std::max(scale, m);
  if (smooth)
    for (double v : ref) out_max = std::max(out_max, std::fabs(v));
  scale = slope * scale + out_max;

  const std::string impl = plan->implementation();
  const float kSentinel = -12345.0f;
  auto check = [&](const std::vector<float>& y, const char* path) {
    double err = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      // A true result past float's range (leaky_relu and residual scales of 1e30 multiply) may
      // round to infinity: only a result float can hold must come out finite and within bounds.
      if (!(std::fabs(ref[i]) <= double(std::numeric_limits<float>::max()))) continue;
      if (!std::isfinite(y[i]))
        finding(impl + " " + path + ": non-finite output on finite data, " + to_string(p));
      err = std::max(err, std::fabs(double(y[i]) - ref[i]));
    }
    const double normalised = scale > 0 ? err / scale : err;
    const bool exact = small_integers && o.post_ops.activation == Activation::None && !o.post_ops.residual;
    if (exact && tolerance_for(impl) <= 1e-5 && impl.rfind("fft", 0) != 0 && err != 0)
      finding(impl + " " + path + ": not exact on small integers (error " + std::to_string(err) + "), " + to_string(p));
    if (normalised > tolerance_for(impl))
      finding(impl + " " + path + ": error " + std::to_string(normalised) + " above " +
              std::to_string(tolerance_for(impl)) + ", " + to_string(p));
  };

  // 1. Pack on the call (with a residual: pack, then execute with it).
  const PackedWeights packed = plan->pack_weights(wt.data(), bias);
  std::vector<float> y1(p.output_elements(), kSentinel);
  if (r)
    plan->execute(x.data(), packed, y1.data(), r);
  else
    plan->execute(x.data(), wt.data(), bias, y1.data());
  check(y1, "execute");
  // 2. A caller workspace at any alignment: the same bits. With a residual, in place half the time.
  std::vector<unsigned char> ws(need + 64 + misalign);
  const std::size_t room = (misalign & 1) ? need : need + 64;  // odd: no room to align
  std::vector<float> y2(p.output_elements(), kSentinel);
  if (r && (misalign & 2)) {
    y2 = residual;
    plan->execute(x.data(), packed, y2.data(), y2.data(), ws.data() + misalign, room);
  } else if (r) {
    plan->execute(x.data(), packed, y2.data(), r, ws.data() + misalign, room);
  } else {
    plan->execute(x.data(), packed, y2.data(), ws.data() + misalign, room);
  }
  // In place, GEMM and the direct tile seed their sums with scale * r (design.md section 10): the
  // same result to rounding, not the same bits. Everything else must give the same bits.
  const bool seeded = r && (misalign & 2) && (impl.rfind("im2col", 0) == 0 || impl.rfind("direct_general", 0) == 0);
  if (seeded)
    check(y2, "in-place residual");
  else if (std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) != 0)
    finding(impl + ": packed/caller-workspace execute differs from execute(weights), " + to_string(p));
  // 3. Errors leave the output untouched.
  std::vector<float> y3(p.output_elements(), kSentinel);
  auto untouched = [&](const char* what) {
    for (float v : y3)
      if (v != kSentinel) finding(std::string(what) + ": output written on error, " + to_string(p));
  };
  try {
    if (r)
      plan->execute(nullptr, packed, y3.data(), r);
    else
      plan->execute(nullptr, packed, y3.data());
    finding("null input accepted");
  } catch (const Error&) {
    untouched("null input");
  }
  if (need > 0) {
    try {
      if (r)
        plan->execute(x.data(), packed, y3.data(), r, ws.data(), need - 1);
      else
        plan->execute(x.data(), packed, y3.data(), ws.data(), need - 1);
      finding("short workspace accepted");
    } catch (const Error&) {
      untouched("short workspace");
    }
  }
  return 0;
}
