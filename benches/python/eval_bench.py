"""dredge.RelevanceEvaluator against pytrec_eval's on a run held in Python dicts,
conversion from dicts included (the whole `evaluate(run)` call), side by side in one
process, interleaved rounds; prints medians and the ratio.

    python benches/python/eval_bench.py --queries 7000 --depth 1000 --rounds 5

Needs the `dredge` package (pip install .) and pytrec-eval-terrier in the venv.
"""

import argparse
import platform
import random
import statistics
import time

import pytrec_eval

import dredge

MEASURES = {"ndcg_cut.10", "recall.100", "map_cut.100", "recip_rank", "P.10"}


def make(queries, depth, seed):
    rng = random.Random(seed)
    run, qrels = {}, {}
    for q in range(queries):
        qid = f"q{q}"
        docs = rng.sample(range(1_000_000), depth)
        run[qid] = {f"d{d}": rng.random() * 20 for d in docs}
        judged = rng.sample(docs[:200], 3) + [rng.randrange(1_000_000)]
        qrels[qid] = {f"d{d}": rng.choice([1, 1, 2]) for d in judged}
    return run, qrels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=7000)
    ap.add_argument("--depth", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    run, qrels = make(args.queries, args.depth, 0)
    print(f"run: {args.queries} queries x {args.depth} = {args.queries * args.depth:,} entries; "
          f"python {platform.python_version()}, dredge {dredge.__version__}, pytrec_eval {pytrec_eval.__version__}")
    ours = dredge.RelevanceEvaluator(qrels, MEASURES)
    theirs = pytrec_eval.RelevanceEvaluator(qrels, MEASURES)
    times = {"dredge": [], "pytrec_eval": []}
    for r in range(args.rounds):
        order = [("dredge", ours), ("pytrec_eval", theirs)]
        if r % 2:
            order.reverse()
        for name, evaluator in order:
            t = time.perf_counter()
            out = evaluator.evaluate(run)
            times[name].append(time.perf_counter() - t)
            assert len(out) == args.queries
    a, b = statistics.median(times["dredge"]), statistics.median(times["pytrec_eval"])
    print(f"dredge      median {a:.2f} s  rounds {[round(x, 2) for x in times['dredge']]}")
    print(f"pytrec_eval median {b:.2f} s  rounds {[round(x, 2) for x in times['pytrec_eval']]}")
    print(f"pytrec_eval / dredge: {b / a:.2f}x")


if __name__ == "__main__":
    main()
