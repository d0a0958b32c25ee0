#!/usr/bin/env bash
# dredge vs bm25s BM25 benchmark (see BENCHMARKS.md, "## BM25").
#
#   benches/bm25/run.sh                      # SciFact + Zipfian 100k and 1M docs
#   benches/bm25/run.sh --sizes ''           # SciFact only
#   benches/bm25/run.sh --sizes 100000 --backends numba
#   benches/bm25/run.sh --scifact '' --backends '' --sizes 100000,1000000 --results growth.json
#                                            # dredge alone on the Zipfian corpora
#   DREDGE_BIN=/path/to/dredge benches/bm25/run.sh --sizes ''
#       # a built binary, no cargo build (the stemmer check still runs
#       # target/release/examples/analyze, which must exist)
#
# Builds the release binary, makes a throwaway venv (benches/.venv-bm25) with bm25s,
# PyStemmer, numba and NLTK, and writes everything under benches/out/bm25/.
set -euo pipefail
cd "$(dirname "$0")/../.."
DREDGE_BIN=${DREDGE_BIN:-}
if [ -z "$DREDGE_BIN" ]; then
    cargo build --release -p dredge
    cargo build --release -p dredge-bm25 --example analyze
    DREDGE_BIN=target/release/dredge
fi
VENV=benches/.venv-bm25
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet 'bm25s==0.3.*' PyStemmer numba numpy scipy nltk
SHARED="${DREDGE_SHARED:-/work/shared}"
"$VENV/bin/python" benches/bm25/check_stemmer.py "$SHARED"/data/{scifact,cranfield,med}
exec "$VENV/bin/python" benches/bm25/bench.py --dredge "$DREDGE_BIN" --scifact "$SHARED/data/scifact" "$@"
