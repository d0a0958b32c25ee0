#!/usr/bin/env bash
# The cross-encoder benchmark behind the "Cross-encoder" section of BENCHMARKS.md:
# dredge-embed's CrossEncoder against sentence-transformers' CrossEncoder.predict on
# the CPU, same pairs (the first QUERIES SciFact test queries (in run order) x their BM25 top DEPTH
# passages), same batch size and maximum length, THREADS threads each, ROUNDS
# interleaved rounds; then the medians and the largest score difference.
#
# The model: no real cross-encoder can be downloaded here, so make_model.py builds
# one of the same architecture and cost as cross-encoder/ms-marco-MiniLM-L6-v2 from
# the real all-MiniLM-L6-v2 weights and a seeded random pooler + classifier, saved
# with sentence-transformers to MODEL (default /work/bench-ce, outside the repo).
#
# Environment: DREDGE_SHARED (/work/shared), ST_PYTHON (/work/venvs/st2/bin/python:
# torch + sentence-transformers), MODEL, QUERIES (50), DEPTH (20), BATCH (32),
# MAX_LENGTH (256), THREADS (2), ROUNDS (3), DREDGE (a built dredge binary; default:
# build the release one). Outputs in benches/out/rerank/.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${DREDGE_SHARED:-/work/shared}
ST_PYTHON=${ST_PYTHON:-/work/venvs/st2/bin/python}
MODEL=${MODEL:-/work/bench-ce}
DATA=$SHARED/data/scifact
QUERIES=${QUERIES:-50}
DEPTH=${DEPTH:-20}
BATCH=${BATCH:-32}
MAX_LENGTH=${MAX_LENGTH:-256}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
OUT=benches/out/rerank
mkdir -p $OUT

# DREDGE: a dredge binary to use instead of building the release one.
if [[ -z ${DREDGE:-} ]]; then
    cargo build --quiet --release -p dredge
    DREDGE=target/release/dredge
fi
cargo build --quiet --release -p dredge-embed --example rerank_bench
BENCH=target/release/examples/rerank_bench

[[ -f $MODEL/model.safetensors ]] || $ST_PYTHON benches/rerank/make_model.py "$SHARED/models/all-MiniLM-L6-v2" "$MODEL"
[[ -d $OUT/scifact-index ]] || $DREDGE index --corpus "$DATA" --out $OUT/scifact-index
$DREDGE search --index $OUT/scifact-index --queries "$DATA" --split test -k "$DEPTH" --out $OUT/bm25.trec
python3 benches/rerank/make_pairs.py "$DATA" $OUT/bm25.trec "$QUERIES" "$DEPTH" $OUT/pairs.jsonl

machine() {
    echo "# $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
}
machine
: > $OUT/speed.jsonl
for round in $(seq "$ROUNDS"); do
    RAYON_NUM_THREADS=$THREADS $BENCH "$MODEL" $OUT/pairs.jsonl "$BATCH" "$MAX_LENGTH" $OUT/dredge.scores \
        | tee -a $OUT/speed.jsonl
    OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS $ST_PYTHON benches/rerank/st_rerank.py "$MODEL" \
        $OUT/pairs.jsonl "$BATCH" "$MAX_LENGTH" $OUT/st.scores "$THREADS" 2>/dev/null \
        | tee -a $OUT/speed.jsonl
done
machine
python3 benches/rerank/summary.py $OUT/speed.jsonl $OUT/dredge.scores $OUT/st.scores

# The same reranking through the command line, and the first lines of its run.
RAYON_NUM_THREADS=$THREADS $DREDGE rerank --index $OUT/scifact-index --queries "$DATA" --run $OUT/bm25.trec \
    --model "$MODEL" -k "$DEPTH" --batch-size "$BATCH" --max-length "$MAX_LENGTH" --out $OUT/reranked.trec
