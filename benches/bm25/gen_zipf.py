"""A seeded synthetic BEIR corpus with a Zipfian vocabulary, for BM25 scale tests.

    python gen_zipf.py --docs 1000000 --seed 7 --out DIR

Writes DIR/corpus.jsonl and DIR/queries.jsonl (1,000 queries). Word ranks follow
p(r) ~ 1 / r^1.07 over a 500,000-word vocabulary; each word is made of 1-3
consonant-vowel syllables plus an English-looking suffix chosen by its rank, so the
Porter stemmer folds some words together. A title has 4-12 words; a text has a
log-normal length (median 80 words). Queries have 2-6 words drawn from the same
distribution without its 100 most frequent words (which act like stop words).
The same arguments give the same bytes.
"""

import argparse
import json
import os

import numpy as np

VOCAB = 500_000
EXPONENT = 1.07
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"
SUFFIXES = ["", "", "", "s", "ing", "ed", "er", "tion", "ly", "ness", "al", "ic"]


def word(rank):
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    n = rank
    out = []
    while True:
        out.append(syllables[n % len(syllables)])
        n //= len(syllables)
        if n == 0:
            break
    return "".join(out) + SUFFIXES[(rank * 7) % len(SUFFIXES)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    words = np.array([word(r) for r in range(VOCAB)], dtype=object)
    weights = 1.0 / np.arange(1, VOCAB + 1) ** EXPONENT
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]

    def draw(n):
        return np.searchsorted(cdf, rng.random(n), side="right")

    with open(os.path.join(args.out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        chunk = 10_000
        for start in range(0, args.docs, chunk):
            n = min(chunk, args.docs - start)
            title_len = rng.integers(4, 13, n)
            text_len = np.maximum(1, rng.lognormal(np.log(80), 0.6, n).astype(int))
            ranks = draw(int(title_len.sum() + text_len.sum()))
            pos = 0
            lines = []
            for i in range(n):
                title = " ".join(words[ranks[pos : pos + title_len[i]]])
                pos += title_len[i]
                text = " ".join(words[ranks[pos : pos + text_len[i]]])
                pos += text_len[i]
                lines.append(json.dumps({"_id": f"d{start + i}", "title": title, "text": text}))
            f.write("\n".join(lines) + "\n")
    tail = cdf[100:] - cdf[99]
    tail /= tail[-1]
    with open(os.path.join(args.out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for q in range(1000):
            n = int(rng.integers(2, 7))
            ranks = 100 + np.searchsorted(tail, rng.random(n), side="right")
            f.write(json.dumps({"_id": f"q{q}", "text": " ".join(words[ranks])}) + "\n")


if __name__ == "__main__":
    main()
