"""Tables for BENCHMARKS.md from benches/mine/run.sh's results (fn.jsonl, speed.jsonl).

    python summarize.py OUT_DIR
"""

import json
import statistics
import sys
from pathlib import Path


def main():
    out = Path(sys.argv[1])
    queries = 809
    print("\n| candidates | --relative-margin | held-out positives mined as negatives | negatives (held-out queries) | false-negative rate | held-out caught by filters | queries left short |")
    print("|---|---|---|---|---|---|---|")
    for line in (out / "fn.jsonl").read_text().splitlines():
        r = json.loads(line)
        rate = "n/a" if r["rate"] is None else f"{100 * r['rate']:.2f}%"
        print(
            f"| {r['candidates']} | {r['relative_margin']} | {r['false_negatives']} | {r['negatives']} | {rate} | "
            f"{r['caught']} of {r['held_out']} | {r['short_queries']} |"
        )
    times, rounds = {}, {}
    for line in (out / "speed.jsonl").read_text().splitlines():
        r = json.loads(line)
        times.setdefault(r["who"], []).append(r["seconds"])
        rounds.setdefault(r["round"], {})[r["who"]] = r["seconds"]
    ref = "dredge mine (dense)"
    base = statistics.median(times.get(ref, [float("nan")]))
    print(f"\n| mining step, SciFact train ({queries} queries) | median s | queries/s | time vs dredge mine (dense): ratio of medians | median of per-round ratios |")
    print("|---|---|---|---|---|")
    for who, ts in times.items():
        m = statistics.median(ts)
        paired = [r[who] / r[ref] for r in rounds.values() if who in r and ref in r]
        per_round = f"{statistics.median(paired):.1f}x" if paired else "n/a"
        print(f"| {who} | {m:.3f} | {queries / m:,.0f} | {m / base:.1f}x | {per_round} |")
    print(f"\n(medians of {max(len(t) for t in times.values())} rounds; min..max per row: "
          + "; ".join(f"{w}: {min(t):.3f}..{max(t):.3f}" for w, t in times.items()) + ")")
    e2e = out / "e2e.jsonl"
    if e2e.exists():
        whole = {}
        for line in e2e.read_text().splitlines():
            r = json.loads(line)
            whole.setdefault(r["who"], []).append(r["seconds"])
        ref = statistics.median(whole.get("dredge mine (dense)", [float("nan")]))
        print("\n| whole command, SciFact train | median wall s | vs dredge mine |")
        print("|---|---|---|")
        for who, ts in whole.items():
            m = statistics.median(ts)
            print(f"| {who} | {m:.2f} | {m / ref:.0f}x |")


if __name__ == "__main__":
    main()
