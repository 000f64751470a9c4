// Padding modes other than zeros, for every algorithm: the input copied with its border filled as
// the mode says (reflect, replicate, circular) into the workspace, then the algorithm runs on the
// copy with no padding. The copy's bytes and traffic count in the plan's workspace and cost.
#pragma once

#include <memory>

#include "core/algorithm.hpp"

namespace fastconv::detail {

// The problem the inner implementation solves: the padded input, no padding, zeros mode.
Geometry padded_copy_geometry(const Geometry& g);
// Workspace of the padded copy alone.
std::size_t padded_copy_bytes(const Geometry& g);
// Wraps an implementation proposed for padded_copy_geometry(g).
std::unique_ptr<ConvImpl> wrap_padded_copy(const Geometry& g, std::unique_ptr<ConvImpl> inner);

}  // namespace fastconv::detail
