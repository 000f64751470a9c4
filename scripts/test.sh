#!/bin/sh
# Install what is missing, build (Release), run every test.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
