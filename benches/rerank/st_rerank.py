"""sentence-transformers' side of benches/rerank/run.sh: `CrossEncoder.predict` on
the same pairs, batch size and maximum length as rerank_bench, on the CPU with
THREADS torch threads; writes the scores one per line and prints one JSON line.

    python st_rerank.py MODEL PAIRS.jsonl BATCH MAX_LENGTH SCORES.txt THREADS
"""

import json
import sys
import time

import torch


def main():
    model_dir, pairs_path, batch, max_length, scores_path, threads = sys.argv[1:7]
    torch.set_num_threads(int(threads))
    import sentence_transformers
    from sentence_transformers import CrossEncoder

    with open(pairs_path, encoding="utf-8") as f:
        pairs = [(p["query"], p["passage"]) for p in map(json.loads, f)]
    start = time.perf_counter()
    model = CrossEncoder(model_dir, device="cpu", max_length=int(max_length))
    load = time.perf_counter() - start
    start = time.perf_counter()
    scores = model.predict(pairs, batch_size=int(batch), show_progress_bar=False)
    seconds = time.perf_counter() - start
    with open(scores_path, "w", encoding="utf-8") as f:
        for s in scores:
            f.write("%r\n" % float(s))
    print(json.dumps({
        "engine": "sentence-transformers-%s-torch-%s" % (sentence_transformers.__version__, torch.__version__),
        "pairs": len(pairs),
        "batch": int(batch),
        "max_length": model.max_seq_length,
        "threads": torch.get_num_threads(),
        "load_seconds": load,
        "seconds": seconds,
        "pairs_per_second": len(pairs) / seconds,
    }))


if __name__ == "__main__":
    main()
