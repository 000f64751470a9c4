// Built when oneDNN was not found: the baseline reports itself unavailable.
#include "onednn_baseline.hpp"

namespace fastconv::tools {

struct OnednnConv::State {};
OnednnConv::OnednnConv(const ConvProblem&, const float*, const float*, int, Direction, const PostOps&) {
  throw Error("this fastconv was built without oneDNN (install libdnnl-dev and rebuild)");
}
OnednnConv::~OnednnConv() = default;
void OnednnConv::run(const float*, float*, const float*) {}
void OnednnConv::run_compute_only(const float*) {}
void OnednnConv::run_backward_weights(const float*, const float*, float*, float*) {}
std::string OnednnConv::implementation() const { return ""; }
bool onednn_available() { return false; }

}  // namespace fastconv::tools
