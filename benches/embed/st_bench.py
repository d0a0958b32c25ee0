"""sentence-transformers on CPU torch, encoding a BEIR corpus: the peer of `dredge embed`.

Run through benches/embed/run.sh, which creates the throwaway venv. Prints one JSON
line: passages/s, tokens/s (special tokens included, padding excluded, cut at the
model's max_seq_length), and torch's own f32 GEMM rate on this machine.

    python st_bench.py --model DIR --corpus corpus.jsonl [--limit N] [--batch-size 8]
        [--threads 2] [--out vectors.npy]
"""

import argparse
import json
import os
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def read_corpus(path, limit):
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            title, text = doc.get("title") or "", doc.get("text") or ""
            # BEIR's join: title + " " + text, stripped.
            texts.append((title + " " + text).strip() if title else text.strip())
            if limit and len(texts) >= limit:
                break
    return texts


def gemm_gflops(m=2048, k=384, n=1536, repeats=20):
    """torch's f32 GEMM rate: best of `repeats` by wall clock, and all of them per
    CPU second times the cores."""
    a = torch.randn(m, k)
    b = torch.randn(k, n)
    torch.mm(a, b)
    best = float("inf")
    cpu = time.process_time()
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    cpu = time.process_time() - cpu
    flop = 2 * m * k * n
    return flop / best / 1e9, repeats * flop / cpu / 1e9 * os.cpu_count()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    texts = read_corpus(args.corpus, args.limit)
    model = SentenceTransformer(args.model, device="cpu")
    max_len = model.max_seq_length
    tokens = sum(
        min(len(ids), max_len)
        for ids in model.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    )
    model.encode(texts[: args.batch_size], batch_size=args.batch_size)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    vectors = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if args.out:
        np.save(args.out, vectors.astype(np.float32))
    print(
        json.dumps(
            {
                "tool": "sentence-transformers",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "batch_size": args.batch_size,
                "passages": len(texts),
                "tokens": tokens,
                "seconds": round(seconds, 2),
                "passages_per_s": round(len(texts) / seconds, 1),
                "cpu_seconds": round(cpu, 1),
                "tokens_per_s": round(tokens / seconds, 0),
                # What the same CPU time would give with the cores to itself.
                "tokens_per_s_cpu": round(tokens / cpu * os.cpu_count(), 0),
                "torch_gemm_gflops": [round(g, 1) for g in gemm_gflops()],
            }
        )
    )


if __name__ == "__main__":
    main()
