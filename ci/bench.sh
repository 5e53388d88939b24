#!/usr/bin/env bash
# The nightly benchmark: every shipped suite and the real-size presets (random weights at
# bert-base, gpt2 and t5-base shapes), each workload in its own process with its peak RSS, on one
# backend. The JSON goes to OUT_DIR/bench.json for the dashboard (npm run dashboard -- --bench).
#   usage: ci/bench.sh BACKEND OUT_DIR
set -euo pipefail
backend=${1:?usage: ci/bench.sh BACKEND OUT_DIR}
out=${2:?usage: ci/bench.sh BACKEND OUT_DIR}
mkdir -p "$out"
npm run --silent bench -- --backend "$backend" --steps 40 --warmup 5 --size bert-base,gpt2,t5-base --out "$out/bench.json" > /dev/null
echo "bench: $out/bench.json"
