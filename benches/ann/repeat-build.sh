#!/usr/bin/env bash
# One more build pair at ROWS (default 200000), dredge first then hnswlib, into
# benches/out/ann/results-<rows>-repeat.jsonl, with the load average before each.
# BENCH must name the ann bench driver (cargo bench -p dredge-ann --bench ann --no-run).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD; out=$root/benches/out/ann; rows=${1:-200000}; data=$out/data/$rows
res=$out/results-$rows-repeat.jsonl
py=("$root/benches/.venv-ann/bin/python" "$root/benches/ann/peers.py")
bench=${BENCH:?set BENCH to the ann bench driver}
step() { echo "## $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg): $*"; "$@" | tee -a "$res"; }
step "$bench" build --base "$data/base.npy" --index "$out/dredge-$rows-b" --m 16 --efc 200
step "${py[@]}" hnswlib-build --base "$data/base.npy" --index "$out/hnswlib-$rows-b.bin" --m 16 --efc 200
echo "## $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg): done"
