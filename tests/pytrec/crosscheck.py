"""Reference numbers from pytrec_eval for dredge's evaluator cross-check.

Builds TREC runs over real collections from their precomputed embeddings (exact
inner product), perturbed to exercise the corner cases of trec_eval semantics:

* score ties (scores rounded to 2 decimals on some runs),
* documents whose id equals the query id (BEIR drops them; Cranfield's query and
  document ids overlap naturally, and we also inject such documents at the top),
* qrels queries missing from the run, run queries missing from the qrels,
* graded qrels (Cranfield), and qrels with negative grades (Cranfield raw codes).

For every case it writes the run and a JSON file with pytrec_eval's per-query
values, computed the way BEIR computes them (identical ids removed unless the case
keeps them; mrr@k = recip_rank over the run cut to its top k in trec_eval order).

usage: crosscheck.py SHARED_DATA_DIR OUT_DIR
"""

import json
import os
import random
import sys

import numpy as np
import pytrec_eval

KS = [1, 3, 5, 10, 100, 1000]
DEPTH = 1000


def read_qrels(path):
    qrels = {}
    with open(path) as f:
        next(f)
        for line in f:
            q, d, g = line.split()
            qrels.setdefault(q, {})[d] = int(g)
    return qrels


def read_ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def dense_run(data_dir, name, qids_wanted):
    emb = os.path.join(data_dir, name, "embeddings", "all-MiniLM-L6-v2")
    docs = np.load(os.path.join(emb, "corpus.npy"))
    doc_ids = read_ids(os.path.join(emb, "corpus.ids.txt"))
    queries = np.load(os.path.join(emb, "queries.npy"))
    query_ids = read_ids(os.path.join(emb, "queries.ids.txt"))
    run = {}
    for qi, qid in enumerate(query_ids):
        if qid not in qids_wanted:
            continue
        scores = docs @ queries[qi]
        top = np.argsort(-scores, kind="stable")[:DEPTH]
        run[qid] = {doc_ids[i]: float(scores[i]) for i in top}
    return run


def trec_order(docs):
    """(doc, score) sorted as trec_eval sorts: float32 score desc, doc id desc."""
    items = [(d, float(np.float32(s))) for d, s in docs.items()]
    items.sort(key=lambda x: x[0], reverse=True)
    items.sort(key=lambda x: x[1], reverse=True)
    return items


def write_run(path, run):
    with open(path, "w") as f:
        for qid, docs in run.items():
            # Deliberately write in an order that is not the ranking order.
            for rank, (doc, score) in enumerate(sorted(docs.items())):
                f.write(f"{qid} Q0 {doc} {rank + 1} {score!r} crosscheck\n")


def reference(qrels, run, keep_identical):
    if not keep_identical:
        run = {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}
    measures = {
        "ndcg_cut." + ",".join(map(str, KS)),
        "recall." + ",".join(map(str, KS)),
        "map_cut." + ",".join(map(str, KS)),
        "P." + ",".join(map(str, KS)),
    }
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures)
    scores = evaluator.evaluate(run)
    top10 = {q: dict(trec_order(docs)[:10]) for q, docs in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    out = {}
    for q, vals in scores.items():
        row = {}
        for k in KS:
            row[f"ndcg@{k}"] = vals[f"ndcg_cut_{k}"]
            row[f"recall@{k}"] = vals[f"recall_{k}"]
            row[f"map@{k}"] = vals[f"map_cut_{k}"]
            row[f"p@{k}"] = vals[f"P_{k}"]
        row["mrr@10"] = mrr[q]["recip_rank"]
        out[q] = row
    return out


def main():
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(20261128)
    cases = []

    def add_case(name, qrels_path, run, keep_identical=False):
        qrels = read_qrels(qrels_path)
        run_path = os.path.join(out_dir, f"{name}.trec")
        write_run(run_path, run)
        ref = reference(qrels, run, keep_identical)
        ref_path = os.path.join(out_dir, f"{name}.json")
        with open(ref_path, "w") as f:
            json.dump(ref, f)
        cases.append({
            "name": name,
            "qrels": qrels_path,
            "run": run_path,
            "reference": ref_path,
            "keep_identical_ids": keep_identical,
            "qrels_queries": len(qrels),
        })

    for name in ["scifact", "cranfield", "med"]:
        qrels_path = os.path.join(data_dir, name, "qrels", "test.tsv")
        qrels = read_qrels(qrels_path)
        all_qids = read_ids(os.path.join(data_dir, name, "embeddings", "all-MiniLM-L6-v2", "queries.ids.txt"))
        # The judged queries plus up to 50 unjudged ones (run queries without qrels).
        wanted = set(qrels) | set([q for q in all_qids if q not in qrels][:50])
        run = dense_run(data_dir, name, wanted)
        # Drop a tenth of the judged queries from the run; run queries without
        # judgments (scifact train queries, say) stay in.
        for q in sorted(qrels)[::10]:
            run.pop(q, None)
        # Put a document whose id equals the query id at the top of every third query.
        for i, q in enumerate(sorted(run)):
            if i % 3 == 0:
                run[q][q] = max(run[q].values()) + 1.0
        add_case(f"{name}-dense", qrels_path, run)
        add_case(f"{name}-dense-keep-identical", qrels_path, run, keep_identical=True)
        # Coarse scores: many ties, broken by document id.
        tied = {q: {d: round(s, 2) for d, s in docs.items()} for q, docs in run.items()}
        add_case(f"{name}-ties", qrels_path, tied)
        # A shuffled, truncated run of random depth per query.
        short = {}
        for q, docs in tied.items():
            items = list(docs.items())
            rng.shuffle(items)
            short[q] = dict(items[: rng.randint(0, 150)])
        add_case(f"{name}-short", qrels_path, {q: d for q, d in short.items() if d})

    raw = os.path.join(data_dir, "cranfield", "qrels", "test_raw_codes.tsv")
    if os.path.exists(raw):
        qrels = read_qrels(raw)
        all_qids = set(read_ids(os.path.join(data_dir, "cranfield", "embeddings", "all-MiniLM-L6-v2", "queries.ids.txt")))
        add_case("cranfield-raw-codes", raw, dense_run(data_dir, "cranfield", all_qids))

    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
