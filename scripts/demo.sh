#!/usr/bin/env bash
# The README's main job: install what is missing, build, and run vfmig.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/gcc -j "$(nproc)" >/dev/null
exec bash scripts/demo-run.sh build/gcc/bin/vfmig
