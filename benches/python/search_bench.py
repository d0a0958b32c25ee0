"""Many-query search from Python (`Index.search_many`, results as dicts) against the
CLI (`dredge search --queries`, a TREC run) on the same index and queries, in one run,
interleaved rounds, two comparisons:

- whole: the CLI command's wall time (process start, index open, reading the queries,
  searching, writing the run) against opening the index from Python and calling
  `search_many` (searching and building the dicts), in a running interpreter;
- search only: what the CLI reports for searching (its writing excluded) against the
  `search_many` call, whose dicts of k entries per query cost what Python's own
  dict building costs, and against `search_many(..., arrays=True)` (no Python object
  per hit).

    python benches/python/search_bench.py --data ../shared/data/scifact --dredge target/release/dredge

The queries are every document title of the corpus (thousands of realistic short
queries); k = 100; BM25.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

import dredge


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--dredge", required=True, help="the dredge binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    emb = os.path.join(args.data, "embeddings", "all-MiniLM-L6-v2")
    index = dredge.Index.build(os.path.join(tmp, "index"), corpus=args.data,
                               vectors=os.path.join(emb, "corpus.npy"),
                               vector_ids=os.path.join(emb, "corpus.ids.txt"), ann="flat")
    queries = []
    with open(os.path.join(args.data, "corpus.jsonl")) as f:
        for line in f:
            doc = json.loads(line)
            if doc.get("title"):
                queries.append((f"q{doc['_id']}", doc["title"]))
    qfile = os.path.join(tmp, "queries.jsonl")
    with open(qfile, "w") as f:
        for qid, text in queries:
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    print(f"{len(queries)} queries, k={args.k}, {os.cpu_count()} cores")
    out = os.path.join(tmp, "run.trec")
    times = {"cli": [], "python": [], "cli-whole": [], "python-whole": [], "python-arrays": []}
    for r in range(args.rounds):
        for side in (["cli", "python"] if r % 2 == 0 else ["python", "cli"]):
            if side == "cli":
                t = time.perf_counter()
                res = subprocess.run([args.dredge, "search", "--index", index.path, "--queries", qfile,
                                      "-k", str(args.k), "--out", out], capture_output=True, text=True, check=True)
                times["cli-whole"].append(time.perf_counter() - t)
                m = re.search(r"searched \d+ queries in ([0-9.]+) s", res.stderr)
                times["cli"].append(float(m.group(1)))
            else:
                t = time.perf_counter()
                fresh = dredge.Index(index.path)
                t_open = time.perf_counter()
                run = fresh.search_many(queries, k=args.k)
                end = time.perf_counter()
                times["python"].append(end - t_open)
                times["python-whole"].append(end - t)
                t = time.perf_counter()
                fresh.search_many(queries, k=args.k, arrays=True)
                times["python-arrays"].append(time.perf_counter() - t)
                assert len(run) == len(queries)
    for cli_key, py_key, what in [
        ("cli-whole", "python-whole", "whole"),
        ("cli", "python", "search only"),
        ("cli", "python-arrays", "search only, arrays=True"),
    ]:
        cli, py = statistics.median(times[cli_key]), statistics.median(times[py_key])
        print(f"{what}: cli median {cli:.3f} s {[round(x, 3) for x in times[cli_key]]}")
        print(f"{what}: python median {py:.3f} s {[round(x, 3) for x in times[py_key]]}")
        print(f"{what}: python / cli {py / cli:.3f}x ({100 * (py / cli - 1):+.1f}%)")
    # The same documents and scores as the CLI's run.
    cli_run = {}
    with open(out) as f:
        for line in f:
            q, _, d, _, s, _ = line.split()
            cli_run.setdefault(q, {})[d] = float(s)
    same = all(set(cli_run[q]) == set(run[q]) for q in cli_run)
    print(f"same documents per query as the CLI: {same}")


if __name__ == "__main__":
    main()
