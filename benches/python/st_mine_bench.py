"""dredge.sentence_transformers.mine_hard_negatives against sentence-transformers'
own, the whole call, on every SciFact train pair with the same precomputed
all-MiniLM-L6-v2 embeddings (the cached-embeddings stand-in of the tests, so neither
side encodes), interleaved rounds, medians. Needs torch, sentence-transformers,
datasets and dredge in one venv:

    python benches/python/st_mine_bench.py --rounds 7        # DREDGE_SHARED or ../shared
"""

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python" / "tests" / "fixtures"))

from st_standin import CachedEmbeddings, document_text, read_jsonl  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    import datasets
    import sentence_transformers
    import torch
    from sentence_transformers.util import mine_hard_negatives as theirs

    from dredge.sentence_transformers import mine_hard_negatives as ours

    scifact = pathlib.Path(os.environ.get("DREDGE_SHARED", REPO.parent / "shared")) / "data" / "scifact"
    queries = {q["_id"]: q["text"] for q in read_jsonl(scifact / "queries.jsonl")}
    docs = {d["_id"]: document_text(d) for d in read_jsonl(scifact / "corpus.jsonl")}
    pairs = []
    with open(scifact / "qrels" / "train.tsv") as f:
        next(f)
        for line in f:
            q, d, g = line.split()
            if int(g) > 0:
                pairs.append((queries[q], docs[d]))
    corpus = list(dict.fromkeys(docs.values()))
    dataset = datasets.Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    model = CachedEmbeddings(str(scifact))
    settings = {
        "n-tuple, 5 negatives, relative margin 0.05, scores": dict(
            corpus=corpus, num_negatives=5, relative_margin=0.05, output_format="n-tuple", output_scores=True
        ),
        "triplet, 3 negatives": dict(corpus=corpus, num_negatives=3),
    }
    print(f"{len(pairs)} pairs, corpus {len(corpus)}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"sentence-transformers {sentence_transformers.__version__}, python {platform.python_version()}")
    for name, kwargs in settings.items():
        times = {"dredge": [], "sentence-transformers": []}
        for r in range(args.rounds):
            order = [("dredge", ours), ("sentence-transformers", theirs)]
            for side, fn in (order if r % 2 == 0 else order[::-1]):
                t = time.perf_counter()
                out = fn(dataset, model, verbose=False, **kwargs)
                times[side].append(time.perf_counter() - t)
        a, b = statistics.median(times["dredge"]), statistics.median(times["sentence-transformers"])
        print(f"{name}: {len(out)} rows")
        for side in times:
            print(f"  {side:22} median {statistics.median(times[side]):.3f} s  {[round(x, 3) for x in times[side]]}")
        print(f"  sentence-transformers / dredge: {b / a:.2f}x")


if __name__ == "__main__":
    main()
