#!/usr/bin/env bash
# Single-query latency of dense search by text (issue 17 item 4): dredge's Python
# package (`Index.search(text, mode="dense", exact=True)`: the index's own encoder, then
# exact search) against sentence-transformers `encode` + faiss IndexFlatIP, one query at
# a time over the first LIMIT SciFact queries, ROUNDS interleaved rounds, THREADS
# threads each; the model and index are loaded before the timed queries.
#
#   benches/query/run.sh INDEX      INDEX: a SciFact index built with --model (e.g.
#                                   benches/out/embed/scifact-int8-index from
#                                   benches/embed/run.sh int8)
#
# Environment: DREDGE_SHARED (/work/shared), LIMIT (1000), ROUNDS (2), THREADS (2),
# PRECISIONS (dredge's query precisions, "fp32 int8"), PY (a python with dredge
# installed: /work/venvs/py/bin/python), ST_PY (a python with sentence-transformers and
# faiss-cpu: /work/venvs/st2/bin/python). Output: benches/out/query/latency.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
INDEX=${1:?usage: benches/query/run.sh INDEX}
SHARED=${DREDGE_SHARED:-/work/shared}
MODEL=$SHARED/models/all-MiniLM-L6-v2
DATA=$SHARED/data/scifact
REF=$DATA/embeddings/all-MiniLM-L6-v2
LIMIT=${LIMIT:-1000}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
PRECISIONS=${PRECISIONS:-fp32 int8}
PY=${PY:-/work/venvs/py/bin/python}
ST_PY=${ST_PY:-/work/venvs/st2/bin/python}
OUT=benches/out/query
mkdir -p $OUT
: > $OUT/latency.jsonl
machine() {
    echo "# $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
}
machine
for round in $(seq "$ROUNDS"); do
    for precision in $PRECISIONS; do
        RAYON_NUM_THREADS=$THREADS $PY benches/query/latency.py dredge --index "$INDEX" \
            --precision "$precision" --queries "$DATA/queries.jsonl" --limit "$LIMIT" --threads "$THREADS" \
            | sed "s/^{/{\"round\": $round, /" | tee -a $OUT/latency.jsonl
    done
    OMP_NUM_THREADS=$THREADS $ST_PY benches/query/latency.py st --model "$MODEL" \
        --corpus-vectors "$REF/corpus.npy" --corpus-ids "$REF/corpus.ids.txt" \
        --queries "$DATA/queries.jsonl" --limit "$LIMIT" --threads "$THREADS" 2>/dev/null \
        | sed "s/^{/{\"round\": $round, /" | tee -a $OUT/latency.jsonl
done
machine
python3 - $OUT/latency.jsonl <<'PY'
import json, statistics, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = defaultdict(list)
for r in rows:
    by[r["side"]].append(r)
print("\nmedians over %d rounds, %d queries each:" % (max(r["round"] for r in rows), rows[0]["queries"]))
for side, rs in by.items():
    m = {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "cpu_ms_per_query")}
    print("  %-72s p50 %6.2f ms  p90 %6.2f  p99 %6.2f  mean %6.2f  CPU %6.2f ms/query" % (side, m["p50_ms"], m["p90_ms"], m["p99_ms"], m["mean_ms"], m["cpu_ms_per_query"]))
PY
