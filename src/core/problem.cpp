// ConvProblem: validation, derived sizes, canonical names, padding modes and size helpers.
#include <cctype>
#include <cstdio>
#include <functional>
#include <sstream>

#include "core/checked.hpp"
#include "core/geometry.hpp"
#include "fastconv/fastconv.hpp"

namespace fastconv {
namespace {

[[noreturn]] void bad_field(const char* field, int64_t value, const std::string& rule) {
  throw Error(std::string(field) + "=" + std::to_string(value) + ": " + rule);
}
void require_at_least(const char* field, int64_t value, int64_t minimum) {
  if (value < minimum) bad_field(field, value, "must be at least " + std::to_string(minimum));
}

// Strides, dilations and paddings past 2^31 - 1 mean nothing for a real layer, and positions
// computed from them (q*stride - pad + s*dilation, and rounding them) would overflow 64 bits.
void require_step(const char* field, int64_t value, int64_t minimum) {
  require_at_least(field, value, minimum);
  constexpr int64_t kMaxStep = 2147483647;
  if (value > kMaxStep) bad_field(field, value, "must be at most 2147483647 (2^31 - 1)");
}

// Extent of a dilated kernel, dil*(k-1)+1, without overflow.
int64_t kernel_extent(int64_t kernel, int64_t dilation, const char* what) {
  return detail::checked_add(detail::checked_mul(dilation, kernel - 1, what), 1, what);
}

int64_t out_size(int64_t in, int64_t pad_a, int64_t pad_b, int64_t kernel, int64_t stride,
                 int64_t dilation) {
  // Computed in wide arithmetic so that garbage fields cannot overflow here.
  __int128 padded = static_cast<__int128>(in) + pad_a + pad_b;
  __int128 extent = static_cast<__int128>(dilation) * (kernel - 1) + 1;
  if (stride < 1) return 0;
  __int128 span = padded - extent;
  if (span < 0) return 0;
  __int128 out = span / stride + 1;
  return out > INT64_MAX ? INT64_MAX : static_cast<int64_t>(out);
}

}  // namespace

int64_t ConvProblem::out_height() const {
  return out_size(in_height, pad_top, pad_bottom, kernel_height, stride_h, dilation_h);
}
int64_t ConvProblem::out_width() const {
  return out_size(in_width, pad_left, pad_right, kernel_width, stride_w, dilation_w);
}

void ConvProblem::validate() const { detail::Geometry g(*this); }

std::size_t ConvProblem::input_elements() const {
  detail::Geometry g(*this);
  return static_cast<std::size_t>(g.N * g.input_image());
}
std::size_t ConvProblem::weight_elements() const {
  detail::Geometry g(*this);
  return static_cast<std::size_t>(g.K * g.Cg * g.R * g.S);
}
std::size_t ConvProblem::output_elements() const {
  detail::Geometry g(*this);
  return static_cast<std::size_t>(g.N * g.output_image());
}

bool ConvProblem::operator==(const ConvProblem& o) const {
  return batch == o.batch && in_channels == o.in_channels && in_height == o.in_height &&
         in_width == o.in_width && out_channels == o.out_channels &&
         kernel_height == o.kernel_height && kernel_width == o.kernel_width &&
         stride_h == o.stride_h && stride_w == o.stride_w && pad_top == o.pad_top &&
         pad_bottom == o.pad_bottom && pad_left == o.pad_left && pad_right == o.pad_right &&
         dilation_h == o.dilation_h && dilation_w == o.dilation_w && groups == o.groups &&
         padding_mode == o.padding_mode;
}

std::string to_string(PadMode m) {
  switch (m) {
    case PadMode::Zeros: return "zeros";
    case PadMode::Reflect: return "reflect";
    case PadMode::Replicate: return "replicate";
    case PadMode::Circular: return "circular";
  }
  return "pad_mode(" + std::to_string(static_cast<int>(m)) + ")";
}

PadMode parse_pad_mode(const std::string& s) {
  for (PadMode m : {PadMode::Zeros, PadMode::Reflect, PadMode::Replicate, PadMode::Circular})
    if (s == to_string(m)) return m;
  throw Error("padding_mode '" + s + "': expected zeros, reflect, replicate or circular");
}

namespace detail {

Geometry::Geometry(const ConvProblem& p) : problem(p) {
  require_at_least("batch", p.batch, 1);
  require_at_least("in_channels", p.in_channels, 1);
  require_at_least("in_height", p.in_height, 1);
  require_at_least("in_width", p.in_width, 1);
  require_at_least("out_channels", p.out_channels, 1);
  require_at_least("kernel_height", p.kernel_height, 1);
  require_at_least("kernel_width", p.kernel_width, 1);
  require_step("stride_h", p.stride_h, 1);
  require_step("stride_w", p.stride_w, 1);
  require_step("dilation_h", p.dilation_h, 1);
  require_step("dilation_w", p.dilation_w, 1);
  require_step("pad_top", p.pad_top, 0);
  require_step("pad_bottom", p.pad_bottom, 0);
  require_step("pad_left", p.pad_left, 0);
  require_step("pad_right", p.pad_right, 0);
  require_at_least("groups", p.groups, 1);
  if (p.padding_mode < PadMode::Zeros || p.padding_mode > PadMode::Circular)
    bad_field("padding_mode", static_cast<int64_t>(p.padding_mode), "not a PadMode");
  // As PyTorch: a reflection must not reach past the opposite edge (padding < size), a wrap-around
  // not past the whole input (padding <= size).
  if (p.padding_mode == PadMode::Reflect || p.padding_mode == PadMode::Circular) {
    const bool reflect = p.padding_mode == PadMode::Reflect;
    const std::string mode = reflect ? "reflect" : "circular";
    auto check = [&](const char* field, int64_t pad, const char* size_name, int64_t size) {
      if (reflect ? pad >= size : pad > size)
        bad_field(field, pad,
                  "padding_mode=" + mode + " needs padding " + (reflect ? "<" : "<=") + " the input size (" + size_name +
                      "=" + std::to_string(size) + ")");
    };
    check("pad_top", p.pad_top, "in_height", p.in_height);
    check("pad_bottom", p.pad_bottom, "in_height", p.in_height);
    check("pad_left", p.pad_left, "in_width", p.in_width);
    check("pad_right", p.pad_right, "in_width", p.in_width);
  }
  if (p.in_channels % p.groups != 0)
    bad_field("groups", p.groups, "must divide in_channels=" + std::to_string(p.in_channels));
  if (p.out_channels % p.groups != 0)
    bad_field("groups", p.groups, "must divide out_channels=" + std::to_string(p.out_channels));

  const int64_t ext_h = kernel_extent(p.kernel_height, p.dilation_h, "dilation_h*(kernel_height-1)");
  const int64_t ext_w = kernel_extent(p.kernel_width, p.dilation_w, "dilation_w*(kernel_width-1)");
  const int64_t padded_h =
      checked_add(checked_add(p.in_height, p.pad_top, "in_height+pad_top"), p.pad_bottom,
                  "in_height+pad_top+pad_bottom");
  const int64_t padded_w =
      checked_add(checked_add(p.in_width, p.pad_left, "in_width+pad_left"), p.pad_right,
                  "in_width+pad_left+pad_right");
  if (ext_h > padded_h)
    bad_field("kernel_height", p.kernel_height,
              "with dilation_h=" + std::to_string(p.dilation_h) + " spans " +
                  std::to_string(ext_h) + " rows, more than the padded input height " +
                  std::to_string(padded_h) + ": the output would be empty");
  if (ext_w > padded_w)
    bad_field("kernel_width", p.kernel_width,
              "with dilation_w=" + std::to_string(p.dilation_w) + " spans " +
                  std::to_string(ext_w) + " columns, more than the padded input width " +
                  std::to_string(padded_w) + ": the output would be empty");

  N = p.batch, C = p.in_channels, H = p.in_height, W = p.in_width;
  K = p.out_channels, R = p.kernel_height, S = p.kernel_width;
  P = p.out_height(), Q = p.out_width();
  stride_h = p.stride_h, stride_w = p.stride_w, dil_h = p.dilation_h, dil_w = p.dilation_w;
  pad_t = p.pad_top, pad_b = p.pad_bottom, pad_l = p.pad_left, pad_r = p.pad_right;
  groups = p.groups, Cg = C / groups, Kg = K / groups;

  // Every tensor, and the lowered matrix of one image, must be addressable in bytes.
  const int64_t in_elems = checked_mul(checked_mul(N, C, "batch*in_channels"),
                                       checked_mul(H, W, "in_height*in_width"), "input size");
  const int64_t w_elems = checked_mul(checked_mul(K, Cg, "out_channels*in_channels/groups"),
                                      checked_mul(R, S, "kernel size"), "weight size");
  const int64_t out_elems = checked_mul(checked_mul(N, K, "batch*out_channels"),
                                        checked_mul(P, Q, "output height*width"), "output size");
  const int64_t lowered =
      checked_mul(checked_mul(Cg, checked_mul(R, S, "kernel size"), "in_channels/groups*kernel size"),
                  checked_mul(P, Q, "output height*width"), "lowered matrix size");
  checked_bytes(in_elems, sizeof(float), "input size in bytes");
  checked_bytes(w_elems, sizeof(float), "weight size in bytes");
  checked_bytes(out_elems, sizeof(float), "output size in bytes");
  checked_bytes(lowered, sizeof(float), "lowered matrix size in bytes");
}

}  // namespace detail

std::string to_string(const ConvProblem& p) {
  std::ostringstream s;
  s << 'n' << p.batch << 'c' << p.in_channels << 'h' << p.in_height << 'w' << p.in_width << 'k'
    << p.out_channels << 'r' << p.kernel_height << 's' << p.kernel_width;
  auto pair = [&](const char* tag, int64_t a, int64_t b, int64_t dflt) {
    if (a == dflt && b == dflt) return;
    s << '_' << tag << a;
    if (a != b) s << 'x' << b;
  };
  pair("st", p.stride_h, p.stride_w, 1);
  if (p.pad_top == p.pad_bottom && p.pad_left == p.pad_right) {
    pair("p", p.pad_top, p.pad_left, 0);
  } else {
    s << "_p" << p.pad_top << 'x' << p.pad_bottom << 'x' << p.pad_left << 'x' << p.pad_right;
  }
  pair("d", p.dilation_h, p.dilation_w, 1);
  if (p.groups != 1) s << "_g" << p.groups;
  if (p.padding_mode != PadMode::Zeros) s << '_' << to_string(p.padding_mode);
  return s.str();
}

namespace {

// A strict reader of the canonical grammar: numbers are non-negative decimals without sign.
class NameParser {
 public:
  explicit NameParser(const std::string& s) : s_(s) {}
  bool at_end() const { return i_ == s_.size(); }
  bool accept(const char* tag) {
    std::size_t n = std::char_traits<char>::length(tag);
    if (s_.compare(i_, n, tag) != 0) return false;
    i_ += n;
    return true;
  }
  int64_t number() {
    if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) fail();
    int64_t v = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[i_] - '0', &v)) fail();
      ++i_;
    }
    return v;
  }
  std::vector<int64_t> numbers() {  // a[xb[xc[xd]]]
    std::vector<int64_t> v{number()};
    while (accept("x")) v.push_back(number());
    return v;
  }
  [[noreturn]] void fail() const {
    throw Error("problem name '" + s_ +
                "' is not canonical (expected like n1c64h56w56k64r3s3_st2_p1_d1_g1_reflect)");
  }

 private:
  const std::string& s_;
  std::size_t i_ = 0;
};

}  // namespace

ConvProblem parse_problem(const std::string& name) {
  NameParser in(name);
  ConvProblem p;
  auto field = [&](const char* tag, int64_t& dst) {
    if (!in.accept(tag)) in.fail();
    dst = in.number();
  };
  field("n", p.batch), field("c", p.in_channels), field("h", p.in_height);
  field("w", p.in_width), field("k", p.out_channels), field("r", p.kernel_height);
  field("s", p.kernel_width);
  auto two = [&](int64_t& a, int64_t& b) {
    auto v = in.numbers();
    if (v.size() > 2) in.fail();
    a = v[0], b = v.size() == 2 ? v[1] : v[0];
  };
  if (in.accept("_st")) two(p.stride_h, p.stride_w);
  if (in.accept("_p")) {
    auto v = in.numbers();
    if (v.size() == 1) p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = v[0];
    else if (v.size() == 2) p.pad_top = p.pad_bottom = v[0], p.pad_left = p.pad_right = v[1];
    else if (v.size() == 4) p.pad_top = v[0], p.pad_bottom = v[1], p.pad_left = v[2], p.pad_right = v[3];
    else in.fail();
  }
  if (in.accept("_d")) two(p.dilation_h, p.dilation_w);
  if (in.accept("_g")) p.groups = in.number();
  for (PadMode m : {PadMode::Reflect, PadMode::Replicate, PadMode::Circular})
    if (in.accept(("_" + to_string(m)).c_str())) {
      p.padding_mode = m;
      break;
    }
  if (!in.at_end()) in.fail();
  return p;
}

void apply_padding(ConvProblem& p, PaddingMode mode) {
  if (mode == PaddingMode::Valid) {
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
    return;
  }
  if (p.stride_h != 1) bad_field("stride_h", p.stride_h, "padding 'same' needs stride 1 (as in PyTorch)");
  if (p.stride_w != 1) bad_field("stride_w", p.stride_w, "padding 'same' needs stride 1 (as in PyTorch)");
  require_at_least("kernel_height", p.kernel_height, 1);
  require_at_least("kernel_width", p.kernel_width, 1);
  require_step("dilation_h", p.dilation_h, 1);
  require_step("dilation_w", p.dilation_w, 1);
  const int64_t total_h = detail::checked_mul(p.dilation_h, p.kernel_height - 1, "same padding height");
  const int64_t total_w = detail::checked_mul(p.dilation_w, p.kernel_width - 1, "same padding width");
  p.pad_top = total_h / 2, p.pad_bottom = total_h - total_h / 2;
  p.pad_left = total_w / 2, p.pad_right = total_w - total_w / 2;
}

OutputShape output_shape(const ConvProblem& p) {
  detail::Geometry g(p);
  return {g.N, g.K, g.P, g.Q};
}

int64_t parameter_count(const ConvProblem& p, bool with_bias) {
  detail::Geometry g(p);
  return g.K * g.Cg * g.R * g.S + (with_bias ? g.K : 0);
}

double flop_count(const ConvProblem& p) {
  detail::Geometry g(p);
  return 2.0 * double(g.N) * double(g.K) * double(g.P) * double(g.Q) * double(g.Cg) *
         double(g.R) * double(g.S);
}

int64_t receptive_field(const std::vector<LayerGeometry>& layers) {
  int64_t rf = 1, jump = 1;  // jump: distance in input pixels between adjacent outputs so far
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerGeometry& l = layers[i];
    const std::string at = "layers[" + std::to_string(i) + "].";
    if (l.kernel < 1) bad_field((at + "kernel").c_str(), l.kernel, "must be at least 1");
    if (l.stride < 1) bad_field((at + "stride").c_str(), l.stride, "must be at least 1");
    if (l.dilation < 1) bad_field((at + "dilation").c_str(), l.dilation, "must be at least 1");
    const int64_t grow = detail::checked_mul(
        detail::checked_mul(l.dilation, l.kernel - 1, "receptive field"), jump, "receptive field");
    rf = detail::checked_add(rf, grow, "receptive field");
    jump = detail::checked_mul(jump, l.stride, "receptive field stride product");
  }
  return rf;
}

}  // namespace fastconv

std::size_t std::hash<fastconv::ConvProblem>::operator()(const fastconv::ConvProblem& p) const noexcept {
  const int64_t fields[] = {p.batch,     p.in_channels,  p.in_height,   p.in_width,
                            p.out_channels, p.kernel_height, p.kernel_width, p.stride_h,
                            p.stride_w,  p.pad_top,      p.pad_bottom,  p.pad_left,
                            p.pad_right, p.dilation_h,   p.dilation_w,  p.groups,
                            static_cast<int64_t>(p.padding_mode)};
  std::size_t h = 1469598103934665603ull;  // FNV-1a over the fields
  for (int64_t f : fields) {
    h ^= static_cast<std::size_t>(f);
    h *= 1099511628211ull;
  }
  return h;
}
