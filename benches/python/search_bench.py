"""Many-query search from Python (`Index.search_many`, results as dicts) against the
CLI (`dredge search --queries`, a TREC run) on the same index and queries, in one run,
interleaved rounds. The CLI's time is what it reports for searching (index open and
query reading excluded); Python's is the whole search_many call, conversion to dicts
included, so the ratio is the binding's overhead.

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
    times = {"cli": [], "python": []}
    for r in range(args.rounds):
        for side in (["cli", "python"] if r % 2 == 0 else ["python", "cli"]):
            if side == "cli":
                res = subprocess.run([args.dredge, "search", "--index", index.path, "--queries", qfile,
                                      "-k", str(args.k), "--out", out], capture_output=True, text=True, check=True)
                m = re.search(r"searched \d+ queries in ([0-9.]+) s", res.stderr)
                times["cli"].append(float(m.group(1)))
            else:
                t = time.perf_counter()
                run = index.search_many(queries, k=args.k)
                times["python"].append(time.perf_counter() - t)
                assert len(run) == len(queries)
    cli, py = statistics.median(times["cli"]), statistics.median(times["python"])
    print(f"cli    median {cli:.3f} s {[round(x, 3) for x in times['cli']]}")
    print(f"python median {py:.3f} s {[round(x, 3) for x in times['python']]}")
    print(f"python / cli: {py / cli:.3f}x (overhead {100 * (py / cli - 1):+.1f}%)")
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
