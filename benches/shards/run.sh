#!/usr/bin/env bash
# Growth of a sharded index against one index of the same corpus (issue 14).
#
#   benches/shards/run.sh WORK_DIR [DOCS] [SHARDS] [DENSE_ROWS]
#
# BM25: a seeded Zipfian corpus of DOCS documents (benches/bm25/gen_zipf.py, default
# 4,000,000) built as SHARDS shards (default 4) and as one index; each build timed with
# its peak RSS (/usr/bin/time -v); then 1,000 queries at k=10 and k=1000 on both, the
# sharded index also with --one-shard-at-a-time (peak RSS), and mining (BM25
# candidates, the top BM25 hit of each query as its positive) on both.
# Dense: DENSE_ROWS (default 2,000,000) seeded random unit vectors of 384 dimensions
# for the first DENSE_ROWS documents, flat, in SHARDS shards and as one index; exact
# search of 1,000 query vectors at k=10 on both.
# Rerun with the same WORK_DIR: indexes already built are kept (the log has their times).
# Needs the release binary (cargo build --release) and python3 with numpy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$1"; docs="${2:-4000000}"; n="${3:-4}"; rows="${4:-2000000}"
bin="$root/target/release/dredge"
mkdir -p "$work"
log="$work/log.txt"
say() { echo "$*" | tee -a "$log"; }
timed() { # label, command...: wall s and peak RSS MiB into the log
    local label="$1"; shift
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" || { cat "$work/err.txt"; exit 1; }
    read -r wall rss <"$work/time.txt"
    say "$label: ${wall} s, peak RSS $((rss / 1024)) MiB"
    grep -h "searched\|negatives\|queries/s" "$work/err.txt" "$work/out.txt" | tail -2 | sed 's/^/    /' | tee -a "$log" || true
}
say "== $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
corpus="$work/zipf"
if [ ! -f "$corpus/corpus.jsonl" ]; then
    "${PYTHON:-python3}" "$root/benches/bm25/gen_zipf.py" --docs "$docs" --seed 7 --out "$corpus"
fi
say "corpus: $docs documents, $(du -m "$corpus/corpus.jsonl" | cut -f1) MB"

shards=()
for ((i = 0; i < n; i++)); do
    if [ -f "$work/bm25-shard$i/manifest.json" ]; then
        say "bm25 shard $i/$n: built by an earlier run (its time is in the log above)"
    else
        rm -rf "$work/bm25-shard$i"
        timed "bm25 shard $i/$n build" "$bin" index --corpus "$corpus" --shard "$i/$n" --out "$work/bm25-shard$i"
    fi
    shards+=("$work/bm25-shard$i")
done
rm -rf "$work/bm25-sharded"
timed "join $n shards" "$bin" shards join --out "$work/bm25-sharded" "${shards[@]}"
if [ -f "$work/bm25-one/manifest.json" ]; then
    say "bm25 one index: built by an earlier run"
else
    rm -rf "$work/bm25-one"
    timed "bm25 one index build" "$bin" index --corpus "$corpus" --out "$work/bm25-one"
fi
say "sizes: one index $(du -sm "$work/bm25-one" | cut -f1) MiB, shards $(du -smc "${shards[@]}" | tail -1 | cut -f1) MiB, joined folder $(du -sm "$work/bm25-sharded" | cut -f1) MiB"

for k in 10 1000; do
    for round in 1 2; do
        timed "search k=$k one index (round $round)" "$bin" search --index "$work/bm25-one" --queries "$corpus/queries.jsonl" -k "$k" --out "$work/one-$k.trec"
        timed "search k=$k sharded (round $round)" "$bin" search --index "$work/bm25-sharded" --queries "$corpus/queries.jsonl" -k "$k" --out "$work/sharded-$k.trec"
        timed "search k=$k sharded one at a time (round $round)" "$bin" search --index "$work/bm25-sharded" --one-shard-at-a-time --queries "$corpus/queries.jsonl" -k "$k" --out "$work/lazy-$k.trec"
    done
    cmp "$work/one-$k.trec" "$work/sharded-$k.trec" && cmp "$work/one-$k.trec" "$work/lazy-$k.trec" && say "k=$k: the three runs are the same bytes"
done

# Mining: each query's top BM25 hit taken as its positive.
awk '$4 == 1 { print $1 "\t" $3 "\t1" }' "$work/one-10.trec" | sed '1i query-id\tcorpus-id\tscore' >"$work/qrels.tsv"
for round in 1 2; do
    timed "mine one index (round $round)" "$bin" mine --index "$work/bm25-one" --queries "$corpus/queries.jsonl" --qrels "$work/qrels.tsv" --out "$work/one.jsonl"
    timed "mine sharded (round $round)" "$bin" mine --index "$work/bm25-sharded" --queries "$corpus/queries.jsonl" --qrels "$work/qrels.tsv" --out "$work/sharded.jsonl"
    timed "mine sharded one at a time (round $round)" "$bin" mine --index "$work/bm25-sharded" --one-shard-at-a-time --queries "$corpus/queries.jsonl" --qrels "$work/qrels.tsv" --out "$work/lazy.jsonl"
done
cmp "$work/one.jsonl" "$work/sharded.jsonl" && cmp "$work/one.jsonl" "$work/lazy.jsonl" && say "mining: the three outputs are the same bytes"

# Dense, flat: random unit vectors for the first $rows documents.
dense="$work/dense"
mkdir -p "$dense"
if [ ! -f "$dense/corpus.jsonl" ]; then
    head -n "$rows" "$corpus/corpus.jsonl" >"$dense/corpus.jsonl"
    cp "$corpus/queries.jsonl" "$dense/queries.jsonl"
    "${PYTHON:-python3}" - "$dense" "$rows" <<'PY'
import json, sys
import numpy as np
out, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
ids = [json.loads(line)["_id"] for line in open(f"{out}/corpus.jsonl")]
assert len(ids) == rows
v = np.empty((rows, 384), dtype=np.float32)
for s in range(0, rows, 100_000):
    block = rng.standard_normal((min(100_000, rows - s), 384), dtype=np.float32)
    v[s:s + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
np.save(f"{out}/vectors.npy", v)
open(f"{out}/vectors.ids.txt", "w").write("\n".join(ids) + "\n")
qids = [json.loads(line)["_id"] for line in open(f"{out}/queries.jsonl")]
q = rng.standard_normal((len(qids), 384), dtype=np.float32)
np.save(f"{out}/queries.npy", q / np.linalg.norm(q, axis=1, keepdims=True))
open(f"{out}/queries.ids.txt", "w").write("\n".join(qids) + "\n")
PY
fi
dshards=()
for ((i = 0; i < n; i++)); do
    rm -rf "$work/dense-shard$i"
    timed "dense shard $i/$n build" "$bin" index --corpus "$dense" --no-bm25 --vectors "$dense/vectors.npy" --vector-ids "$dense/vectors.ids.txt" --ann flat --shard "$i/$n" --out "$work/dense-shard$i"
    dshards+=("$work/dense-shard$i")
done
rm -rf "$work/dense-sharded" "$work/dense-one"
timed "join $n dense shards" "$bin" shards join --out "$work/dense-sharded" "${dshards[@]}"
timed "dense one index build" "$bin" index --corpus "$dense" --no-bm25 --vectors "$dense/vectors.npy" --vector-ids "$dense/vectors.ids.txt" --ann flat --out "$work/dense-one"
q=(--queries "$dense/queries.jsonl" --query-vectors "$dense/queries.npy" --query-ids "$dense/queries.ids.txt" --mode dense -k 10)
for round in 1 2; do
    timed "dense exact k=10 one index (round $round)" "$bin" search --index "$work/dense-one" "${q[@]}" --out "$work/d-one.trec"
    timed "dense exact k=10 sharded (round $round)" "$bin" search --index "$work/dense-sharded" "${q[@]}" --out "$work/d-sharded.trec"
    timed "dense exact k=10 sharded one at a time (round $round)" "$bin" search --index "$work/dense-sharded" --one-shard-at-a-time "${q[@]}" --out "$work/d-lazy.trec"
done
cmp "$work/d-one.trec" "$work/d-sharded.trec" && cmp "$work/d-one.trec" "$work/d-lazy.trec" && say "dense: the three runs are the same bytes"
say "== done $(date -u +%FT%TZ)"
