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
    "Prints the algorithm and the time. On error: a message on stderr, exit 1, no output file.\n"
    "\n"
    "Backward (design section 11), with the same convolution options describing the forward layer:\n"
    "  fastconv run --direction backward-data --grad-output DY.npy --weight W.npy\n"
    "               --input-shape N,C,H,W [--bias B.npy] --output DX.npy\n"
    "    dx = dL/dx [N, C, H, W] from dy [N, K, P, Q] (the transposed convolution; its output_padding\n"
    "    is the H, W given; B [C] is the transposed convolution's bias).\n"
    "  fastconv run --direction backward-weights --input X.npy --grad-output DY.npy\n"
    "               --weight-shape K,C/G,R,S --output DW.npy [--bias-grad DB.npy]\n"
    "    dw = dL/dw [K, C/G, R, S] (and db [K]) from x and dy.\n"
    "  dy must have the forward output's shape for the given input and weight shapes.\n";

// "2" -> (2, 2); "2,1" -> (2, 1)
std::pair<int64_t, int64_t> parse_pair(const std::string& text, const std::string& option, int64_t min) {
  auto v = parse_list(text, option, min);
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  throw UsageError("--" + option + " " + text + ": expected one or two values");
}

// N,C,H,W or K,C/G,R,S.
std::vector<int64_t> parse_shape4(const std::string& text, const std::string& option) {
  auto v = parse_list(text, option, 1);
  if (v.size() != 4) throw UsageError("--" + option + " " + text + ": expected 4 values");
  return v;
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
             "threads", "workspace-limit", "repeat", "direction", "grad-output", "input-shape", "weight-shape",
             "bias-grad", "padding-mode", "activation", "residual", "residual-scale"},
            {"help"});
  if (args.flag("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const Direction direction = args.value("direction") ? parse_direction(*args.value("direction")) : Direction::Forward;
  const bool forward = direction == Direction::Forward, backward_data = direction == Direction::BackwardData;
  const bool backward_weights = direction == Direction::BackwardWeights;
  // Each direction names its own tensors; another direction's option is a mistake, not ignored.
  auto refuse = [&](const char* option) {
    if (args.value(option))
      throw UsageError("--" + std::string(option) + " does not apply to --direction " + to_string(direction));
  };
  if (forward) refuse("grad-output"), refuse("input-shape"), refuse("weight-shape"), refuse("bias-grad");
  if (backward_data) refuse("input"), refuse("weight-shape"), refuse("bias-grad");
  if (backward_weights) refuse("weight"), refuse("bias"), refuse("input-shape");
  const std::string output_path = args.required("output");
  const std::string input_path = backward_data ? "" : args.required("input");
  const std::string weight_path = backward_weights ? "" : args.required("weight");
  const std::string grad_path = forward ? "" : args.required("grad-output");

  PlanOptions options;
  options.direction = direction;
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

  NpyArray x, w, dy;
  if (!backward_data) x = read_npy(input_path);
  else x.shape = parse_shape4(args.required("input-shape"), "input-shape");
  if (!backward_weights) w = read_npy(weight_path);
  else w.shape = parse_shape4(args.required("weight-shape"), "weight-shape");
  if (!forward) dy = read_npy(grad_path);
  const std::string x_name = backward_data ? "--input-shape" : "input " + input_path;
  const std::string w_name = backward_weights ? "--weight-shape" : "weight " + weight_path;
  if (x.shape.size() != 4)
    throw Error(x_name + " has shape " + format_shape(x.shape) + ": expected 4 dimensions [N, C, H, W]");
  if (w.shape.size() != 4)
    throw Error(w_name + " has shape " + format_shape(w.shape) + ": expected 4 dimensions [K, C/groups, R, S]");

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
    throw Error(w_name + " has shape " + format_shape(w.shape) + ": with groups=" +
                std::to_string(p.groups) + " and " + std::to_string(p.in_channels) +
                " input channels its second dimension must be " + std::to_string(p.in_channels / p.groups) +
                (p.groups == 1 && w.shape[1] > 0 && p.in_channels % w.shape[1] == 0
                     ? " (grouped weights? pass --groups " + std::to_string(p.in_channels / w.shape[1]) + ")"
                     : ""));

  // dy must be the forward output of this problem: with stride > 1 several input sizes give one dy
  // size, so the shape given decides, and a mismatch is an error rather than a guess.
  const OutputShape o = output_shape(p);
  const std::vector<int64_t> y_shape{o.batch, o.channels, o.height, o.width};
  if (!forward && dy.shape != y_shape)
    throw Error("grad-output " + grad_path + " has shape " + format_shape(dy.shape) + ": the forward output of " +
                (backward_data ? "--input-shape " : "input ") + format_shape(x.shape) + " and " +
                (backward_weights ? "--weight-shape " : "weight ") + format_shape(w.shape) + " is " +
                format_shape(y_shape) + " (" + to_string(p) + ")");

  std::vector<float> bias;
  if (auto b = args.value("bias")) {
    NpyArray ba = read_npy(*b);
    const int64_t want = backward_data ? p.in_channels : p.out_channels;
    if (ba.shape.size() != 1 || ba.shape[0] != want)
      throw Error("bias " + *b + " has shape " + format_shape(ba.shape) + ": expected (" + std::to_string(want) + ",)");
    bias = std::move(ba.data);
  }

  std::vector<float> residual;
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
  PackedWeights packed;
  if (!backward_weights) packed = plan.pack_weights(w.data.data(), bias.empty() ? nullptr : bias.data());
  const double plan_ms = 1e3 * std::chrono::duration<double>(clock::now() - t0).count();

  // The result, and where it goes.
  std::vector<int64_t> out_shape = forward ? y_shape : backward_data ? x.shape : w.shape;
  std::vector<float> out(forward ? p.output_elements() : backward_data ? p.input_elements() : p.weight_elements());
  std::vector<float> db(backward_weights ? std::size_t(p.out_channels) : 0);
  const auto bias_grad = args.value("bias-grad");
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto t1 = clock::now();
    if (forward && !residual.empty())
      plan.execute(x.data.data(), packed, out.data(), residual.data());
    else if (forward)
      plan.execute(x.data.data(), packed, out.data());
    else if (backward_data)
      plan.execute_backward_data(dy.data.data(), packed, out.data());
    else
      plan.execute_backward_weights(x.data.data(), dy.data.data(), out.data(), bias_grad ? db.data() : nullptr);
    times.push_back(1e3 * std::chrono::duration<double>(clock::now() - t1).count());
  }
  std::sort(times.begin(), times.end());
  const double ms = times[times.size() / 2];
  write_npy(output_path, out_shape, out.data());
  if (bias_grad) write_npy(*bias_grad, {p.out_channels}, db.data());

  std::printf("problem:   %s\n", to_string(p).c_str());
  if (!forward) std::printf("direction: %s\n", to_string(direction).c_str());
  if (options.post_ops.activation != Activation::None || options.post_ops.residual)
    std::printf("post-ops:  %s (fused)\n", to_string(options.post_ops).c_str());
  std::printf("algorithm: %s (%s)\n", to_string(plan.algorithm()).c_str(), plan.implementation().c_str());
  std::printf("plan:      %.3f ms (planning and weight packing)\n", plan_ms);
  std::printf("time:      %.3f ms%s, %.2f GFLOP/s, %d thread%s\n", ms,
              repeat > 1 ? (" (median of " + std::to_string(repeat) + ")").c_str() : "",
              flop_count(p) / (ms * 1e6), plan.threads(), plan.threads() > 1 ? "s" : "");
  std::printf("output:    %s %s\n", output_path.c_str(), format_shape(out_shape).c_str());
  if (bias_grad) std::printf("bias grad: %s (%lld)\n", bias_grad->c_str(), (long long)p.out_channels);
  return 0;
}

}  // namespace fastconv::tools
