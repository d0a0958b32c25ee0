"""dredge vs bm25s, side by side in one run: BM25 build and search on SciFact and on
seeded Zipfian corpora. Run through benches/bm25/run.sh, which builds dredge and the
venv first.

For each corpus and each engine it measures, each step a separate process under
/usr/bin/time -v (wall time, peak RSS):
  build:  index the corpus (dredge: `dredge index`; bm25s: tokenize + index + save)
  search: the queries at k=10 and k=1000, on 1 thread and on all threads; the
          throughput counts analysis + retrieval of every query, not loading the
          index or writing the run.
It prints a Markdown report and writes benches/out/bm25/results.json (or --results).
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


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def du(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


ROUNDS = 3


def best(a, b):
    """The better of two measurements of the same thing (higher q/s, else lower wall)."""
    if a is None:
        return b
    if "queries_per_s" in a:
        return a if a["queries_per_s"] >= b["queries_per_s"] else b
    return a if a["wall_s"] <= b["wall_s"] else b


class Dredge:
    def __init__(self, binary, corpus, work):
        self.binary, self.corpus, self.work = binary, corpus, work
        self.name = "dredge"
        self.index = work / "index"

    def build(self, threads):
        shutil.rmtree(self.index, ignore_errors=True)
        wall, rss, _, _ = timed([self.binary, "index", "--corpus", self.corpus, "--out", self.index,
                                 "--threads", threads])
        return {"wall_s": wall, "peak_rss_mib": rss}

    def sizes(self):
        return {"index_mib": du(self.index / "bm25"), "docs_mib": (self.index / "docs.bin").stat().st_size / 2**20}

    def search(self, queries, k, threads, run=None):
        run = run or self.work / "run.trec"
        wall, rss, _, err = timed([self.binary, "search", "--index", self.index, "--queries", queries, "-k", k,
                                   "--threads", threads, "--out", run])
        m = re.search(r"searched (\d+) queries in ([\d.]+) s(?: \(([\d.]+) s CPU\))?: (\d+) queries/s", err)
        out = {"queries_per_s": float(m.group(4)), "wall_s": wall, "peak_rss_mib": rss}
        if m.group(3):
            out["search_cpu_s"] = float(m.group(3))
        return out

    def quality_run(self, dataset, test_queries):
        run = self.work / "quality.trec"
        subprocess.run([self.binary, "search", "--index", self.index, "--queries", dataset, "--split", "test",
                        "-k", "1000", "--out", run], check=True, capture_output=True)
        return run


class Bm25s:
    """bm25s with one retrieval backend. Backends share one index (the backend only
    changes retrieval), built by the first; the others report its build."""

    def __init__(self, python, corpus, work, backend, built_by=None):
        self.python, self.corpus, self.work, self.backend = python, corpus, work, backend
        self.name = f"bm25s ({backend})"
        self.built_by = built_by
        self.index = built_by.index if built_by else work / "index"
        self.script = HERE / "bm25s_bench.py"
        self.last_build = None

    def build(self, threads):
        if self.built_by:
            return self.built_by.last_build
        self.last_build = self._build()
        return self.last_build

    def _build(self):
        shutil.rmtree(self.index, ignore_errors=True)
        wall, rss, out, _ = timed([self.python, self.script, "build", "--corpus", self.corpus, "--out", self.index,
                                   "--backend", self.backend])
        return {"wall_s": wall, "peak_rss_mib": rss, "inner": json.loads(out)}

    def sizes(self):
        return {"index_mib": du(self.index) - (self.index / "doc_ids.json").stat().st_size / 2**20}

    def search(self, queries, k, threads, run=None):
        cmd = [self.python, self.script, "search", "--index", self.index, "--queries", queries, "--k", k,
               "--threads", threads, "--backend", self.backend]
        wall, rss, out, _ = timed(cmd + (["--out", run] if run else []))
        inner = json.loads(out)
        return {"queries_per_s": inner["queries_per_s"], "wall_s": wall, "peak_rss_mib": rss, "inner": inner}

    def quality_run(self, dataset, test_queries):
        run = self.work / "quality.trec"
        self.search(test_queries, 1000, 1, run)
        return run


def bm25s_engines(python, corpus, work, backends):
    if not backends:
        return []
    first = Bm25s(python, corpus, fresh(work / f"bm25s-{backends[0]}"), backends[0])
    return [first] + [Bm25s(python, corpus, fresh(work / f"bm25s-{b}"), b, first) for b in backends[1:]]


def compare(engines, queries, threads_all, ks, dataset=None, test_queries=None, build_rounds=ROUNDS):
    """Measures every engine; each measurement is repeated ROUNDS times, engines
    interleaved, and the best kept, so that a burst of load on a shared machine
    hurts no engine more than another."""
    results = [{"engine": e.name, "build": {}, "search": {}} for e in engines]
    build_threads = sorted({1, threads_all})
    for _ in range(build_rounds):
        for e, r in zip(engines, results):
            # Dredge builds last with all threads: that index is the one searched.
            for t in build_threads if isinstance(e, Dredge) else [1]:
                r["build"][t] = best(r["build"].get(t), e.build(t))
    for e, r in zip(engines, results):
        r.update(e.sizes())
    for _ in range(ROUNDS):
        for k in ks:
            for t in sorted({1, threads_all}):
                for e, r in zip(engines, results):
                    key = f"k{k}-t{t}"
                    r["search"][key] = best(r["search"].get(key), e.search(queries, k, t))
    if dataset:
        for e, r in zip(engines, results):
            r["quality"] = evaluate(DREDGE, dataset, e.quality_run(dataset, test_queries))
    return results


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
        head = "| engine | build s (1 thr) | build s (all) | build peak RSS MiB | BM25 index MiB |"
        cols = [f"k{k}-t{t}" for k in (10, 1000) for t in sorted({1, threads_all})]
        head += "".join(f" q/s k={c.split('-')[0][1:]} {c.split('-t')[1]} thr |" for c in cols)
        head += " search peak RSS MiB |"
        if any("quality" in e for e in engines):
            head += " nDCG@10 | R@100 |"
        lines.append(head)
        lines.append("|" + "---|" * (head.count("|") - 1))
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
            b1 = e["build"][1]["wall_s"] / base["build"][1]["wall_s"]
            m = max(v["peak_rss_mib"] for v in e["build"].values()) / max(v["peak_rss_mib"] for v in base["build"].values())
            lines.append(f"\ndredge vs {e['engine']}: queries/s {', '.join(ratios)}; build {b1:.1f}x faster "
                         f"on 1 thread, {b:.1f}x on all; build peak RSS {m:.1f}x lower")
        if "docs_mib" in base:
            lines.append(f"\n(dredge also stores the documents' text for output: docs.bin {base['docs_mib']:.1f} MiB.)")
        lines.append("")
    return "\n".join(lines)


DREDGE = None


def main():
    global DREDGE
    p = argparse.ArgumentParser()
    p.add_argument("--dredge", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--scifact", default=os.environ.get("DREDGE_SHARED", "/work/shared") + "/data/scifact",
                   help="the SciFact folder ('' to skip SciFact)")
    p.add_argument("--sizes", default="100000,1000000", help="Zipfian corpus sizes ('' for none)")
    p.add_argument("--bm25s-max-docs", type=int, default=1_000_000, help="skip bm25s above this corpus size")
    p.add_argument("--backends", default="numpy,numba", help="bm25s backends ('' for dredge alone)")
    p.add_argument("--results", default="results.json", help="file name under benches/out/bm25/")
    args = p.parse_args()
    DREDGE = args.dredge
    OUT.mkdir(parents=True, exist_ok=True)
    threads_all = os.cpu_count()
    backends = [b for b in args.backends.split(",") if b]
    results = {}

    if args.scifact:
        stream, test = scifact_queries(args.scifact)
        name = "SciFact (5,183 docs; 5,545 queries = all 1,109 x 5)"
        engines = [Dredge(args.dredge, args.scifact, fresh(OUT / "scifact/dredge"))]
        engines += bm25s_engines(args.python, Path(args.scifact) / "corpus.jsonl", OUT / "scifact", backends)
        results[name] = compare(engines, stream, threads_all, (10, 1000), args.scifact, test)
        print(fmt_report({name: results[name]}, threads_all), flush=True)

    for size in [int(s) for s in args.sizes.split(",") if s]:
        data = OUT / f"zipf-{size}"
        if not (data / "queries.jsonl").exists():
            subprocess.run([args.python, HERE / "gen_zipf.py", "--docs", size, "--seed", "7", "--out", data],
                           check=True)
        name = f"Zipfian {size:,} docs (seed 7; 1,000 queries)"
        engines = [Dredge(args.dredge, data, fresh(OUT / f"zipf-{size}-runs/dredge"))]
        if size <= args.bm25s_max_docs:
            engines += bm25s_engines(args.python, data / "corpus.jsonl", OUT / f"zipf-{size}-runs", backends)
        # Builds of large corpora take minutes: once each; searches three times.
        results[name] = compare(engines, data / "queries.jsonl", threads_all, (10, 1000), build_rounds=1)
        print(fmt_report({name: results[name]}, threads_all), flush=True)

    (OUT / args.results).write_text(json.dumps(results, indent=1))
    print("\n" + fmt_report(results, threads_all))


if __name__ == "__main__":
    main()
