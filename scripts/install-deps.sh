#!/bin/sh
# Installs what fastconv needs from Debian 12's archive, as root; only what is missing (so a machine
# that has everything needs no network). --tests adds what the tests use (PyTorch as an independent
# reference, NumPy, Python).
set -eu
packages="g++ cmake make pkg-config libxsimd-dev libtbb-dev libfftw3-dev libbenchmark-dev catch2 libdnnl-dev libopenblas-dev"
if [ "${1:-}" = "--tests" ]; then
  packages="$packages python3 python3-numpy python3-torch"
fi
if [ "${1:-}" = "--ci" ]; then  # .ci/run: clang and its sanitizer and libFuzzer runtimes
  packages="$packages clang libclang-rt-14-dev"
fi
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y $missing
fi
