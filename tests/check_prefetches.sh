#!/bin/sh
# GCC (10 and later, C++ at -O1 and up) deletes a loop whose body is nothing but __builtin_prefetch
# calls: the Winograd transforms' prefetches had compiled to no instruction for ten sessions before a
# disassembly found it (src/core/prefetch.hpp). This checks the linked binary: every instantiation of
# the 2-D Winograd input and output transforms must hold prefetch instructions.
# Usage: check_prefetches.sh <a binary linked with fastconv>
set -eu
bin=$1
objdump -dC --no-show-raw-insn "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ {
    name = ""
    if ($0 ~ /winograd_(input|output)_transform<xsimd::/) { name = $0; seen[name] = 0; order[++n] = name }
    next
  }
  name != "" && /prefetch/ { seen[name]++ }
  END {
    if (n == 0) { print "no winograd_input_transform / winograd_output_transform in the binary (inlined? update this check)"; exit 1 }
    bad = 0
    for (i = 1; i <= n; i++) {
      if (seen[order[i]] == 0) { print "no prefetch instruction in " order[i]; bad = 1 }
    }
    if (!bad) print "prefetches present in " n " Winograd transform functions"
    exit bad
  }'
