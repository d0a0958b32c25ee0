"""Writes an MS MARCO dev-sized run (6,980 queries x 1,000 docs, ~7M lines) and qrels.

Seeded: the same files every time. usage: gen.py OUT_DIR
"""
import os
import random
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = random.Random(7)
n_queries, depth, n_docs = 6980, 1000, 8_841_823
with open(os.path.join(out, "qrels.tsv"), "w") as q, open(os.path.join(out, "run.trec"), "w") as r:
    q.write("query-id\tcorpus-id\tscore\n")
    for i in range(n_queries):
        qid = str(1000000 + i * 37)
        docs = rng.sample(range(n_docs), depth)
        # About 1.07 relevant documents per query, as in MS MARCO dev; most of
        # them retrieved somewhere in the top 1000.
        n_rel = 1 + (rng.random() < 0.07)
        relevant = set()
        while len(relevant) < n_rel:
            relevant.add(docs[rng.randrange(depth)] if rng.random() < 0.9 else rng.randrange(n_docs))
        for rel in sorted(relevant):
            q.write(f"{qid}\t{rel}\t1\n")
        score = 30.0
        lines = []
        for rank, d in enumerate(docs):
            score -= rng.random() * 0.02
            lines.append(f"{qid} Q0 {d} {rank + 1} {score:.4f} bench\n")
        r.writelines(lines)
