"""Times pytrec_eval on a qrels + run pair: parse both files, then evaluate.

usage: pytrec_time.py QRELS RUN  -> prints JSON {parse_s, eval_s, total_s, queries, means}
"""
import json
import sys
import time

import pytrec_eval

t0 = time.perf_counter()
qrels = {}
with open(sys.argv[1]) as f:
    next(f)
    for line in f:
        q, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
run = {}
with open(sys.argv[2]) as f:
    for line in f:
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, {})[d] = float(s)
t1 = time.perf_counter()
measures = {"ndcg_cut.10", "recall.100,1000", "map_cut.1000", "recip_rank"}
scores = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
t2 = time.perf_counter()
n = len(scores)
means = {m: sum(v[m] for v in scores.values()) / n for m in ["ndcg_cut_10", "recall_100", "recall_1000", "map_cut_1000"]}
print(json.dumps({"parse_s": t1 - t0, "eval_s": t2 - t1, "total_s": t2 - t0, "queries": n, "means": means}))
