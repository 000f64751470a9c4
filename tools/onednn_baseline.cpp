#include "onednn_baseline.hpp"
#include "thread_pinning.hpp"

#include <omp.h>

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>

namespace fastconv::tools {

using dnnl::memory;
using tag = memory::format_tag;

struct OnednnConv::State {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::convolution_forward conv;
  dnnl::convolution_forward::primitive_desc pd;
  memory::desc user_src, user_dst;
  memory src, dst, weights, bias;  // in oneDNN's preferred layouts
  bool reorder_src = false, reorder_dst = false;
  dnnl::reorder src_reorder, dst_reorder, residual_reorder;  // made once: the best case for oneDNN
  bool sum = false;
  bool compute_src_ready = false;  // run_compute_only: src holds the input
  std::size_t dst_bytes = 0;
  int threads = 1;
  std::string impl;
  // The backward primitives (design section 11), NCHW in and out like the forward.
  Direction direction = Direction::Forward;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  memory::desc user_w;
  memory diff_dst, diff_weights, diff_bias;  // in the primitive's layouts
  bool reorder_diff_dst = false, reorder_diff_weights = false;
  dnnl::reorder diff_dst_reorder, diff_weights_reorder;
};

namespace {

// A reorder from one layout to another, made once; none when the layouts agree.
bool make_reorder(const dnnl::engine& e, const memory::desc& from, const memory::desc& to, dnnl::reorder& r) {
  if (from == to) return false;
  r = dnnl::reorder(dnnl::reorder::primitive_desc(e, from, e, to));
  return true;
}

// fastconv's post-ops as oneDNN's (2.6 API): sum(scale) for the residual, then one eltwise.
dnnl::post_ops onednn_post_ops(const PostOps& po) {
  using alg = dnnl::algorithm;
  dnnl::post_ops ops;
  if (po.residual) ops.append_sum(po.residual_scale);
  switch (po.activation) {
    case Activation::None: break;
    case Activation::Relu: ops.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f); break;
    case Activation::Relu6: ops.append_eltwise(1.f, alg::eltwise_clip, 0.f, 6.f); break;
    case Activation::LeakyRelu: ops.append_eltwise(1.f, alg::eltwise_relu, po.alpha, 0.f); break;
    case Activation::Clamp: ops.append_eltwise(1.f, alg::eltwise_clip, po.alpha, po.beta); break;
    case Activation::Silu: ops.append_eltwise(1.f, alg::eltwise_swish, 1.f, 0.f); break;
    case Activation::Hardswish: ops.append_eltwise(1.f, alg::eltwise_hardswish, 0.f, 0.f); break;
    case Activation::Gelu: ops.append_eltwise(1.f, alg::eltwise_gelu_tanh, 0.f, 0.f); break;
    case Activation::Sigmoid: ops.append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f); break;
    case Activation::Tanh: ops.append_eltwise(1.f, alg::eltwise_tanh, 0.f, 0.f); break;
  }
  return ops;
}

}  // namespace

OnednnConv::OnednnConv(const ConvProblem& p, const float* weight, const float* bias, int threads, Direction direction,
                       const PostOps& post_ops)
    : s_(std::make_unique<State>()) {
  if (p.padding_mode != PadMode::Zeros) throw Error("onednn: only zero padding");
  p.validate();
  auto& s = *s_;
  s.threads = threads;
  omp_set_num_threads(threads);
  // OpenMP's threads one per core, as fastconv's are in the bench (tools/thread_pinning.hpp).
#pragma omp parallel num_threads(threads)
  pin_current_thread(omp_get_thread_num());
  const auto f32 = memory::data_type::f32;
  const memory::dims src_dims{p.batch, p.in_channels, p.in_height, p.in_width};
  const memory::dims dst_dims{p.batch, p.out_channels, p.out_height(), p.out_width()};
  const bool grouped = p.groups > 1;
  const memory::dims w_dims =
      grouped ? memory::dims{p.groups, p.out_channels / p.groups, p.in_channels / p.groups, p.kernel_height, p.kernel_width}
              : memory::dims{p.out_channels, p.in_channels, p.kernel_height, p.kernel_width};
  s.user_src = memory::desc(src_dims, f32, tag::nchw);
  s.user_dst = memory::desc(dst_dims, f32, tag::nchw);
  const memory::desc user_w(w_dims, f32, grouped ? tag::goihw : tag::oihw);
  const memory::desc bias_md({p.out_channels}, f32, tag::x);
  // oneDNN's dilation counts the gaps: PyTorch's dilation minus one.
  s.direction = direction;
  s.user_w = user_w;
  if (direction != Direction::Forward) {
    // The backward primitives take a forward_training primitive_desc as their hint.
    const memory::dims strides{p.stride_h, p.stride_w}, dil{p.dilation_h - 1, p.dilation_w - 1},
        pad_l{p.pad_top, p.pad_left}, pad_r{p.pad_bottom, p.pad_right};
    const memory::desc any_src(src_dims, f32, tag::any), any_w(w_dims, f32, tag::any), any_dst(dst_dims, f32, tag::any);
    dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, any_src,
                                       any_w, bias_md, any_dst, strides, dil, pad_l, pad_r);
    const dnnl::convolution_forward::primitive_desc hint(fd, s.engine);
    if (direction == Direction::BackwardData) {
      dnnl::convolution_backward_data::desc bd(dnnl::algorithm::convolution_direct, any_src, any_w, any_dst, strides,
                                               dil, pad_l, pad_r);
      dnnl::convolution_backward_data::primitive_desc pd(bd, s.engine, hint);
      s.bwd_data = dnnl::convolution_backward_data(pd);
      s.impl = pd.impl_info_str();
      memory w_user(user_w, s.engine, const_cast<float*>(weight));
      s.weights = memory(pd.weights_desc(), s.engine);
      dnnl::reorder(w_user, s.weights).execute(s.stream, w_user, s.weights);
      s.diff_dst = memory(pd.diff_dst_desc(), s.engine);
      s.src = memory(pd.diff_src_desc(), s.engine);  // dx in the primitive's layout
      s.reorder_diff_dst = make_reorder(s.engine, s.user_dst, pd.diff_dst_desc(), s.diff_dst_reorder);
      s.reorder_src = make_reorder(s.engine, pd.diff_src_desc(), s.user_src, s.src_reorder);
    } else {
      dnnl::convolution_backward_weights::desc bd(dnnl::algorithm::convolution_direct, any_src, any_w, bias_md,
                                                  any_dst, strides, dil, pad_l, pad_r);
      dnnl::convolution_backward_weights::primitive_desc pd(bd, s.engine, hint);
      s.bwd_weights = dnnl::convolution_backward_weights(pd);
      s.impl = pd.impl_info_str();
      s.src = memory(pd.src_desc(), s.engine);
      s.diff_dst = memory(pd.diff_dst_desc(), s.engine);
      s.diff_weights = memory(pd.diff_weights_desc(), s.engine);
      s.diff_bias = memory(pd.diff_bias_desc(), s.engine);
      s.reorder_src = make_reorder(s.engine, s.user_src, pd.src_desc(), s.src_reorder);
      s.reorder_diff_dst = make_reorder(s.engine, s.user_dst, pd.diff_dst_desc(), s.diff_dst_reorder);
      s.reorder_diff_weights = make_reorder(s.engine, pd.diff_weights_desc(), user_w, s.diff_weights_reorder);
    }
    s.stream.wait();
    return;
  }
  dnnl::convolution_forward::desc d(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
      memory::desc(src_dims, f32, tag::any), memory::desc(w_dims, f32, tag::any), bias_md,
      memory::desc(dst_dims, f32, tag::any), {p.stride_h, p.stride_w}, {p.dilation_h - 1, p.dilation_w - 1},
      {p.pad_top, p.pad_left}, {p.pad_bottom, p.pad_right});
  dnnl::primitive_attr attr;
  attr.set_post_ops(onednn_post_ops(post_ops));
  s.sum = post_ops.residual;
  s.pd = dnnl::convolution_forward::primitive_desc(d, attr, s.engine);
  s.conv = dnnl::convolution_forward(s.pd);
  s.impl = s.pd.impl_info_str();

  memory w_user(user_w, s.engine, const_cast<float*>(weight));
  s.weights = memory(s.pd.weights_desc(), s.engine);
  dnnl::reorder(w_user, s.weights).execute(s.stream, w_user, s.weights);
  s.bias = memory(bias_md, s.engine);
  float* b = static_cast<float*>(s.bias.get_data_handle());
  for (int64_t k = 0; k < p.out_channels; ++k) b[k] = bias ? bias[k] : 0.0f;
  s.reorder_src = s.pd.src_desc() != s.user_src;
  s.reorder_dst = s.pd.dst_desc() != s.user_dst;
  s.src = memory(s.pd.src_desc(), s.engine);
  s.dst = memory(s.pd.dst_desc(), s.engine);
  if (s.reorder_src)
    s.src_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(s.engine, s.user_src, s.engine, s.pd.src_desc()));
  if (s.reorder_dst) {
    s.dst_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(s.engine, s.pd.dst_desc(), s.engine, s.user_dst));
    if (s.sum)
      s.residual_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(s.engine, s.user_dst, s.engine, s.pd.dst_desc()));
  }
  s.dst_bytes = s.user_dst.get_size();
  s.stream.wait();
}

OnednnConv::~OnednnConv() = default;

void OnednnConv::run(const float* input, float* output, const float* residual) {
  auto& s = *s_;
  omp_set_num_threads(s.threads);
  if (s.direction == Direction::BackwardData) {
    memory dy(s.user_dst, s.engine, const_cast<float*>(input));
    memory dx(s.user_src, s.engine, output);
    if (s.reorder_diff_dst) s.diff_dst_reorder.execute(s.stream, {{DNNL_ARG_FROM, dy}, {DNNL_ARG_TO, s.diff_dst}});
    s.bwd_data.execute(s.stream, {{DNNL_ARG_DIFF_DST, s.reorder_diff_dst ? s.diff_dst : dy},
                                  {DNNL_ARG_WEIGHTS, s.weights},
                                  {DNNL_ARG_DIFF_SRC, s.reorder_src ? s.src : dx}});
    if (s.reorder_src) s.src_reorder.execute(s.stream, {{DNNL_ARG_FROM, s.src}, {DNNL_ARG_TO, dx}});
    s.stream.wait();
    return;
  }
  if (s.direction != Direction::Forward) throw Error("oneDNN baseline: run() is for forward and backward-data");
  memory in(s.user_src, s.engine, const_cast<float*>(input));
  memory out(s.user_dst, s.engine, output);
  memory& src = s.reorder_src ? s.src : in;
  memory& dst = s.reorder_dst ? s.dst : out;
  if (s.reorder_src) s.src_reorder.execute(s.stream, {{DNNL_ARG_FROM, in}, {DNNL_ARG_TO, s.src}});
  if (s.sum && residual) {  // the sum post-op adds what dst holds
    if (s.reorder_dst) {
      memory r(s.user_dst, s.engine, const_cast<float*>(residual));
      s.residual_reorder.execute(s.stream, {{DNNL_ARG_FROM, r}, {DNNL_ARG_TO, s.dst}});
    } else if (residual != output) {
      std::memcpy(output, residual, s.dst_bytes);
    }
  }
  s.conv.execute(s.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, s.weights}, {DNNL_ARG_BIAS, s.bias}, {DNNL_ARG_DST, dst}});
  if (s.reorder_dst) s.dst_reorder.execute(s.stream, {{DNNL_ARG_FROM, s.dst}, {DNNL_ARG_TO, out}});
  s.stream.wait();
}

void OnednnConv::run_compute_only(const float* input) {
  auto& s = *s_;
  if (s.direction != Direction::Forward) throw Error("oneDNN baseline: compute alone is measured forward only");
  omp_set_num_threads(s.threads);
  if (!s.compute_src_ready) {
    memory in(s.user_src, s.engine, const_cast<float*>(input));
    dnnl::reorder(in, s.src).execute(s.stream, in, s.src);  // a copy when the layouts agree
    s.compute_src_ready = true;
  }
  s.conv.execute(s.stream, {{DNNL_ARG_SRC, s.src}, {DNNL_ARG_WEIGHTS, s.weights}, {DNNL_ARG_BIAS, s.bias},
                            {DNNL_ARG_DST, s.dst}});
  s.stream.wait();
}

void OnednnConv::run_backward_weights(const float* input, const float* grad_output, float* grad_weight,
                                      float* grad_bias) {
  auto& s = *s_;
  if (s.direction != Direction::BackwardWeights) throw Error("oneDNN baseline: not a backward-weights primitive");
  omp_set_num_threads(s.threads);
  memory x(s.user_src, s.engine, const_cast<float*>(input));
  memory dy(s.user_dst, s.engine, const_cast<float*>(grad_output));
  memory dw(s.user_w, s.engine, grad_weight);
  if (s.reorder_src) s.src_reorder.execute(s.stream, {{DNNL_ARG_FROM, x}, {DNNL_ARG_TO, s.src}});
  if (s.reorder_diff_dst) s.diff_dst_reorder.execute(s.stream, {{DNNL_ARG_FROM, dy}, {DNNL_ARG_TO, s.diff_dst}});
  s.bwd_weights.execute(s.stream, {{DNNL_ARG_SRC, s.reorder_src ? s.src : x},
                                   {DNNL_ARG_DIFF_DST, s.reorder_diff_dst ? s.diff_dst : dy},
                                   {DNNL_ARG_DIFF_WEIGHTS, s.reorder_diff_weights ? s.diff_weights : dw},
                                   {DNNL_ARG_DIFF_BIAS, s.diff_bias}});
  if (s.reorder_diff_weights)
    s.diff_weights_reorder.execute(s.stream, {{DNNL_ARG_FROM, s.diff_weights}, {DNNL_ARG_TO, dw}});
  s.stream.wait();
  if (grad_bias) std::memcpy(grad_bias, s.diff_bias.get_data_handle(), s.diff_bias.get_desc().get_size());
}

std::string OnednnConv::implementation() const { return s_->impl; }

bool onednn_available() { return true; }

}  // namespace fastconv::tools
