"""Single-query latency: query text in, top 10 out, one query at a time.

    python latency.py dredge --index DIR --queries queries.jsonl [--precision fp32|int8]
    python latency.py st --model DIR --corpus-vectors corpus.npy --corpus-ids corpus.ids.txt
        --queries queries.jsonl [--backend torch|onnx]

`dredge`: `dredge.Index(DIR).search(text, k=10, mode="dense", exact=True)` (the
Python package: the query encoded by the index's own model, in the index's
precision unless --precision says otherwise, then exact inner-product search), in
this long-running process, so process start-up and model loading are not measured
(they happen before the timed queries, with 10 warm-up queries).
`st`: sentence-transformers `model.encode([text], normalize_embeddings=True)`
then a faiss `IndexFlatIP` over the corpus vectors (`search(v, 10)`), likewise.

Prints one JSON line: p50, p90, p99, mean and max milliseconds over the queries.
Threads: RAYON_NUM_THREADS (dredge) or torch.set_num_threads / OMP_NUM_THREADS (st),
set by run.sh.
"""

import argparse
import json
import os
import statistics
import time


def read_queries(path, limit):
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
                if limit and len(texts) >= limit:
                    break
    return texts


def dredge_side(args):
    import dredge

    options = {"precision": args.precision} if args.precision else {}
    index = dredge.Index(args.index, **options)
    manifest = index.manifest
    recorded = next(iter(manifest["components"]["dense"].values()))["encoder"]

    def search(text):
        return index.search(text, 10, mode="dense", exact=True)

    label = "dredge %s (index vectors %s)" % (
        args.precision or recorded.get("precision", "fp32"),
        recorded.get("precision", "fp32"),
    )
    return search, label


def st_side(args):
    import faiss
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu")
    vectors = np.load(args.corpus_vectors).astype(np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    with open(args.corpus_ids, encoding="utf-8") as f:
        ids = [line.rstrip("\n") for line in f]

    def search(text):
        v = model.encode([text], normalize_embeddings=True, convert_to_numpy=True)
        scores, rows = index.search(v.astype(np.float32), 10)
        return [(ids[r], float(s)) for r, s in zip(rows[0], scores[0])]

    label = "sentence-transformers %s (torch %s) + faiss %s IndexFlatIP" % (
        __import__("sentence_transformers").__version__,
        torch.__version__,
        faiss.__version__,
    )
    return search, label


def main():
    p = argparse.ArgumentParser()
    p.add_argument("side", choices=["dredge", "st"])
    p.add_argument("--queries", required=True)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--index")
    p.add_argument("--precision")
    p.add_argument("--model")
    p.add_argument("--corpus-vectors")
    p.add_argument("--corpus-ids")
    args = p.parse_args()

    texts = read_queries(args.queries, args.limit)
    search, label = dredge_side(args) if args.side == "dredge" else st_side(args)
    for text in texts[:10]:
        search(text)
    times = []
    cpu = time.process_time()
    for text in texts:
        t = time.perf_counter()
        search(text)
        times.append((time.perf_counter() - t) * 1000.0)
    cpu = time.process_time() - cpu
    ordered = sorted(times)

    def pct(q):
        return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]

    print(
        json.dumps(
            {
                "side": label,
                "queries": len(times),
                "threads": args.threads,
                "p50_ms": round(pct(50), 2),
                "p90_ms": round(pct(90), 2),
                "p99_ms": round(pct(99), 2),
                "mean_ms": round(statistics.fmean(times), 2),
                "max_ms": round(ordered[-1], 2),
                "cpu_ms_per_query": round(cpu * 1000.0 / len(times), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
