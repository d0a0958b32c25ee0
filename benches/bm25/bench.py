"""dredge vs bm25s, side by side in one run: BM25 build and search on SciFact and on
seeded Zipfian corpora. Run through benches/bm25/run.sh, which builds dredge and the
venv first.

For each corpus and each engine it measures, each step a separate process under
/usr/bin/time -v (wall time, peak RSS):
  build:  index the corpus (dredge: `dredge index`; bm25s: tokenize + index + save)
  search: the queries at k=10 and k=1000, on 1 thread and on all threads; the
          throughput counts analysis + retrieval of every query, not loading the
          index or writing the run.
It prints a Markdown report and writes benches/out/bm25/results.json.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
OUT = ROOT / "benches/out/bm25"


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (wall_s, peak_rss_mib, stdout, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + [str(c) for c in cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    return wall, rss, p.stdout, p.stderr


def du(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def dredge_side(dredge, corpus, queries, name, threads_all, ks, eval_dataset=None):
    work = OUT / name / "dredge"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    res = {"engine": "dredge", "build": {}, "search": {}}
    for threads in sorted({1, threads_all}):
        index = work / f"index-t{threads}"
        wall, rss, _, err = timed([dredge, "index", "--corpus", corpus, "--out", index, "--threads", threads])
        res["build"][threads] = {"wall_s": wall, "peak_rss_mib": rss}
    index = work / f"index-t{threads_all}"
    res["index_mib"] = du(index)
    res["bm25_mib"] = du(index / "bm25")
    for k in ks:
        for threads in sorted({1, threads_all}):
            run = work / f"run-k{k}-t{threads}.trec"
            wall, rss, _, err = timed(
                [dredge, "search", "--index", index, "--queries", queries, "-k", k, "--threads", threads, "--out", run]
            )
            m = re.search(r"searched (\d+) queries in ([\d.]+) s: (\d+) queries/s", err)
            res["search"][f"k{k}-t{threads}"] = {
                "queries_per_s": float(m.group(3)),
                "wall_s": wall,
                "peak_rss_mib": rss,
            }
    if eval_dataset:
        run = work / "quality.trec"
        subprocess.run(
            [dredge, "search", "--index", index, "--queries", eval_dataset, "--split", "test", "-k", "1000", "--out", run],
            check=True, capture_output=True,
        )
        res["quality"] = evaluate(dredge, eval_dataset, run)
    return res


def bm25s_side(python, corpus, queries, name, threads_all, ks, backend, eval_dataset=None, test_queries=None):
    work = OUT / name / f"bm25s-{backend}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script = HERE / "bm25s_bench.py"
    index = work / "index"
    res = {"engine": f"bm25s ({backend})", "build": {}, "search": {}}
    wall, rss, out, _ = timed([python, script, "build", "--corpus", corpus, "--out", index, "--backend", backend])
    res["build"][1] = {"wall_s": wall, "peak_rss_mib": rss, "inner": json.loads(out)}
    res["index_mib"] = du(index)
    for k in ks:
        for threads in sorted({1, threads_all}):
            wall, rss, out, _ = timed(
                [python, script, "search", "--index", index, "--queries", queries, "--k", k, "--threads", threads,
                 "--backend", backend]
            )
            inner = json.loads(out)
            res["search"][f"k{k}-t{threads}"] = {"queries_per_s": inner["queries_per_s"], "wall_s": wall,
                                                  "peak_rss_mib": rss, "inner": inner}
    if eval_dataset:
        run = work / "quality.trec"
        subprocess.run([python, script, "search", "--index", index, "--queries", test_queries, "--k", "1000",
                        "--out", run, "--backend", backend], check=True, capture_output=True)
        res["quality"] = evaluate(DREDGE, eval_dataset, run)
    return res


def evaluate(dredge, dataset, run):
    p = subprocess.run([dredge, "eval", "--qrels", dataset, "--split", "test", "--run", run, "-m",
                        "ndcg@10,recall@100", "--format", "json"], check=True, capture_output=True, text=True)
    return json.loads(p.stdout)


def scifact_queries(dataset):
    """All SciFact queries (train + test, 1,109) written 5 times: a long enough
    stream to time; and the test queries alone, for quality."""
    qs = [json.loads(l) for l in open(Path(dataset) / "queries.jsonl", encoding="utf-8") if l.strip()]
    stream = OUT / "scifact-queries-x5.jsonl"
    with open(stream, "w", encoding="utf-8") as f:
        for r in range(5):
            for q in qs:
                f.write(json.dumps({"_id": f"{q['_id']}-{r}", "text": q["text"]}) + "\n")
    test_ids = {l.split("\t")[0] for l in list(open(Path(dataset) / "qrels/test.tsv"))[1:]}
    test = OUT / "scifact-test-queries.jsonl"
    with open(test, "w", encoding="utf-8") as f:
        for q in qs:
            if q["_id"] in test_ids:
                f.write(json.dumps(q) + "\n")
    return stream, test


def fmt_report(results, threads_all):
    lines = []
    for name, engines in results.items():
        lines.append(f"### {name}\n")
        head = "| engine | build s (1 thr) | build s (all) | build peak RSS MiB | index MiB |"
        cols = [f"k{k}-t{t}" for k in (10, 1000) for t in sorted({1, threads_all})]
        head += "".join(f" q/s k={c.split('-')[0][1:]} {c.split('-t')[1]} thr |" for c in cols)
        head += " search peak RSS MiB |"
        if any("quality" in e for e in engines):
            head += " nDCG@10 | R@100 |"
        lines.append(head)
        lines.append("|" + "---|" * head.count("|")[:-1] if False else "|" + "---|" * (head.count("|") - 1))
        for e in engines:
            b1 = e["build"].get(1, {}).get("wall_s")
            ball = e["build"].get(threads_all, e["build"].get(1, {})).get("wall_s")
            brss = max(v["peak_rss_mib"] for v in e["build"].values())
            row = f"| {e['engine']} | {b1:.2f} | {ball:.2f} | {brss:.0f} | {e['index_mib']:.1f} |"
            for c in cols:
                s = e["search"].get(c)
                row += f" {s['queries_per_s']:.0f} |" if s else " - |"
            row += f" {max(s['peak_rss_mib'] for s in e['search'].values()):.0f} |"
            if "quality" in e:
                row += f" {e['quality']['ndcg@10']:.4f} | {e['quality']['recall@100']:.4f} |"
            lines.append(row)
        base = engines[0]
        for e in engines[1:]:
            ratios = []
            for c in cols:
                if c in e["search"]:
                    ratios.append(f"{c}: {base['search'][c]['queries_per_s'] / e['search'][c]['queries_per_s']:.1f}x")
            b = e["build"][1]["wall_s"] / base["build"][threads_all]["wall_s"]
            m = max(v["peak_rss_mib"] for v in e["build"].values()) / max(v["peak_rss_mib"] for v in base["build"].values())
            lines.append(f"\ndredge vs {e['engine']}: queries/s {', '.join(ratios)}; build {b:.1f}x faster; "
                         f"build peak RSS {m:.1f}x lower")
        lines.append("")
    return "\n".join(lines)


DREDGE = None


def main():
    global DREDGE
    p = argparse.ArgumentParser()
    p.add_argument("--dredge", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--scifact", default=os.environ.get("DREDGE_SHARED", "/work/shared") + "/data/scifact")
    p.add_argument("--sizes", default="100000,1000000", help="Zipfian corpus sizes ('' for none)")
    p.add_argument("--bm25s-max-docs", type=int, default=1_000_000, help="skip bm25s above this corpus size")
    p.add_argument("--backends", default="numpy,numba")
    args = p.parse_args()
    DREDGE = args.dredge
    OUT.mkdir(parents=True, exist_ok=True)
    threads_all = os.cpu_count()
    backends = [b for b in args.backends.split(",") if b]
    results = {}

    stream, test = scifact_queries(args.scifact)
    name = "SciFact (5,183 docs; 5,545 queries = all 1,109 x 5)"
    results[name] = [dredge_side(args.dredge, args.scifact, stream, "scifact", threads_all, (10, 1000), args.scifact)]
    for backend in backends:
        results[name].append(bm25s_side(args.python, Path(args.scifact) / "corpus.jsonl", stream, "scifact",
                                        threads_all, (10, 1000), backend, args.scifact, test))
    print(fmt_report({name: results[name]}, threads_all), flush=True)

    for size in [int(s) for s in args.sizes.split(",") if s]:
        data = OUT / f"zipf-{size}"
        if not (data / "queries.jsonl").exists():
            subprocess.run([args.python, HERE / "gen_zipf.py", "--docs", size, "--seed", "7", "--out", data],
                           check=True)
        name = f"Zipfian {size:,} docs (seed 7; 1,000 queries)"
        results[name] = [dredge_side(args.dredge, data, data / "queries.jsonl", f"zipf-{size}", threads_all, (10, 1000))]
        if size <= args.bm25s_max_docs:
            for backend in backends:
                results[name].append(bm25s_side(args.python, data / "corpus.jsonl", data / "queries.jsonl",
                                                f"zipf-{size}", threads_all, (10, 1000), backend))
        print(fmt_report({name: results[name]}, threads_all), flush=True)

    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print("\n" + fmt_report(results, threads_all))


if __name__ == "__main__":
    main()
