"""sentence-transformers encoding a BEIR corpus on the CPU: the peer of `dredge embed`.

Backends: `torch` (float32), `onnx` (onnxruntime, float32: the model exported with
optimum) and `onnx-int8` (the ONNX model dynamically quantized to int8 with
`export_dynamic_quantized_onnx_model`, the configuration matching the CPU:
avx512_vnni, avx512 or avx2). The ONNX files are exported once into --work (a copy
of the model folder; the model folder itself is not written).

Run through benches/embed/run.sh, which creates the throwaway venv. Prints one JSON
line: passages/s, tokens/s (special tokens included, padding excluded, cut at the
model's max_seq_length), and torch's own f32 GEMM rate on this machine.

    python st_bench.py --model DIR --corpus corpus.jsonl [--limit N] [--batch-size 8]
        [--threads 2] [--backend torch|onnx|onnx-int8] [--work DIR] [--out vectors.npy]
"""

import argparse
import json
import os
import shutil
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


def cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def quantization_config():
    """The `export_dynamic_quantized_onnx_model` configuration for this CPU."""
    flags = cpu_flags()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def load_model(args):
    if args.backend == "torch":
        return SentenceTransformer(args.model, device="cpu"), "torch float32"
    import onnxruntime as ort

    work = os.path.join(args.work, os.path.basename(os.path.normpath(args.model)))
    if not os.path.isdir(work):
        shutil.copytree(args.model, work)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    fp32 = os.path.join(work, "onnx", "model.onnx")
    if not os.path.isfile(fp32):
        SentenceTransformer(work, device="cpu", backend="onnx").save_pretrained(work)
    if args.backend == "onnx":
        kwargs = {"file_name": "onnx/model.onnx", "session_options": options}
        return (
            SentenceTransformer(work, device="cpu", backend="onnx", model_kwargs=kwargs),
            "onnxruntime %s float32" % ort.__version__,
        )
    from sentence_transformers import export_dynamic_quantized_onnx_model

    config = quantization_config()
    name = "onnx/model_qint8_%s.onnx" % config
    if not os.path.isfile(os.path.join(work, name)):
        base = SentenceTransformer(
            work, device="cpu", backend="onnx", model_kwargs={"file_name": "onnx/model.onnx"}
        )
        export_dynamic_quantized_onnx_model(base, config, work)
    kwargs = {"file_name": name, "session_options": options}
    return (
        SentenceTransformer(work, device="cpu", backend="onnx", model_kwargs=kwargs),
        "onnxruntime %s int8 (%s)" % (ort.__version__, config),
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default="torch")
    p.add_argument("--work", default="benches/out/embed/st-models")
    p.add_argument("--out")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    texts = read_corpus(args.corpus, args.limit)
    model, backend = load_model(args)
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
                "backend": backend,
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
