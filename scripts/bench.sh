#!/bin/sh
# The main job: install what is missing, build (Release), run 'fastconv bench' on the built-in suite
# against oneDNN. Extra arguments go to 'fastconv bench' (e.g. --json bench.json --plot bench.svg).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
./build/bin/fastconv bench --baseline onednn "$@"
