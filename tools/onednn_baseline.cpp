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
  std::size_t dst_bytes = 0;
  int threads = 1;
  std::string impl;
};

namespace {

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

OnednnConv::OnednnConv(const ConvProblem& p, const float* weight, const float* bias, int threads,
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

std::string OnednnConv::implementation() const { return s_->impl; }

bool onednn_available() { return true; }

}  // namespace fastconv::tools
