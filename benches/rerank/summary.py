"""Medians of benches/rerank/run.sh's speed lines side by side, and the largest
score difference between dredge and sentence-transformers on the same pairs.

    python3 summary.py speed.jsonl DREDGE_SCORES.txt ST_SCORES.txt
"""

import json
import statistics
import sys
from collections import defaultdict


def main():
    rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
    by = defaultdict(list)
    for r in rows:
        by[r["engine"]].append(r["pairs_per_second"])
    medians = {}
    first = rows[0]
    print("%d pairs, batch %d, max length %d, %d threads" % (
        first["pairs"], first["batch"], first["max_length"], first["threads"]))
    for engine, values in by.items():
        medians[engine] = statistics.median(values)
        print("  %-50s %7.1f pairs/s median (rounds: %s)" % (
            engine, medians[engine], ", ".join("%.1f" % v for v in values)))
    for ours in (e for e in medians if e.startswith("dredge")):
        for peer in (e for e in medians if not e.startswith("dredge")):
            print("  %s / %s: %.2fx" % (ours, peer, medians[ours] / medians[peer]))
    a = [float(l) for l in open(sys.argv[2])]
    b = [float(l) for l in open(sys.argv[3])]
    assert len(a) == len(b), (len(a), len(b))
    diff = max(abs(x - y) for x, y in zip(a, b))
    spread = max(b) - min(b)
    print("  scores: max |dredge - sentence-transformers| = %.2e over %d pairs (scores span %.3f)" % (
        diff, len(a), spread))


if __name__ == "__main__":
    main()
