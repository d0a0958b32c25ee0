#!/usr/bin/env bash
# One more build pair at ROWS (default 200000), dredge first then hnswlib, into
# benches/out/ann/results-<rows>-repeat.jsonl, with the load average before each.
# BENCH must name the ann bench driver (cargo build --release -p dredge-ann --example ann_bench: target/release/examples/ann_bench).
# TAG=<name> writes results-<rows>-repeat-<name>.jsonl instead (keeps earlier runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-200000}; res=benches/out/ann/results-$rows-repeat${TAG:+-$TAG}.jsonl
source benches/ann/common.sh
step "$bench" build --base "$data/base.npy" --index "$out/dredge-$rows-b" --m 16 --efc 200
step "${py[@]}" hnswlib-build --base "$data/base.npy" --index "$out/hnswlib-$rows-b.bin" --m 16 --efc 200
echo "## $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg): done"
