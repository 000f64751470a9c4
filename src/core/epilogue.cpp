// The epilogue's dispatch (once per plan), validation of PostOps, and the activations in double
// for the reference.
#include "core/epilogue.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "core/isa_dispatch.hpp"

namespace fastconv::detail {

void Epilogue::apply(float* y, const float* r, int64_t n) const {
  row(params, y, 0, y, 0, residual ? r : nullptr, 0, 1, n);
}
void Epilogue::apply_2d(float* y, const float* r, int64_t ld, int64_t rows, int64_t cols) const {
  row(params, y, ld, y, ld, residual ? r : nullptr, ld, rows, cols);
}
void Epilogue::activate_2d(float* y, int64_t ld, int64_t rows, int64_t cols) const {
  if (params.activation != Activation::None) row(params, y, ld, y, ld, nullptr, 0, rows, cols);
}
void Epilogue::apply_from(const float* s, int64_t lds, float* y, const float* r, int64_t ldy, int64_t rows,
                          int64_t cols) const {
  row(params, s, lds, y, ldy, residual ? r : nullptr, ldy, rows, cols);
}

EpilogueRowFn epilogue_row_kernel(Isa isa) {
  return isa_table<EpilogueRowFn, epilogue_row_kernel_sse2, epilogue_row_kernel_avx2, epilogue_row_kernel_avx512>(
      isa, "epilogue");
}

namespace {
std::string number(float v) {
  std::string s = std::to_string(v);
  return s;
}
}  // namespace

Epilogue make_epilogue(const PostOps& po, Isa isa) {
  if (po.activation < Activation::None || po.activation > Activation::Tanh)
    throw Error("post_ops.activation=" + std::to_string(static_cast<int>(po.activation)) + ": not an Activation");
  if (po.activation == Activation::LeakyRelu && !std::isfinite(po.alpha))
    throw Error("post_ops.alpha=" + number(po.alpha) + ": the leaky_relu slope must be finite");
  if (po.activation == Activation::Clamp) {
    if (std::isnan(po.alpha)) throw Error("post_ops.alpha=nan: the clamp's lower bound must be a number");
    if (std::isnan(po.beta)) throw Error("post_ops.beta=nan: the clamp's upper bound must be a number");
    if (po.alpha > po.beta)
      throw Error("post_ops.alpha=" + number(po.alpha) + ": the clamp's lower bound is above its upper bound beta=" +
                  number(po.beta));
  }
  if (po.residual && !std::isfinite(po.residual_scale))
    throw Error("post_ops.residual_scale=" + number(po.residual_scale) + ": must be finite");
  Epilogue e;
  e.params.activation = po.activation;
  e.params.alpha = po.alpha, e.params.beta = po.beta;
  e.params.residual_scale = po.residual ? po.residual_scale : 1.0f;
  e.residual = po.residual;
  e.row = epilogue_row_kernel(isa);
  return e;
}

bool activation_clamp(const EpilogueParams& p, float& lo, float& hi) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  switch (p.activation) {
    case Activation::None: lo = -inf, hi = inf; return true;
    case Activation::Relu: lo = 0, hi = inf; return true;
    case Activation::Relu6: lo = 0, hi = 6; return true;
    default: return false;
  }
}

double activate_reference(const EpilogueParams& p, double x) {
  switch (p.activation) {
    case Activation::None: return x;
    case Activation::Relu: return x < 0 ? 0.0 : x;
    case Activation::Relu6: return x < 0 ? 0.0 : x > 6 ? 6.0 : x;
    case Activation::LeakyRelu: return x < 0 ? double(p.alpha) * x : x;
    case Activation::Clamp: return x < p.alpha ? double(p.alpha) : x > p.beta ? double(p.beta) : x;
    case Activation::Silu: return x < -700 ? -0.0 : x / (1.0 + std::exp(-x));
    case Activation::Hardswish: return x <= -3 ? 0.0 : x >= 3 ? x : x * (x + 3) / 6;
    case Activation::Gelu: {
      if (x < -1e100) return -0.0;
      if (x > 1e100) return x;
      return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    }
    case Activation::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Activation::Tanh: return std::tanh(x);
  }
  return x;
}

}  // namespace fastconv::detail

namespace fastconv {

namespace {
const Activation kActivations[] = {Activation::None,      Activation::Relu,  Activation::Relu6,   Activation::LeakyRelu,
                                   Activation::Clamp,     Activation::Silu,  Activation::Hardswish, Activation::Gelu,
                                   Activation::Sigmoid,   Activation::Tanh};

float parse_float(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  float v = 0;
  try {
    v = std::stof(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v))
    throw Error("activation '" + what + "': '" + text + "' is not a finite number");
  return v;
}

std::string short_number(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", double(v));
  return buf;
}
}  // namespace

std::string to_string(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Relu6: return "relu6";
    case Activation::LeakyRelu: return "leaky_relu";
    case Activation::Clamp: return "clamp";
    case Activation::Silu: return "silu";
    case Activation::Hardswish: return "hardswish";
    case Activation::Gelu: return "gelu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Tanh: return "tanh";
  }
  return "activation(" + std::to_string(static_cast<int>(a)) + ")";
}

PostOps parse_post_ops(const std::string& text) {
  PostOps po;
  if (text.empty()) return po;
  const std::size_t colon = text.find(':');
  const std::string name = text.substr(0, colon);
  const bool has_args = colon != std::string::npos;
  const std::string args = has_args ? text.substr(colon + 1) : "";
  bool known = false;
  for (Activation a : kActivations)
    if (name == to_string(a)) po.activation = a, known = true;
  if (!known)
    throw Error("activation '" + text +
                "': expected none, relu, relu6, leaky_relu[:SLOPE], clamp:LO,HI, silu, hardswish, gelu, sigmoid or tanh");
  if (po.activation == Activation::LeakyRelu) {
    po.alpha = has_args ? parse_float(args, text) : 0.01f;  // PyTorch's default slope
  } else if (po.activation == Activation::Clamp) {
    const std::size_t comma = args.find(',');
    if (!has_args || comma == std::string::npos) throw Error("activation '" + text + "': clamp needs LO,HI, e.g. clamp:0,6");
    po.alpha = parse_float(args.substr(0, comma), text);
    po.beta = parse_float(args.substr(comma + 1), text);
    if (po.alpha > po.beta)
      throw Error("activation '" + text + "': clamp's lower bound " + short_number(po.alpha) + " is above its upper bound " +
                  short_number(po.beta));
  } else if (has_args) {
    throw Error("activation '" + text + "': " + name + " takes no argument");
  }
  return po;
}

std::string to_string(const PostOps& po) {
  std::string s = to_string(po.activation);
  if (po.activation == Activation::LeakyRelu) s += ":" + short_number(po.alpha);
  if (po.activation == Activation::Clamp) s += ":" + short_number(po.alpha) + "," + short_number(po.beta);
  if (po.residual) {
    s = (po.activation == Activation::None ? std::string() : s + "+") + "residual";
    if (po.residual_scale != 1.0f) s += "*" + short_number(po.residual_scale);
  }
  return s;
}

}  // namespace fastconv
