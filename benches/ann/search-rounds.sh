#!/usr/bin/env bash
# Search only, on indexes already built by run-*-steps.sh: ROUNDS rounds (default 3),
# each dredge then hnswlib, on the same queries, into
# benches/out/ann/results-<rows>-search-rounds.jsonl. Used for the quiet-box reruns in
# BENCHMARKS.md ("Dense (ANN)": 1M with EFS=32,64,128,256 THREADS=1; 200k with
# EFS=32,48,64,96,128 THREADS=1,2 and then 8 rounds with EFS=48,64,96,128 THREADS=1).
# TAG=<name> writes results-<rows>-search-rounds-<name>.jsonl instead (keeps earlier runs).
#   BENCH=<ann bench driver> [TAG=..] benches/ann/search-rounds.sh ROWS [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:?rows}; rounds=${2:-3}
res=benches/out/ann/results-$rows-search-rounds${TAG:+-$TAG}.jsonl
source benches/ann/common.sh
common=(--queries "$data/queries.npy" --gt "$data/gt.npy" --efs "${EFS:-32,64,128,256}" --threads "${THREADS:-1}")
: > "$res"
for r in $(seq "$rounds"); do
  step "$bench" search --index "$out/dredge-$rows" "${common[@]}"
  step "${py[@]}" hnswlib-search --index "$out/hnswlib-$rows.bin" "${common[@]}"
done
"$root/benches/.venv-ann/bin/python" benches/ann/rounds.py "$res"
