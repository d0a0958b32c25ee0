#!/usr/bin/env bash
# Evaluation speed: dredge eval vs pytrec_eval (parse + compute) on an MS MARCO
# dev-sized run (6,980 queries x 1,000 documents = 6.98M lines), side by side.
# usage: benches/eval/run.sh        (from the repository root)
# Environment: DREDGE_BIN (a built dredge binary; when set, no cargo build).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=benches/out/eval
venv=benches/.venv-eval
mkdir -p "$out"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import pytrec_eval" 2>/dev/null || "$venv/bin/pip" install --quiet pytrec-eval-terrier
[ -f "$out/run.trec" ] || python3 benches/eval/gen.py "$out"
dredge=${DREDGE_BIN:-target/release/dredge}
[ -n "${DREDGE_BIN:-}" ] || cargo build --release --quiet -p dredge
"$dredge" --version || true
wc -l "$out/run.trec"
metrics=ndcg@10,recall@100,recall@1000,map@1000
for i in 1 2 3; do
  echo "-- round $i"
  /usr/bin/time -f "dredge: %e s wall, %U s user, %S s sys, %M KiB peak RSS" \
    "$dredge" eval --qrels "$out/qrels.tsv" --run "$out/run.trec" --metrics "$metrics" --format json
  /usr/bin/time -f "dredge (default 25 metrics): %e s wall, %U s user, %S s sys, %M KiB peak RSS" \
    "$dredge" eval --qrels "$out/qrels.tsv" --run "$out/run.trec" --format json > /dev/null
  /usr/bin/time -f "pytrec_eval: %e s wall, %U s user, %S s sys, %M KiB peak RSS" \
    "$venv/bin/python" benches/eval/pytrec_time.py "$out/qrels.tsv" "$out/run.trec"
done
