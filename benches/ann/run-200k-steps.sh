#!/usr/bin/env bash
# The 200k x 384 run as it was done on 2026-11-29 (see BENCHMARKS.md "Dense (ANN)"):
# run.sh's steps in an order that gets hnswlib vs dredge first on a shared 2-core box.
# Builds hnswlib, dredge; search round 1 (hnswlib, dredge + exact, faiss flat);
# faiss HNSW build; round 2 (hnswlib, dredge + exact, faiss HNSW, faiss flat).
# Logs the load average before each step. Assumes data/<rows> exists (run.sh or peers.py gen).
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-200000}; res=benches/out/ann/results-$rows.jsonl
source benches/ann/common.sh
efs=10,16,24,32,48,64,96,128,192,256,384,512,768,1024
common=(--queries "$data/queries.npy" --gt "$data/gt.npy" --efs "$efs" --threads "1,$(nproc)")
: > "$res"; cat "$data.gen.json" >> "$res"
echo "dredge bench driver: $bench ($(git rev-parse --short HEAD))"
step "${py[@]}" hnswlib-build --base "$data/base.npy" --index "$out/hnswlib-$rows.bin" --m 16 --efc 200
step "$bench" build --base "$data/base.npy" --index "$out/dredge-$rows" --m 16 --efc 200
echo "== round 1"
step "${py[@]}" hnswlib-search --index "$out/hnswlib-$rows.bin" "${common[@]}"
step "$bench" search --index "$out/dredge-$rows" "${common[@]}" --exact
step "${py[@]}" faiss-flat --base "$data/base.npy" "${common[@]}"
step "${py[@]}" faiss-hnsw-build --base "$data/base.npy" --index "$out/faiss-hnsw-$rows.bin" --m 16 --efc 200
echo "== round 2"
step "${py[@]}" hnswlib-search --index "$out/hnswlib-$rows.bin" "${common[@]}"
step "$bench" search --index "$out/dredge-$rows" "${common[@]}" --exact
step "${py[@]}" faiss-hnsw-search --index "$out/faiss-hnsw-$rows.bin" "${common[@]}"
step "${py[@]}" faiss-flat --base "$data/base.npy" "${common[@]}"
echo "## $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg): done"
"${py[@]}" report "$res" | tee "$out/report-$rows.md"
