"""Per-round figures from a results-<rows>.jsonl (peers.py report keeps only the best
of the rounds): queries/s at the smallest ef reaching each recall target, per search
process in file order, and exact search; plus recall at ef=64/128.
usage: benches/.venv-ann/bin/python benches/ann/rounds.py benches/out/ann/results-200000.jsonl"""
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    if r.get("phase") == "build":
        print(f"build {r['engine']}: {r['build_s']:.1f} s wall, {r['build_cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_mib']:.0f} MiB")
runs = {}
for r in rows:
    if r.get("phase") == "search":
        runs.setdefault(r["engine"], []).append(r)
for eng, rs in runs.items():
    for i, r in enumerate(rs, 1):
        print(f"search {eng} round {i}: peak RSS {r['peak_rss_mib']:.0f} MiB")
        pts = r.get("hnsw", [])
        for t in sorted({p["threads"] for p in pts}):
            for target in (0.95, 0.98, 0.99):
                ok = [p for p in pts if p["threads"] == t and p["recall"] >= target]
                if not ok:
                    print(f"  t={t} >={target}: not reached"); continue
                p = min(ok, key=lambda p: p["ef"])
                print(f"  t={t} >={target}: ef {p['ef']} recall {p['recall']:.4f} qps {p['qps']:.0f} cpu_qps {p['cpu_qps']:.0f}")
            for ef in (64, 128):
                p = [p for p in pts if p["threads"] == t and p.get("ef") == ef]
                if p: print(f"  t={t} ef={ef}: recall {p[0]['recall']:.4f}")
        for p in r.get("exact", []):
            print(f"  exact t={p['threads']}: qps {p['qps']:.0f} cpu_qps {p['cpu_qps']:.0f} recall {p['recall']:.4f}")
