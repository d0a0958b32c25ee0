"""Data generation and the Python peers (hnswlib, faiss) of the dense benchmark.

Each subcommand runs one phase in its own process and prints one JSON line with
its peak RSS, so that memory is measured per phase as for the Rust driver
(crates/dredge-ann/examples/ann_bench.rs). Driven by benches/ann/run.sh.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def recall(found, gt, k):
    hits = 0
    for row, truth in zip(found, gt):
        hits += len(set(int(x) for x in row[:k]) & set(int(x) for x in truth[:k]))
    return hits / (len(found) * k)


def best_of(repeat, fn):
    """The best (lowest wall time) of `repeat` runs: (wall s, process CPU s), result."""
    best, out = (float("inf"), float("inf")), None
    for _ in range(max(1, repeat)):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        if wall < best[0]:
            best = (wall, cpu)
    return best, out


def point(threads, ef, queries, timing, rec):
    p = {"threads": threads, "qps": queries / timing[0], "cpu_qps": queries / timing[1], "recall": rec}
    if ef is not None:
        p["ef"] = ef
    return p


def timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def emit(obj):
    obj["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(obj), flush=True)


def clustered(rng, centres, rows, spread, chunk=50_000):
    """Rows around random centres, L2-normalised, float32."""
    clusters, dim = centres.shape
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        assign = rng.integers(clusters, size=n)
        x = centres[assign] + spread * rng.standard_normal((n, dim), dtype=np.float32) / np.sqrt(dim)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + n] = x
    return out


def gen(a):
    import faiss

    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    centres = (rng.standard_normal((a.clusters, a.dim), dtype=np.float32) / np.sqrt(a.dim)).astype(np.float32)
    base = clustered(rng, centres, a.rows, a.spread)
    queries = clustered(np.random.default_rng(a.seed + 1), centres, a.queries, a.spread)
    np.save(os.path.join(a.out, "base.npy"), base)
    np.save(os.path.join(a.out, "queries.npy"), queries)
    faiss.omp_set_num_threads(os.cpu_count())
    index = faiss.IndexFlatIP(a.dim)
    index.add(base)
    _, ids = index.search(queries, 100)
    np.save(os.path.join(a.out, "gt.npy"), ids.astype(np.int64))
    emit({"phase": "gen", "rows": a.rows, "queries": a.queries, "dim": a.dim, "clusters": a.clusters, "spread": a.spread, "seed": a.seed})


def hnswlib_build(a):
    import hnswlib

    base = np.load(a.base)
    def build():
        index = hnswlib.Index(space="ip", dim=base.shape[1])
        index.init_index(max_elements=base.shape[0], ef_construction=a.efc, M=a.m, random_seed=a.seed)
        index.set_num_threads(a.threads)
        index.add_items(base, np.arange(base.shape[0]))
        return index

    build_s, build_cpu_s, index = timed(build)
    index.save_index(a.index)
    emit({"engine": "hnswlib", "phase": "build", "rows": base.shape[0], "threads": a.threads, "build_s": build_s, "build_cpu_s": build_cpu_s})


def hnswlib_search(a):
    import hnswlib

    queries, gt = np.load(a.queries), np.load(a.gt)
    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=queries.shape[1])
    index.load_index(a.index)
    open_s = time.perf_counter() - t
    out = []
    for threads in a.threads:
        index.set_ef(max(a.efs))
        index.knn_query(queries, k=a.k, num_threads=threads)
        for ef in a.efs:
            index.set_ef(ef)
            timing, (labels, _) = best_of(a.repeat, lambda: index.knn_query(queries, k=a.k, num_threads=threads))
            out.append(point(threads, ef, len(queries), timing, recall(labels, gt, a.k)))
    emit({"engine": "hnswlib", "phase": "search", "open_s": open_s, "hnsw": out})


def faiss_hnsw_build(a):
    import faiss

    base = np.load(a.base)
    faiss.omp_set_num_threads(a.threads)

    def build():
        index = faiss.IndexHNSWFlat(base.shape[1], a.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = a.efc
        index.add(base)
        return index

    build_s, build_cpu_s, index = timed(build)
    faiss.write_index(index, a.index)
    emit({"engine": "faiss-hnsw", "phase": "build", "rows": base.shape[0], "threads": a.threads, "build_s": build_s, "build_cpu_s": build_cpu_s})


def faiss_hnsw_search(a):
    import faiss

    queries, gt = np.load(a.queries), np.load(a.gt)
    t = time.perf_counter()
    index = faiss.read_index(a.index)
    open_s = time.perf_counter() - t
    out = []
    for threads in a.threads:
        faiss.omp_set_num_threads(threads)
        index.hnsw.efSearch = max(a.efs)
        index.search(queries, a.k)
        for ef in a.efs:
            index.hnsw.efSearch = ef
            timing, (_, labels) = best_of(a.repeat, lambda: index.search(queries, a.k))
            out.append(point(threads, ef, len(queries), timing, recall(labels, gt, a.k)))
    emit({"engine": "faiss-hnsw", "phase": "search", "open_s": open_s, "hnsw": out})


def faiss_flat(a):
    import faiss

    base, queries, gt = np.load(a.base), np.load(a.queries), np.load(a.gt)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    out = []
    for threads in a.threads:
        faiss.omp_set_num_threads(threads)
        timing, (_, labels) = best_of(a.repeat, lambda: index.search(queries, a.k))
        out.append(point(threads, None, len(queries), timing, recall(labels, gt, a.k)))
    emit({"engine": "faiss-flat", "phase": "search", "exact": out})


TARGETS = (0.95, 0.98, 0.99)


def at_recall(points, threads, target):
    """(qps, cpu_qps, ef) at the smallest ef whose recall@10 reaches `target`, the
    best qps over rounds; None when no ef of the sweep reaches it."""
    ok = [p for p in points if p["threads"] == threads and p["recall"] >= target]
    if not ok:
        return None
    ef = min(p["ef"] for p in ok)
    best = [p for p in ok if p["ef"] == ef]
    return max(p["qps"] for p in best), max(p["cpu_qps"] for p in best), ef


def report(a):
    lines = []
    out = lines.append
    for path in a.results:
        rows = [json.loads(l) for l in open(path) if l.strip()]
        gen_info = next((r for r in rows if r.get("phase") == "gen"), {})
        n, dim = gen_info.get("rows"), gen_info.get("dim")
        builds = {r["engine"]: r for r in rows if r.get("phase") == "build"}
        searches = {}
        exact = {}
        search_rss = {}
        for r in rows:
            if r.get("phase") in ("search", "build+search"):
                searches.setdefault(r["engine"], []).extend(r.get("hnsw", []))
                exact.setdefault(r["engine"], []).extend(r.get("exact", []))
                search_rss[r["engine"]] = max(search_rss.get(r["engine"], 0), r["peak_rss_mib"])
                if r["engine"] == "hnsw_rs":
                    builds["hnsw_rs"] = r
        out(f"### {n:,} x {dim} (clustered, normalised; {gen_info.get('clusters')} clusters, spread {gen_info.get('spread')}, seed {gen_info.get('seed')}; {gen_info.get('queries')} queries)")
        out("")
        base = builds.get("hnswlib")
        out("| engine | build s (wall) | build CPU s | build vs hnswlib (wall / CPU) | build peak RSS MiB | vs hnswlib | search peak RSS MiB | vs hnswlib |")
        out("|---|---|---|---|---|---|---|---|")
        for eng in ["hnswlib", "dredge", "faiss-hnsw", "hnsw_rs"]:
            b = builds.get(eng)
            if not b:
                continue
            ratio = f"{b['build_s'] / base['build_s']:.2f}x / {b['build_cpu_s'] / base['build_cpu_s']:.2f}x" if base else ""
            mem_ratio = f"{b['peak_rss_mib'] / base['peak_rss_mib']:.2f}x" if base and eng != "hnsw_rs" else ""
            srss = search_rss.get(eng)
            srss_ratio = f"{srss / search_rss['hnswlib']:.2f}x" if srss and "hnswlib" in search_rss and eng != "hnsw_rs" else ""
            build_rss = f"{b['peak_rss_mib']:.0f}" if eng != "hnsw_rs" else f"({b['peak_rss_mib']:.0f}, build+search)"
            out(f"| {eng} | {b['build_s']:.1f} | {b['build_cpu_s']:.1f} | {ratio} | {build_rss} | {mem_ratio} | {'' if eng == 'hnsw_rs' or srss is None else f'{srss:.0f}'} | {srss_ratio} |")
        out("")
        threads_list = sorted({p["threads"] for pts in searches.values() for p in pts})
        engines = [e for e in ["hnswlib", "dredge", "faiss-hnsw", "hnsw_rs"] if e in searches]
        out("| threads | recall@10 >= | " + " | ".join(f"{e} q/s (ef)" for e in engines) + " | dredge / hnswlib (wall, CPU) |")
        out("|---|---|" + "---|" * len(engines) + "---|")
        for t in threads_list:
            for target in TARGETS:
                cells = []
                got = {e: at_recall(searches[e], t, target) for e in engines}
                for e in engines:
                    g = got[e]
                    cells.append("not reached" if g is None else f"{g[0]:,.0f} ({g[2]})")
                d, h = got.get("dredge"), got.get("hnswlib")
                ratio = f"{d[0] / h[0]:.2f}x, {d[1] / h[1]:.2f}x" if d and h else ""
                out(f"| {t} | {target} | " + " | ".join(cells) + f" | {ratio} |")
        out("")
        if exact.get("dredge") and exact.get("faiss-flat"):
            out("| threads | faiss IndexFlatIP q/s | dredge exact q/s | dredge / faiss (wall, CPU) | dredge exact recall@10 vs faiss |")
            out("|---|---|---|---|---|")
            for t in threads_list:
                f = [p for p in exact["faiss-flat"] if p["threads"] == t]
                d = [p for p in exact["dredge"] if p["threads"] == t]
                if not f or not d:
                    continue
                fq, fc = max(p["qps"] for p in f), max(p["cpu_qps"] for p in f)
                dq, dc = max(p["qps"] for p in d), max(p["cpu_qps"] for p in d)
                out(f"| {t} | {fq:,.0f} | {dq:,.0f} | {dq / fq:.2f}x, {dc / fc:.2f}x | {min(p['recall'] for p in d):.4f} |")
            out("")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--queries", type=int, default=1000)
    g.add_argument("--dim", type=int, default=384)
    g.add_argument("--clusters", type=int, default=1000)
    g.add_argument("--spread", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--out", required=True)
    for name in ["hnswlib-build", "faiss-hnsw-build"]:
        b = sub.add_parser(name)
        b.add_argument("--base", required=True)
        b.add_argument("--index", required=True)
        b.add_argument("--m", type=int, default=16)
        b.add_argument("--efc", type=int, default=200)
        b.add_argument("--seed", type=int, default=0)
        b.add_argument("--threads", type=int, default=os.cpu_count())
    ints = lambda s: [int(x) for x in s.split(",")]
    for name in ["hnswlib-search", "faiss-hnsw-search", "faiss-flat"]:
        s = sub.add_parser(name)
        s.add_argument("--base")
        s.add_argument("--index")
        s.add_argument("--queries", required=True)
        s.add_argument("--gt", required=True)
        s.add_argument("--k", type=int, default=10)
        s.add_argument("--efs", type=ints, default=ints("10,16,24,32,48,64,96,128,192,256,384,512"))
        s.add_argument("--threads", type=ints, default=[1, os.cpu_count()])
        s.add_argument("--repeat", type=int, default=2)
    r = sub.add_parser("report")
    r.add_argument("results", nargs="+")
    a = p.parse_args()
    {
        "report": report,
        "gen": gen,
        "hnswlib-build": hnswlib_build,
        "hnswlib-search": hnswlib_search,
        "faiss-hnsw-build": faiss_hnsw_build,
        "faiss-hnsw-search": faiss_hnsw_search,
        "faiss-flat": faiss_flat,
    }[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
