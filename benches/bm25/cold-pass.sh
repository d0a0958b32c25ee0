#!/usr/bin/env bash
# One cold pass over SciFact's 1,109 queries (every term new to dredge's cache), k=10 and k=1000,
# 1 thread: dredge against bm25s (numba), 5 rounds interleaved, on the indexes that
# benches/bm25/run.sh --sizes '' leaves in benches/out/bm25/scifact (BENCHMARKS.md, run E).
set -euo pipefail
cd "$(dirname "$0")/../.."
q=${DREDGE_SHARED:-/work/shared}/data/scifact/queries.jsonl
py=benches/.venv-bm25/bin/python
for r in 1 2 3 4 5; do
  for k in 10 1000; do
    d=$(target/release/dredge search --index benches/out/bm25/scifact/dredge/index --queries $q -k $k --threads 1 --out /tmp/cold.trec 2>&1 | grep -o '[0-9]* queries/s' | cut -d' ' -f1)
    b=$($py benches/bm25/bm25s_bench.py search --index benches/out/bm25/scifact/bm25s-numpy/index --queries $q --k $k --threads 1 --backend numba | python3 -c "import sys,json; print(round(json.loads(sys.stdin.read())['queries_per_s']))")
    echo "round $r k=$k dredge $d bm25s-numba $b ratio $(python3 -c "print(round($d/$b,2))")"
  done
done
