// Uses the names of design section 2 through the installed headers and library only.
#include <fastconv/fastconv.hpp>

#include <cstdio>
#include <vector>

int main() {
  fastconv::ConvProblem p;
  p.in_channels = 3, p.in_height = p.in_width = 5, p.out_channels = 2, p.kernel_height = p.kernel_width = 3;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  std::vector<float> x(p.input_elements(), 1.0f), w(p.weight_elements(), 1.0f), b{0.5f, -0.5f}, y(p.output_elements());
  fastconv::PlanOptions options;
  options.algorithm = fastconv::Algorithm::Auto;
  options.mode = fastconv::PlanMode::Estimate;
  const fastconv::Plan plan = fastconv::Plan::create(p, options);
  const fastconv::PackedWeights packed = plan.pack_weights(w.data(), b.data());
  plan.execute(x.data(), packed, y.data());
  fastconv::conv2d(p, x.data(), w.data(), b.data(), y.data());
  const std::vector<fastconv::Candidate> ranking = fastconv::find_algorithms(p);
  // Centre output: 3 channels x 9 ones + 0.5 = 27.5
  const float centre = y[2 * 5 + 2];
  std::printf("%s %s centre=%g candidates=%zu\n", fastconv::to_string(plan.algorithm()).c_str(),
              plan.implementation().c_str(), centre, ranking.size());
  try {
    p.groups = 2;
    fastconv::Plan::create(p);
    return 1;
  } catch (const fastconv::Error& e) {
    std::printf("error as expected: %s\n", e.what());
  }
  return centre == 27.5f ? 0 : 1;
}
