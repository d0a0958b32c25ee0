#!/usr/bin/env bash
# Dense ANN benchmark: dredge-ann (exact + HNSW) side by side with hnswlib and faiss
# (IndexHNSWFlat, IndexFlatIP) on the same seeded, clustered, L2-normalised vectors.
#
# usage: benches/ann/run.sh [ROWS ...]      (from anywhere; default: 50000 200000)
#   env: DIM (384), QUERIES (1000), SPREAD (2.0), M (16), EFC (200), ROUNDS (2)
#
# Every phase runs in its own process and reports its peak RSS; searches run
# ROUNDS times, interleaved across engines, and the report keeps each point's best.
# Outputs: benches/out/ann/results-<rows>.jsonl and benches/out/ann/report.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/benches/out/ann
venv=$root/benches/.venv-ann
dim=${DIM:-384}
queries=${QUERIES:-1000}
spread=${SPREAD:-2.0}
m=${M:-16}
efc=${EFC:-200}
rounds=${ROUNDS:-2}
efs=10,16,24,32,48,64,96,128,192,256,384,512,768,1024
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(50000 200000)
mkdir -p "$out/data"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import hnswlib, faiss, numpy" 2>/dev/null || "$venv/bin/pip" install --quiet numpy hnswlib faiss-cpu
py=("$venv/bin/python" "$root/benches/ann/peers.py")
bench=$(cargo build --release -p dredge-ann --example ann_bench --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "ann_bench":
        print(m["executable"])')
echo "dredge bench driver: $bench"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"

for rows in "${sizes[@]}"; do
  data=$out/data/$rows
  res=$out/results-$rows.jsonl
  if [ ! -f "$data/gt.npy" ] || [ ! -f "$data.gen.json" ]; then
    "${py[@]}" gen --rows "$rows" --queries "$queries" --dim "$dim" --spread "$spread" --out "$data" | tee "$data.gen.json"
  fi
  : > "$res"
  cat "$data.gen.json" >> "$res"
  common=(--queries "$data/queries.npy" --gt "$data/gt.npy" --efs "$efs" --threads "1,$(nproc)")
  echo "== $rows x $dim: builds (M=$m, ef_construction=$efc, all threads)"
  "${py[@]}" hnswlib-build --base "$data/base.npy" --index "$out/hnswlib-$rows.bin" --m "$m" --efc "$efc" | tee -a "$res"
  "$bench" build --base "$data/base.npy" --index "$out/dredge-$rows" --m "$m" --efc "$efc" | tee -a "$res"
  "${py[@]}" faiss-hnsw-build --base "$data/base.npy" --index "$out/faiss-hnsw-$rows.bin" --m "$m" --efc "$efc" | tee -a "$res"
  for round in $(seq "$rounds"); do
    echo "== $rows x $dim: searches, round $round"
    "${py[@]}" hnswlib-search --index "$out/hnswlib-$rows.bin" "${common[@]}" | tee -a "$res"
    "$bench" search --index "$out/dredge-$rows" "${common[@]}" --exact | tee -a "$res"
    "${py[@]}" faiss-hnsw-search --index "$out/faiss-hnsw-$rows.bin" "${common[@]}" | tee -a "$res"
    "${py[@]}" faiss-flat --base "$data/base.npy" "${common[@]}" | tee -a "$res"
  done
done
"${py[@]}" report "$out"/results-*.jsonl | tee "$out/report.md"
