// A dilated convolution at stride 1 as dil_h x dil_w undilated ones. The outputs whose row is a
// (mod dil_h) and column c (mod dil_w) read only the input pixels of one row and column residue:
// gathering that input phase (its padding written as zeros) turns the problem into a plain "valid"
// convolution with the same kernel, which algorithms without dilation (Winograd) can run.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/algorithm.hpp"

namespace fastconv::detail {

// Builds the implementation of one undilated phase problem, or returns null and sets *why.
using PhaseImplFactory = std::function<std::unique_ptr<ConvImpl>(const Geometry&, const PlanContext&, std::string* why)>;

// The phase decomposition of a stride-1 dilated problem, each phase run by an implementation from
// `make`; null (and *why) when a phase cannot be built or the gather buffers do not fit the budget.
// Its name is the phases' name with "_dilated" after `family` (e.g. "winograd_f4x4_3x3"). The phase
// outputs are padded to multiples of `tile` (the phase algorithm's output tile).
std::unique_ptr<ConvImpl> make_dilated_by_phases(const Geometry& g, const PlanContext& ctx, const std::string& family,
                                                 const PhaseImplFactory& make, std::string* why, int64_t tile = 1);

}  // namespace fastconv::detail
