"""Hide one positive of every multi-positive query of a BEIR qrels file.

Writes <out>/visible.tsv (the qrels the miner is told about) and
<out>/holdout.tsv (one hidden positive per multi-positive query: the one listed
last), both in the BEIR qrels form. Standard library only.

    python holdout.py QRELS.tsv OUT_DIR
"""

import sys
from collections import OrderedDict
from pathlib import Path


def main():
    qrels, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    lines = qrels.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [l.split("\t") for l in lines[1:] if l.strip()]
    positives = OrderedDict()
    for q, d, g in rows:
        if int(g) > 0:
            positives.setdefault(q, []).append(d)
    hidden = {q: docs[-1] for q, docs in positives.items() if len(docs) > 1}
    with open(out / "visible.tsv", "w", encoding="utf-8") as v, open(out / "holdout.tsv", "w", encoding="utf-8") as h:
        v.write(header + "\n")
        h.write(header + "\n")
        for q, d, g in rows:
            (h if hidden.get(q) == d else v).write(f"{q}\t{d}\t{g}\n")
    print(f"{len(positives)} queries with positives, {len(hidden)} with more than one: one positive each held out")


if __name__ == "__main__":
    main()
