"""Medians of the speed lines of benches/embed/run.sh, side by side.

    python3 summary.py speed.jsonl

One row per tool (dredge-embed with its precision and kernel path,
sentence-transformers with its backend) and batch size: the median passages/s over the
rounds, the median per CPU second (tokens/s the same CPU time would give with the cores
to itself), and dredge's ratio to each peer (the median of dredge over the median of
the peer), the peers of the same precision marked.
"""

import json
import statistics
import sys
from collections import defaultdict


def name(row):
    if row["tool"] == "dredge-embed":
        return "dredge %s (%s)" % (row.get("precision", "fp32"), row.get("kernels", "?"))
    if row["tool"] == "onnxruntime":
        return row["backend"]
    return "sentence-transformers %s" % row.get("backend", "torch float32")


def main():
    rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    by = defaultdict(list)
    for row in rows:
        by[(row["batch_size"], name(row))].append(row)
    for batch in sorted({b for b, _ in by}):
        print("\nbatch %d, %s passages:" % (batch, rows[0]["passages"]))
        tools = sorted(n for b, n in by if b == batch)
        medians = {}
        for tool in tools:
            runs = by[(batch, tool)]
            pps = statistics.median(r["passages_per_s"] for r in runs)
            cpu = statistics.median(r["tokens"] / r["cpu_seconds"] for r in runs)
            medians[tool] = (pps, cpu)
            print(
                "  %-48s %6.1f passages/s (rounds: %s)  %6.0f tokens per CPU second"
                % (tool, pps, ", ".join("%.1f" % r["passages_per_s"] for r in runs), cpu)
            )
        for ours in (t for t in tools if t.startswith("dredge")):
            for peer in (t for t in tools if not t.startswith("dredge")):
                same = ("int8" in ours) == ("int8" in peer)
                print(
                    "  %s / %s: %.2fx wall, %.2fx per CPU second%s"
                    % (
                        ours,
                        peer,
                        medians[ours][0] / medians[peer][0],
                        medians[ours][1] / medians[peer][1],
                        "  (same precision)" if same else "",
                    )
                )


if __name__ == "__main__":
    main()
