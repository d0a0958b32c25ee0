#!/usr/bin/env bash
# The 1M x 384 run as done on 2026-11-29 (BENCHMARKS.md "Dense (ANN)", "1M x 384, once"):
# gen (200k settings), dredge build, a short dredge search sweep on 1 thread, then,
# only if DEADLINE (epoch seconds) leaves >= 15 min, the hnswlib build and the same sweep.
# Logs the load average before each step.  BENCH=<ann bench driver> required.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000}; res=benches/out/ann/results-$rows.jsonl
source benches/ann/common.sh
efs=${EFS:-32,64,128,256}
common=(--queries "$data/queries.npy" --gt "$data/gt.npy" --efs "$efs" --threads 1)
echo "dredge bench driver: $bench ($(git rev-parse --short HEAD))"
if [ ! -f "$data/gt.npy" ] || [ ! -f "$data.gen.json" ]; then
  step "${py[@]}" gen --rows "$rows" --queries 1000 --dim 384 --spread 2.0 --seed 7 --out "$data"
  tail -n1 "$res" > "$data.gen.json"
else
  : > "$res"; cat "$data.gen.json" >> "$res"
fi
step /usr/bin/time -v "$bench" build --base "$data/base.npy" --index "$out/dredge-$rows" --m 16 --efc 200
du -sb "$out/dredge-$rows" "$out/dredge-$rows"/*
step "$bench" search --index "$out/dredge-$rows" "${common[@]}"
if [ -n "${DEADLINE:-}" ] && [ $(( DEADLINE - $(date +%s) )) -lt 900 ]; then
  echo "## $(date -u +%H:%M:%S) under 15 min left: hnswlib skipped"; exit 0
fi
step "${py[@]}" hnswlib-build --base "$data/base.npy" --index "$out/hnswlib-$rows.bin" --m 16 --efc 200
ls -l "$out/hnswlib-$rows.bin"
step "${py[@]}" hnswlib-search --index "$out/hnswlib-$rows.bin" "${common[@]}"
echo "## $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg): done"
