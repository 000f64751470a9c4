#!/bin/sh
# GCC's inliner gives up inside the largest depthwise strips unless told (7x7 with 13-16 output rows,
# 5x5 with 15-16): it then calls some rows' FMAs out of line with the accumulators in memory and a
# vzeroupper per call, 2-3x the time (src/direct/direct_kernels_impl.hpp). This checks the linked
# binary: no depthwise strip kernel calls anything but the out-of-line activations (rare post-ops).
# Usage: check_inlined_taps.sh <a binary linked with fastconv>
set -eu
bin=$1
objdump -dC --no-show-raw-insn "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ {
    name = ""
    if ($0 ~ /dw_strip(_in_place)?<xsimd::/) { name = $0; n++ }
    next
  }
  name != "" && /call/ && !/activation_out_of_line/ { print "out-of-line call in " name ":" $0; bad = 1 }
  END {
    if (n == 0) { print "no dw_strip kernel in the binary (inlined into a table? update this check)"; exit 1 }
    if (!bad) print n " depthwise strip kernels, no out-of-line calls"
    exit bad
  }'
