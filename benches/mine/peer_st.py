"""sentence-transformers' `mine_hard_negatives` with cached embeddings: the peer
of `dredge mine --candidates dense`.

The model is loaded (not timed) but never runs: `encode_query` and
`encode_document` return the precomputed float32 vectors of the texts asked for
(the same vectors dredge's dense index holds), as `cache_folder` would. The
timed step is the `mine_hard_negatives` call: exact top-k search (faiss when
`--faiss`), filters, sampling and building the dataset; `--write` also times
writing it as JSONL.

    python peer_st.py --data DATASET_DIR --qrels visible.tsv --vectors EMB_DIR \
        --model MODEL_DIR [--depth 200] [--num-negatives 15] [--relative-margin R] \
        [--faiss] [--write out.jsonl] [--threads 2]

Prints one JSON line: queries, seconds, queries/s.
"""

import argparse
import json
import os
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--qrels", required=True)
    p.add_argument("--vectors", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--depth", type=int, default=200)
    p.add_argument("--num-negatives", type=int, default=15)
    p.add_argument("--relative-margin", type=float)
    p.add_argument("--faiss", action="store_true")
    p.add_argument("--write")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    torch.set_num_threads(args.threads)

    docs, texts = {}, []
    with open(os.path.join(args.data, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                title, text = d.get("title") or "", d.get("text") or ""
                joined = (title + " " + text).strip() if title else text.strip()
                docs[str(d["_id"])] = joined
                texts.append(joined)
    queries, order = {}, []
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
            if int(g) > 0 and d in docs:
                positives.setdefault(q, []).append(d)
    mined = [q for q in order if q in positives]
    pairs = {"anchor": [], "positive": []}
    for q in mined:
        for d in positives[q]:
            pairs["anchor"].append(queries[q])
            pairs["positive"].append(docs[d])
    dataset = Dataset.from_dict(pairs)

    corpus_vecs = np.load(os.path.join(args.vectors, "corpus.npy")).astype(np.float32)
    corpus_ids = open(os.path.join(args.vectors, "corpus.ids.txt"), encoding="utf-8").read().split()
    query_vecs = np.load(os.path.join(args.vectors, "queries.npy")).astype(np.float32)
    query_ids = open(os.path.join(args.vectors, "queries.ids.txt"), encoding="utf-8").read().split()
    by_text = {docs[d]: corpus_vecs[i] for i, d in enumerate(corpus_ids)}
    by_text.update({queries[q]: query_vecs[i] for i, q in enumerate(query_ids) if q in queries})

    class Cached(SentenceTransformer):
        def _lookup(self, sentences, **kwargs):
            return np.stack([by_text[s] for s in sentences])

        def encode_query(self, sentences, **kwargs):
            return self._lookup(sentences)

        def encode_document(self, sentences, **kwargs):
            return self._lookup(sentences)

    model = Cached(args.model, device="cpu")
    start = time.perf_counter()
    result = mine_hard_negatives(
        dataset,
        model,
        corpus=texts,
        range_max=args.depth,
        relative_margin=args.relative_margin,
        num_negatives=args.num_negatives,
        sampling_strategy="top",
        output_format="n-tuple",
        output_scores=True,
        use_faiss=args.faiss,
        verbose=False,
    )
    if args.write:
        result.to_json(args.write, lines=True)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "peer": "sentence-transformers mine_hard_negatives" + (" + to_json" if args.write else ""),
                "faiss": args.faiss,
                "queries": len(mined),
                "rows": len(result),
                "seconds": seconds,
                "queries_per_second": len(mined) / seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
