"""Checks dredge's Porter stemmer against NLTK's implementation of Martin Porter's
reference algorithm (mode MARTIN_EXTENSIONS: the C version Lucene's PorterStemmer
ports), and shows where Snowball's "porter" (PyStemmer) differs.

    cargo build --release -p dredge-bm25 --example analyze
    benches/.venv-bm25/bin/python benches/bm25/check_stemmer.py /work/shared/data/{scifact,cranfield,med}

Every lowercase ASCII word of the corpora (stop words removed) goes through
`examples/analyze` (the full analyzer: for such words, only the stemmer acts).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import Stemmer
from nltk.stem.porter import PorterStemmer

STOP = set("a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with".split())
ROOT = Path(__file__).resolve().parents[2]


def main(dirs):
    words = set()
    for d in dirs:
        with open(Path(d) / "corpus.jsonl", encoding="utf-8") as f:
            for line in f:
                doc = json.loads(line)
                words.update(re.findall(r"[a-z]+", ((doc.get("title") or "") + " " + (doc.get("text") or "")).lower()))
    words = sorted(w for w in words if w not in STOP)
    analyze = ROOT / "target/release/examples/analyze"
    ours = subprocess.run([analyze], input="\n".join(words) + "\n", capture_output=True, text=True, check=True).stdout.split("\n")
    martin = PorterStemmer(mode=PorterStemmer.MARTIN_EXTENSIONS)
    snowball = Stemmer.Stemmer("porter")
    vs_martin = [(w, o, martin.stem(w)) for w, o in zip(words, ours) if o != martin.stem(w)]
    vs_snowball = [(w, o, snowball.stemWord(w)) for w, o in zip(words, ours) if o != snowball.stemWord(w)]
    print(f"{len(words)} words")
    print(f"differ from NLTK Porter (MARTIN_EXTENSIONS, = Lucene's PorterStemmer): {len(vs_martin)} {vs_martin[:20]}")
    print(f"differ from Snowball porter (PyStemmer): {len(vs_snowball)}, e.g. {vs_snowball[:8]}")
    return 1 if vs_martin else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
