#!/usr/bin/env bash
# What verifying an index's checksums costs (issue 16).
#
#   benches/check/run.sh WORK_DIR CORPUS VECTORS.npy VECTOR_IDS [ROUNDS]
#
# Builds an index of CORPUS (BM25 + a flat dense component of VECTORS) in WORK_DIR
# (kept when it exists), and a copy of it whose manifest is stripped to format 1
# (no checksums: dredge then verifies nothing of docs.bin and the dense files).
# Then, in ROUNDS interleaved rounds (default 11), times on both:
#   - `dredge search --mode dense` of the first 20 queries of queries.jsonl given as
#     vectors (opens docs.bin and the dense component: both verified on the
#     checksummed index, neither on the stripped one);
#   - `dredge search --mode bm25` of the first 20 queries of queries.jsonl (opens
#     docs.bin and BM25: verified with dredge's checksums on the checksummed index,
#     BM25 with tantivy's footers on the stripped one);
#   - `dredge check` on the checksummed index (it prints the MB/s of the checksums).
# Prints the medians. Run with the page cache warm (a first round is dropped).
# BIN (default target/release/dredge) is the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$1"; corpus="$2"; vectors="$3"; ids="$4"; rounds="${5:-11}"
bin="${BIN:-$root/target/release/dredge}"
py="${PYTHON:-python3}"
mkdir -p "$work"
echo "== $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) $(basename "$bin") on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
index="$work/index"; old="$work/index-v1"
if [ ! -f "$index/manifest.json" ]; then
    /usr/bin/time -f "build: %e s" "$bin" index --corpus "$corpus" --out "$index" \
        --vectors "$vectors" --vector-ids "$ids" --ann flat 2>&1 | tail -2
fi
rm -rf "$old"; cp -r "$index" "$old"
"$py" - "$old/manifest.json" <<'PY'
import json, sys
p = sys.argv[1]; m = json.load(open(p))
m.pop("files"); m.pop("manifest_checksum"); m["format_version"] = 1
json.dump(m, open(p, "w"), indent=2)
PY
echo "index: $(du -sm "$index" | cut -f1) MB ($(du -sm "$index/docs.bin" | cut -f1) MB docs.bin, $(du -sm "$index/bm25" | cut -f1) MB bm25, $(du -sm "$index/dense" | cut -f1) MB dense)"
qdir="$work/queries"; mkdir -p "$qdir"
"$py" - "$corpus" "$qdir" "$vectors" <<'PY'
import json, os, sys
import numpy as np
corpus, out, vectors = sys.argv[1:4]
src = os.path.join(corpus, "queries.jsonl") if os.path.isdir(corpus) else None
v = np.load(vectors, mmap_mode="r")
ids = [f"fq{i}" for i in range(20)]
with open(os.path.join(out, "queries.jsonl"), "w") as f:
    for i in ids:
        f.write(json.dumps({"_id": i, "text": "x"}) + "\n")
np.save(os.path.join(out, "q.npy"), np.ascontiguousarray(v[:20]))
open(os.path.join(out, "q.ids.txt"), "w").write("".join(i + "\n" for i in ids))
PY
head -n 20 "$( [ -d "$corpus" ] && echo "$corpus/queries.jsonl" || echo "$(dirname "$corpus")/queries.jsonl")" >"$qdir/text.jsonl"
bm25() {
    "$bin" search --index "$1" --queries "$qdir/text.jsonl" --mode bm25 -k 10 --out "$work/run.trec" 2>/dev/null
}
search() {
    "$bin" search --index "$1" --queries "$qdir/queries.jsonl" --mode dense \
        --query-vectors "$qdir/q.npy" --query-ids "$qdir/q.ids.txt" -k 10 --out "$work/run.trec" 2>/dev/null
}
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
search "$index"; search "$old"; bm25 "$index"; bm25 "$old"  # warm
: >"$work/new.txt"; : >"$work/old.txt"; : >"$work/bm25-new.txt"; : >"$work/bm25-old.txt"; : >"$work/rate.txt"
for ((r = 0; r < rounds; r++)); do
    ms search "$index" >>"$work/new.txt"
    ms search "$old" >>"$work/old.txt"
    ms bm25 "$index" >>"$work/bm25-new.txt"
    ms bm25 "$old" >>"$work/bm25-old.txt"
    "$bin" check --index "$index" --quiet 2>&1 >/dev/null | grep -o "in [0-9]* ms: .*" | sed -E 's/in ([0-9]+) ms: .* in ([0-9]+) ms \(([0-9]+) MB\/s\)/\1 \2 \3/' >>"$work/rate.txt"
done
echo "dense search of 20 queries, checksummed: $(median <"$work/new.txt") ms; without checksums: $(median <"$work/old.txt") ms (medians of $rounds)"
echo "bm25 search of 20 queries, checksummed: $(median <"$work/bm25-new.txt") ms; without checksums (tantivy's footers checked instead): $(median <"$work/bm25-old.txt") ms (medians of $rounds)"
echo "dredge check: $(cut -d' ' -f1 "$work/rate.txt" | median) ms in all, checksums $(cut -d' ' -f2 "$work/rate.txt" | median) ms at $(cut -d' ' -f3 "$work/rate.txt" | median) MB/s (medians of $rounds)"
