#!/usr/bin/env bash
# Mining on SciFact train: the held-out false-negative experiment and the speed of
# the mining step side by side with Python peers, on this machine.
# usage: benches/mine/run.sh [ROUNDS]        (from anywhere; default 5 rounds)
#
# 1. Hide one positive of each multi-positive train query (holdout.py).
# 2. Mine with bm25, dense and hybrid (RRF k=60) candidates, without and with
#    --relative-margin 0.05; the report's holdout section gives the share of mined
#    negatives that are held-out positives.
# 3. Speed, ROUNDS rounds interleaved: `dredge mine` (dense and bm25 candidates)
#    against the same algorithm in numpy + faiss (peer_numpy.py) and against
#    sentence-transformers' mine_hard_negatives with cached embeddings
#    (peer_st.py: torch top-k, faiss, and torch plus writing its dataset as JSONL
#    with `to_json`, as dredge writes its file), all on the same MiniLM vectors,
#    depth 200, 15 negatives, relative margin 0.05, 2 threads. Timed: the mining
#    step after loading.
# 4. The whole commands (process start, loading, mining, writing), 3 rounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
shared=${DREDGE_SHARED:-/work/shared}
data=$shared/data/scifact
emb=$data/embeddings/all-MiniLM-L6-v2
model=$shared/models/all-MiniLM-L6-v2
out=benches/out/mine
py=benches/.venv-mine/bin/python
dredge=${DREDGE_BIN:-target/release/dredge}
mkdir -p "$out"
benches/mine/setup_venv.sh > "$out/pip.log" 2>&1 || true
[ -n "${DREDGE_BIN:-}" ] || cargo build --release --quiet -p dredge
[ -d "$out/scifact-index" ] || "$dredge" index --corpus "$data" --out "$out/scifact-index"
python3 benches/mine/holdout.py "$data/qrels/train.tsv" "$out/split"
vectors=(--doc-vectors "$emb/corpus.npy" --query-vectors "$emb/queries.npy")
common=(--index "$out/scifact-index" --queries "$data" --qrels "$out/split/visible.tsv" --depth 200 -n 15 --threads 2)

echo "== held-out false negatives"
: > "$out/fn.jsonl"
for cand in bm25 dense hybrid; do
  for margin in none 0.05; do
    extra=()
    [ "$margin" = none ] || extra=(--relative-margin "$margin")
    "$dredge" mine "${common[@]}" "${vectors[@]}" --candidates "$cand" "${extra[@]}" \
      --holdout-qrels "$out/split/holdout.tsv" --out "$out/fn-$cand-$margin.jsonl" \
      --report "$out/fn-$cand-$margin.json" --report-svg "$out/fn-$cand-$margin.svg" 2> "$out/fn-$cand-$margin.log"
    python3 -c "
import json, sys
r = json.load(open('$out/fn-$cand-$margin.json'))
h = r['holdout']
print(json.dumps({'candidates': '$cand', 'relative_margin': '$margin', 'false_negatives': h['false_negatives'],
  'negatives': h['negatives'], 'rate': h['false_negative_rate'], 'held_out': h['positives'], 'retrieved': h['in_candidates'],
  'caught': sum(h['dropped'].values()), 'short_queries': r['queries']['short'], 'negatives_all': r['negatives']}))" | tee -a "$out/fn.jsonl"
  done
done

echo "== speed ($rounds rounds)"
: > "$out/speed.jsonl"
for i in $(seq "$rounds"); do
  for cand in dense bm25; do
    "$dredge" mine "${common[@]}" "${vectors[@]}" --candidates "$cand" --relative-margin 0.05 \
      --out "$out/speed-dredge-$cand.jsonl" --report "$out/speed-dredge-$cand.json" 2> /dev/null
    python3 -c "
import json
t = json.load(open('$out/speed-dredge-$cand.json'))['timing']
print(json.dumps({'round': $i, 'who': 'dredge mine ($cand)', 'seconds': t['mine_seconds']}))" | tee -a "$out/speed.jsonl"
  done
  "$py" benches/mine/peer_numpy.py --data "$data" --qrels "$out/split/visible.tsv" --vectors "$emb" \
    --out "$out/speed-numpy.jsonl" --relative-margin 0.05 --threads 2 \
    | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({'round': $i, 'who': 'numpy + faiss (dense)', 'seconds': r['seconds']}))" \
    | tee -a "$out/speed.jsonl"
  if "$py" -c "import sentence_transformers, datasets" 2> /dev/null; then
    for variant in torch faiss torch-write; do
      extra=()
      [ "$variant" = faiss ] && extra=(--faiss)
      [ "$variant" = torch-write ] && extra=(--write "$out/speed-st.jsonl")
      "$py" benches/mine/peer_st.py --data "$data" --qrels "$out/split/visible.tsv" --vectors "$emb" --model "$model" \
        --relative-margin 0.05 --threads 2 "${extra[@]}" 2> /dev/null \
        | python3 -c "import json,sys; r=json.loads(sys.stdin.read().splitlines()[-1]); print(json.dumps({'round': $i, 'who': 'sentence-transformers mine_hard_negatives' + (' (faiss)' if r['faiss'] else ' (torch)') + (' + to_json' if 'to_json' in r['peer'] else ''), 'seconds': r['seconds']}))" \
        | tee -a "$out/speed.jsonl"
    done
  fi
done
echo "== whole commands, wall time (3 rounds)"
: > "$out/e2e.jsonl"
wall() { # who, command...: one line of e2e.jsonl with the command's wall time
  local who=$1; shift
  local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N)
  python3 -c "import json; print(json.dumps({'who': '$who', 'seconds': $t1 - $t0}))" | tee -a "$out/e2e.jsonl"
}
for i in 1 2 3; do
  wall "dredge mine (dense)" "$dredge" mine "${common[@]}" "${vectors[@]}" --candidates dense --relative-margin 0.05 \
    --out "$out/e2e-dredge.jsonl"
  wall "numpy + faiss (dense)" "$py" benches/mine/peer_numpy.py --data "$data" --qrels "$out/split/visible.tsv" \
    --vectors "$emb" --out "$out/e2e-numpy.jsonl" --relative-margin 0.05 --threads 2
  if "$py" -c "import sentence_transformers, datasets" 2> /dev/null; then
    wall "sentence-transformers mine_hard_negatives (torch) + to_json" "$py" benches/mine/peer_st.py --data "$data" \
      --qrels "$out/split/visible.tsv" --vectors "$emb" --model "$model" --relative-margin 0.05 --threads 2 \
      --write "$out/e2e-st.jsonl"
  fi
done
python3 benches/mine/summarize.py "$out"
