#!/bin/sh
# Installs what fastconv needs from Debian 12's archive, as root; only what is missing (so a machine
# that has everything needs no network). Always: the Python package's build (python3-dev, pybind11)
# and what its model bench runs on (NumPy, PyTorch, torchvision, tqdm, matplotlib). --tests adds
# pytest (PyTorch is also the tests' independent reference).
set -eu
packages="g++ cmake make pkg-config libxsimd-dev libtbb-dev libfftw3-dev libbenchmark-dev catch2 libdnnl-dev libopenblas-dev"
packages="$packages python3 python3-dev pybind11-dev python3-numpy python3-torch python3-torchvision python3-tqdm python3-matplotlib"
if [ "${1:-}" = "--tests" ]; then
  packages="$packages python3-pytest"
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
