// fastconv run: one convolution on .npy files.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "args.hpp"
#include "commands.hpp"
#include "fastconv/fastconv.hpp"
#include "npy.hpp"

namespace fastconv::tools {
namespace {

const char* kHelp =
    "usage: fastconv run --input X.npy --weight W.npy [--bias B.npy] --output Y.npy\n"
    "                    [--stride SH,SW] [--padding PH,PW|T,B,L,R|same|valid] [--dilation DH,DW]\n"
    "                    [--groups G] [--algo auto|direct|im2col|winograd|fft]\n"
    "                    [--mode estimate|measure] [--threads N] [--workspace-limit BYTES] [--repeat N]\n"
    "                    [--padding-mode zeros|reflect|replicate|circular]\n"
    "                    [--activation relu|relu6|leaky_relu[:A]|clamp:LO,HI|silu|hardswish|gelu|sigmoid|tanh]\n"
    "                    [--residual R.npy [--residual-scale S]]\n"
    "\n"
    "X is [N, C, H, W], W is [K, C/G, R, S], B is [K]; all little-endian float32 in C order.\n"
    "Writes Y [N, K, P, Q]. A single value (--stride 2) means both axes; --padding takes one value\n"
    "(all sides), two (top=bottom, left=right) or four (top, bottom, left, right); 'same' and 'valid'\n"
    "follow PyTorch ('same' needs stride 1). --repeat times N executes and reports the median.\n"
    "--padding-mode fills the padding as PyTorch's padding_mode (reflect needs padding < size).\n"
    "Post-ops, fused where the output is written: Y = act(conv + B + S * R), R of Y's shape\n"
    "(--residual-scale S, default 1); gelu is the tanh form.\n"
    "Prints the algorithm and the time. On error: a message on stderr, exit 1, no output file.\n";

// "2" -> (2, 2); "2,1" -> (2, 1)
std::pair<int64_t, int64_t> parse_pair(const std::string& text, const std::string& option, int64_t min) {
  auto v = parse_list(text, option, min);
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  throw UsageError("--" + option + " " + text + ": expected one or two values");
}

float parse_scale(const std::string& text) {
  std::size_t used = 0;
  float v = 0;
  try {
    v = std::stof(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v))
    throw UsageError("--residual-scale " + text + ": expected a finite number");
  return v;
}

}  // namespace

int run_command(const std::vector<std::string>& argv) {
  Args args(argv,
            {"input", "weight", "bias", "output", "stride", "padding", "dilation", "groups", "algo", "mode",
             "threads", "workspace-limit", "repeat", "padding-mode", "activation", "residual", "residual-scale"},
            {"help"});
  if (args.flag("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const std::string input_path = args.required("input"), weight_path = args.required("weight"),
                    output_path = args.required("output");

  PlanOptions options;
  if (auto a = args.value("algo")) options.algorithm = parse_algorithm(*a);
  if (auto m = args.value("mode")) options.mode = parse_plan_mode(*m);
  if (auto t = args.value("threads")) options.threads = int(parse_count(*t, "threads", 0, 4096));
  if (auto w = args.value("workspace-limit"))
    options.workspace_limit = std::size_t(parse_count(*w, "workspace-limit", 0, INT64_MAX));
  if (auto a = args.value("activation")) options.post_ops = parse_post_ops(*a);
  if (auto s = args.value("residual-scale")) {
    if (!args.value("residual")) throw UsageError("--residual-scale needs --residual");
    options.post_ops.residual_scale = parse_scale(*s);
  }
  options.post_ops.residual = bool(args.value("residual"));
  const int repeat = args.value("repeat") ? int(parse_count(*args.value("repeat"), "repeat", 1, 100000)) : 1;

  const NpyArray x = read_npy(input_path);
  const NpyArray w = read_npy(weight_path);
  if (x.shape.size() != 4)
    throw Error("input " + input_path + " has shape " + format_shape(x.shape) + ": expected 4 dimensions [N, C, H, W]");
  if (w.shape.size() != 4)
    throw Error("weight " + weight_path + " has shape " + format_shape(w.shape) +
                ": expected 4 dimensions [K, C/groups, R, S]");

  ConvProblem p;
  p.batch = x.shape[0], p.in_channels = x.shape[1], p.in_height = x.shape[2], p.in_width = x.shape[3];
  p.out_channels = w.shape[0], p.kernel_height = w.shape[2], p.kernel_width = w.shape[3];
  p.groups = args.value("groups") ? parse_count(*args.value("groups"), "groups", 1, INT64_MAX) : 1;
  if (auto s = args.value("stride")) std::tie(p.stride_h, p.stride_w) = parse_pair(*s, "stride", 1);
  if (auto d = args.value("dilation")) std::tie(p.dilation_h, p.dilation_w) = parse_pair(*d, "dilation", 1);
  if (auto pad = args.value("padding")) {
    if (*pad == "same" || *pad == "valid") {
      apply_padding(p, *pad == "same" ? PaddingMode::Same : PaddingMode::Valid);
    } else {
      auto v = parse_list(*pad, "padding", 0);
      if (v.size() == 1) p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = v[0];
      else if (v.size() == 2) p.pad_top = p.pad_bottom = v[0], p.pad_left = p.pad_right = v[1];
      else if (v.size() == 4) p.pad_top = v[0], p.pad_bottom = v[1], p.pad_left = v[2], p.pad_right = v[3];
      else throw UsageError("--padding " + *pad + ": expected 1, 2 or 4 values, 'same' or 'valid'");
    }
  }
  if (auto m = args.value("padding-mode")) p.padding_mode = parse_pad_mode(*m);
  p.validate();
  // The problem is valid, so groups divides C: the weight's second dimension must be C/groups.
  if (w.shape[1] != p.in_channels / p.groups)
    throw Error("weight " + weight_path + " has shape " + format_shape(w.shape) + ": with groups=" +
                std::to_string(p.groups) + " and " + std::to_string(p.in_channels) +
                " input channels its second dimension must be " + std::to_string(p.in_channels / p.groups) +
                (p.groups == 1 && w.shape[1] > 0 && p.in_channels % w.shape[1] == 0
                     ? " (grouped weights? pass --groups " + std::to_string(p.in_channels / w.shape[1]) + ")"
                     : ""));

  std::vector<float> bias;
  if (auto b = args.value("bias")) {
    NpyArray ba = read_npy(*b);
    if (ba.shape.size() != 1 || ba.shape[0] != p.out_channels)
      throw Error("bias " + *b + " has shape " + format_shape(ba.shape) + ": expected (" +
                  std::to_string(p.out_channels) + ",)");
    bias = std::move(ba.data);
  }

  std::vector<float> residual;
  const OutputShape o = output_shape(p);
  if (auto r = args.value("residual")) {
    NpyArray ra = read_npy(*r);
    const std::vector<int64_t> want = {o.batch, o.channels, o.height, o.width};
    if (ra.shape != want)
      throw Error("residual " + *r + " has shape " + format_shape(ra.shape) + ": expected the output's shape " +
                  format_shape(want));
    residual = std::move(ra.data);
  }

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const Plan plan = Plan::create(p, options);
  const PackedWeights packed = plan.pack_weights(w.data.data(), bias.empty() ? nullptr : bias.data());
  const double plan_ms = 1e3 * std::chrono::duration<double>(clock::now() - t0).count();

  std::vector<float> y(p.output_elements());
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto t1 = clock::now();
    if (residual.empty())
      plan.execute(x.data.data(), packed, y.data());
    else
      plan.execute(x.data.data(), packed, y.data(), residual.data());
    times.push_back(1e3 * std::chrono::duration<double>(clock::now() - t1).count());
  }
  std::sort(times.begin(), times.end());
  const double ms = times[times.size() / 2];
  write_npy(output_path, {o.batch, o.channels, o.height, o.width}, y.data());

  std::printf("problem:   %s\n", to_string(p).c_str());
  if (options.post_ops.activation != Activation::None || options.post_ops.residual)
    std::printf("post-ops:  %s (fused)\n", to_string(options.post_ops).c_str());
  std::printf("algorithm: %s (%s)\n", to_string(plan.algorithm()).c_str(), plan.implementation().c_str());
  std::printf("plan:      %.3f ms (planning and weight packing)\n", plan_ms);
  std::printf("time:      %.3f ms%s, %.2f GFLOP/s, %d thread%s\n", ms,
              repeat > 1 ? (" (median of " + std::to_string(repeat) + ")").c_str() : "",
              flop_count(p) / (ms * 1e6), plan.threads(), plan.threads() > 1 ? "s" : "");
  std::printf("output:    %s %s\n", output_path.c_str(),
              format_shape({o.batch, o.channels, o.height, o.width}).c_str());
  return 0;
}

}  // namespace fastconv::tools
