#!/usr/bin/env bash
# The encoder benchmark behind the "Encoder" section of BENCHMARKS.md.
#
#   benches/embed/run.sh            quality, then speed
#   benches/embed/run.sh quality    SciFact corpus + queries with `dredge embed`: cosine to
#                                   the shared sentence-transformers vectors, nDCG@10 of
#                                   exact search (dredge eval), for ours and the reference
#   benches/embed/run.sh int8       (and `bf16`, the same with --precision bf16)
#                                   SciFact corpus + queries with `dredge embed --precision
#                                   int8`: cosine to the float32 vectors (the shared
#                                   sentence-transformers ones, which dredge's fp32 equals),
#                                   nDCG@10 of exact search; then `dredge index --model
#                                   --precision int8` and `dredge eval --dataset` (queries
#                                   encoded by the index, in its precision)
#   benches/embed/run.sh speed      candle's and torch's GEMM rate, then ROUNDS interleaved
#                                   rounds of dredge-embed (each kernel path in KERNELS) and
#                                   sentence-transformers (each backend in BACKENDS: CPU
#                                   torch, its ONNX float32 backend, its dynamically
#                                   quantized int8 ONNX model; in a throwaway venv) on the
#                                   first LIMIT SciFact passages, THREADS threads each, then
#                                   the medians side by side (summary.py)
#   benches/embed/run.sh latency    the encoder alone on queries one at a time (the first
#                                   LIMIT SciFact queries): dredge-embed per kernel path and
#                                   precision against each backend in BACKENDS, ROUNDS
#                                   interleaved rounds (item 4 end to end, search included:
#                                   benches/query/run.sh)
#
# Environment: DREDGE_SHARED (default /work/shared), DREDGE (a dredge binary to use
# instead of building target/release/dredge), LIMIT (1000), ROUNDS (2),
# BATCHES ("8 32"), THREADS (2), KERNELS (dredge paths, e.g. "avx2 avx512"; default: the
# widest this CPU has), PRECISIONS (dredge's, "fp32 int8"), BACKENDS ("torch onnx
# onnx-int8"; also `torch-avx2`: torch held to its AVX2 code, the nearest this machine
# gets to an AVX2-only CPU, and `ort`/`ort-int8`: onnxruntime without optimum, see
# st_bench.py), VENV (benches/.venv-st). For a machine without cargo or network (speed
# only): MODEL and CORPUS (a model folder and a corpus.jsonl instead of the shared ones),
# QUERIES (for latency), EMBED_BENCH (a built embed_bench), ST_PY (a python that has sentence-transformers
# and onnxruntime), PIN (a taskset CPU list for every timed process).
# Outputs go to benches/out/embed/ (not in git); the speed lines to speed.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
SHARED=${DREDGE_SHARED:-/work/shared}
MODEL=${MODEL:-$SHARED/models/all-MiniLM-L6-v2}
DATA=$SHARED/data/scifact
REF=$DATA/embeddings/all-MiniLM-L6-v2
CORPUS=${CORPUS:-$DATA/corpus.jsonl}
QUERIES=${QUERIES:-$DATA/queries.jsonl}
OUT=benches/out/embed
LIMIT=${LIMIT:-1000}
ROUNDS=${ROUNDS:-2}
BATCHES=${BATCHES:-8 32}
THREADS=${THREADS:-2}
KERNELS=${KERNELS:-}
PRECISIONS=${PRECISIONS:-fp32 int8}
BACKENDS=${BACKENDS:-torch onnx onnx-int8}
VENV=${VENV:-benches/.venv-st}
mkdir -p "$OUT"
[[ $what == all || $what == speed ]] && : > $OUT/speed.jsonl

if [[ -z ${DREDGE:-} ]]; then
    [[ $what == all || $what == quality || $what == int8 || $what == bf16 ]] && cargo build --quiet --release -p dredge
    DREDGE=target/release/dredge
fi
if [[ -z ${EMBED_BENCH:-} ]]; then
    cargo build --quiet --release -p dredge-embed --example embed_bench
fi
BENCH=${EMBED_BENCH:-target/release/examples/embed_bench}
PY=${ST_PY:-$VENV/bin/python}
# PIN: a CPU list every timed process is held to (taskset), e.g. "0,2" for two cores.
PIN_CMD=()
[[ -n ${PIN:-} ]] && PIN_CMD=(taskset -c "$PIN")

# caps: the environment of a peer's run; `torch-avx2` holds torch to its AVX2 code
# (its own kernels, MKL's GEMM and oneDNN).
backend_caps() {
    caps=()
    if [[ $1 == torch-avx2 ]]; then
        caps=(ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2)
    fi
}

machine() {
    local flags
    flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512_vnni|avx512_bf16|avx_vnni' | tr '\n' ' ')
    echo "# $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), flags: ${flags}load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
}

if [[ $what == all || $what == quality ]]; then
    machine
    /usr/bin/time -f "# dredge embed corpus: %e s wall, %U s user + %S s system" \
        $DREDGE embed --model "$MODEL" --input "$DATA" --out $OUT/scifact.corpus.npy
    $DREDGE embed --model "$MODEL" --input "$DATA" --kind query --out $OUT/scifact.queries.npy
    echo "# cosine to the shared sentence-transformers vectors: corpus, queries"
    $BENCH compare $OUT/scifact.corpus.npy $OUT/scifact.corpus.ids.txt "$REF/corpus.npy" "$REF/corpus.ids.txt"
    $BENCH compare $OUT/scifact.queries.npy $OUT/scifact.queries.ids.txt "$REF/queries.npy" "$REF/queries.ids.txt"
    $BENCH search $OUT/scifact.corpus.npy $OUT/scifact.corpus.ids.txt \
        $OUT/scifact.queries.npy $OUT/scifact.queries.ids.txt $OUT/scifact.dredge.trec
    $BENCH search "$REF/corpus.npy" "$REF/corpus.ids.txt" "$REF/queries.npy" "$REF/queries.ids.txt" \
        $OUT/scifact.reference.trec
    for run in dredge reference; do
        echo "# exact search, SciFact test, $run vectors"
        $DREDGE eval --qrels "$DATA" --split test --run $OUT/scifact.$run.trec -m ndcg@10,recall@100 2>/dev/null
        echo
    done
fi

for P in int8 bf16; do
[[ $what == all || $what == "$P" ]] || continue
{
    machine
    /usr/bin/time -f "# dredge embed --precision $P corpus: %e s wall, %U s user + %S s system" \
        $DREDGE embed --model "$MODEL" --input "$DATA" --precision $P --out $OUT/scifact.$P.corpus.npy
    $DREDGE embed --model "$MODEL" --input "$DATA" --kind query --precision $P \
        --out $OUT/scifact.$P.queries.npy
    echo "# cosine of $P to the float32 vectors: corpus, queries"
    $BENCH compare $OUT/scifact.$P.corpus.npy $OUT/scifact.$P.corpus.ids.txt "$REF/corpus.npy" "$REF/corpus.ids.txt"
    $BENCH compare $OUT/scifact.$P.queries.npy $OUT/scifact.$P.queries.ids.txt "$REF/queries.npy" "$REF/queries.ids.txt"
    $BENCH search $OUT/scifact.$P.corpus.npy $OUT/scifact.$P.corpus.ids.txt \
        $OUT/scifact.$P.queries.npy $OUT/scifact.$P.queries.ids.txt $OUT/scifact.$P.trec
    $BENCH search "$REF/corpus.npy" "$REF/corpus.ids.txt" "$REF/queries.npy" "$REF/queries.ids.txt" \
        $OUT/scifact.reference.trec
    for run in $P reference; do
        echo "# exact search, SciFact test, $run vectors"
        $DREDGE eval --qrels "$DATA" --split test --run $OUT/scifact.$run.trec -m ndcg@10,recall@100 2>/dev/null
        echo
    done
    machine
    /usr/bin/time -f "# dredge index --model --precision $P: %e s wall, %U s user + %S s system" \
        $DREDGE index --corpus "$DATA" --model "$MODEL" --precision $P --out $OUT/scifact-$P-index --overwrite
    echo "# dredge eval --dataset, the $P index (queries encoded in $P by the index)"
    $DREDGE eval --dataset "$DATA" --index $OUT/scifact-$P-index --mode dense --exact -m ndcg@10,recall@100
    machine
}
done

if [[ $what == all || $what == speed ]]; then
    if [[ -z ${ST_PY:-} ]] && ! $VENV/bin/python -c "import sentence_transformers, torch, onnxruntime, optimum" 2>/dev/null; then
        python3 -m venv $VENV
        # The CPU-only torch index when reachable, else PyPI's torch (CUDA build, runs on CPU).
        $VENV/bin/pip install --quiet --index-url https://download.pytorch.org/whl/cpu torch \
            || echo "# (CPU torch index unreachable: PyPI's torch)"
        $VENV/bin/pip install --quiet "sentence-transformers[onnx]" numpy
    fi
    machine
    $BENCH gemm
    for round in $(seq "$ROUNDS"); do
        for batch in $BATCHES; do
            for kernels in ${KERNELS:-default}; do
                if [[ $kernels == default ]]; then unset DREDGE_KERNELS; else export DREDGE_KERNELS=$kernels; fi
                for precision in $PRECISIONS; do
                    RAYON_NUM_THREADS=$THREADS "${PIN_CMD[@]}" $BENCH encode "$MODEL" "$CORPUS" "$LIMIT" "$batch" "$precision" \
                        | sed "s/^{/{\"round\": $round, /" | tee -a $OUT/speed.jsonl
                done
            done
            unset DREDGE_KERNELS
            for backend in $BACKENDS; do
                backend_caps "$backend"
                backend=${backend%-avx2}
                env "${caps[@]}" OMP_NUM_THREADS=$THREADS "${PIN_CMD[@]}" $PY benches/embed/st_bench.py --model "$MODEL" \
                    --corpus "$CORPUS" --limit "$LIMIT" --batch-size "$batch" \
                    --threads "$THREADS" --backend "$backend" --work $OUT/st-models 2>/dev/null \
                    | sed "s/^{/{\"round\": $round, /" | tee -a $OUT/speed.jsonl
            done
        done
    done
    machine
    python3 benches/embed/summary.py $OUT/speed.jsonl
fi

if [[ $what == latency ]]; then
    : > $OUT/latency.jsonl
    machine
    for round in $(seq "$ROUNDS"); do
        for kernels in ${KERNELS:-default}; do
            if [[ $kernels == default ]]; then unset DREDGE_KERNELS; else export DREDGE_KERNELS=$kernels; fi
            for precision in $PRECISIONS; do
                RAYON_NUM_THREADS=$THREADS "${PIN_CMD[@]}" $BENCH latency "$MODEL" "$QUERIES" "$LIMIT" "$precision" \
                    | sed "s/^{/{\"round\": $round, /" | tee -a $OUT/latency.jsonl
            done
        done
        unset DREDGE_KERNELS
        for backend in $BACKENDS; do
            backend_caps "$backend"
            backend=${backend%-avx2}
            env "${caps[@]}" OMP_NUM_THREADS=$THREADS "${PIN_CMD[@]}" $PY benches/embed/st_bench.py --model "$MODEL" \
                --corpus "$QUERIES" --limit "$LIMIT" --threads "$THREADS" --backend "$backend" \
                --work $OUT/st-models --latency 2>/dev/null \
                | sed "s/^{/{\"round\": $round, /" | tee -a $OUT/latency.jsonl
        done
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
    print("  %-64s p50 %6.2f ms  p90 %6.2f  p99 %6.2f  mean %6.2f  CPU %6.2f ms/query" % (side, m["p50_ms"], m["p90_ms"], m["p99_ms"], m["mean_ms"], m["cpu_ms_per_query"]))
PY
fi
