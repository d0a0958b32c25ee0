"""The miner's algorithm in numpy + faiss: the plain Python peer of `dredge mine`.

Same candidates as `dredge mine --candidates dense` over the same float32 vectors
(exact inner product, top `depth`), same filters in sentence-transformers order
(known positives and their normalised-text duplicates, margin, relative margin, max
score, then ranks [min, max) of the survivors), `top` sampling, same FlagEmbedding
output rows. Loading is not timed; the mining step (search, filters, sampling,
writing the JSONL) is, like dredge's `timing.mine_seconds`.

    python peer_numpy.py --data DATASET_DIR --qrels visible.tsv --vectors EMB_DIR \
        --out negatives.jsonl [--depth 200] [--num-negatives 15] [--relative-margin R] \
        [--margin M] [--max-score S] [--range MIN:MAX] [--threads 2]

Prints one JSON line: queries, seconds, queries/s.
"""

import argparse
import json
import os
import time


def normalise(text):
    return " ".join(text.split()).lower()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--qrels", required=True)
    p.add_argument("--vectors", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--depth", type=int, default=200)
    p.add_argument("--num-negatives", type=int, default=15)
    p.add_argument("--relative-margin", type=float)
    p.add_argument("--margin", type=float)
    p.add_argument("--max-score", type=float)
    p.add_argument("--range", default="0:")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(args.threads)

    # ---- loading (not timed) ----
    docs = []
    with open(os.path.join(args.data, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                title, text = d.get("title") or "", d.get("text") or ""
                docs.append((str(d["_id"]), (title + " " + text).strip() if title else text.strip(), text))
    queries = {}
    order = []
    with open(os.path.join(args.data, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                queries[str(q["_id"])] = q["text"]
                order.append(str(q["_id"]))
    positives = {}
    with open(args.qrels, encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, g = line.split()
            if int(g) > 0:
                positives.setdefault(q, []).append(d)
    corpus = np.load(os.path.join(args.vectors, "corpus.npy")).astype(np.float32)
    corpus_ids = open(os.path.join(args.vectors, "corpus.ids.txt"), encoding="utf-8").read().split()
    qvecs = np.load(os.path.join(args.vectors, "queries.npy")).astype(np.float32)
    qids = open(os.path.join(args.vectors, "queries.ids.txt"), encoding="utf-8").read().split()
    row_of_doc = {d: i for i, d in enumerate(corpus_ids)}
    # Reorder vectors to corpus order (DocIds of the index).
    corpus = corpus[[row_of_doc[d[0]] for d in docs]]
    row_of_query = {q: i for i, q in enumerate(qids)}
    doc_index = {d[0]: i for i, d in enumerate(docs)}
    # Normalised-text keys of each document (joined and text alone), as dredge's TextKeys.
    key_docs = {}
    joined_key, text_key = [], []
    for i, (_, joined, text) in enumerate(docs):
        jk, tk = hash(normalise(joined)), hash(normalise(text))
        joined_key.append(jk)
        text_key.append(tk)
        key_docs.setdefault(jk, []).append(i)
        if tk != jk:
            key_docs.setdefault(tk, []).append(i)
    joined_key = np.array(joined_key, dtype=np.int64)
    text_key = np.array(text_key, dtype=np.int64)
    lo, _, hi = args.range.partition(":")
    range_min, range_max = int(lo or 0), (int(hi) if hi else None)
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus)

    # ---- mining (timed) ----
    start = time.perf_counter()
    mined = [q for q in order if q in positives]
    groups = {}
    for q in mined:
        groups.setdefault(normalise(queries[q]), set()).update(doc_index[d] for d in positives[q] if d in doc_index)
    Q = qvecs[[row_of_query[q] for q in mined]]
    scores, ids = index.search(Q, args.depth)
    n = args.num_negatives
    with open(args.out, "w", encoding="utf-8") as out:
        for r, q in enumerate(mined):
            group = sorted(groups[normalise(queries[q])])
            pos = float((corpus[group] @ Q[r]).min()) if group else None
            cand, s = ids[r], scores[r]
            keys = np.array([joined_key[g] for g in group], dtype=np.int64)
            drop = np.isin(cand, group) | np.isin(joined_key[cand], keys) | np.isin(text_key[cand], keys)
            if args.margin is not None and pos is not None:
                drop |= ~(s < pos - args.margin)
            if args.relative_margin is not None and pos is not None:
                drop |= ~(s < pos - abs(pos) * args.relative_margin)
            if args.max_score is not None:
                drop |= ~(s <= args.max_score)
            survivors = np.flatnonzero(~drop)
            survivors = survivors[range_min:range_max]
            chosen = survivors[:n]
            own = [doc_index[d] for d in positives[q] if d in doc_index]
            own_scores = corpus[own] @ Q[r]
            row = {
                "query": queries[q],
                "pos": [docs[i][1] for i in own],
                "neg": [docs[cand[j]][1] for j in chosen],
                "pos_scores": [float(x) for x in own_scores],
                "neg_scores": [float(s[j]) for j in chosen],
                "qid": q,
                "pos_ids": [docs[i][0] for i in own],
                "neg_ids": [docs[cand[j]][0] for j in chosen],
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - start
    print(json.dumps({"peer": "numpy+faiss", "queries": len(mined), "seconds": seconds, "queries_per_second": len(mined) / seconds}))


if __name__ == "__main__":
    main()
