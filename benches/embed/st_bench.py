"""sentence-transformers encoding a BEIR corpus on the CPU: the peer of `dredge embed`.

Backends: `torch` (float32), `onnx` (onnxruntime, float32: the model exported with
optimum) and `onnx-int8` (the ONNX model dynamically quantized to int8 with
`export_dynamic_quantized_onnx_model`, the configuration matching the CPU:
avx512_vnni, avx512 or avx2); `ort` and `ort-int8`: the same through onnxruntime
directly, for machines without optimum (see `OrtDirect`). With ATEN_CPU_CAPABILITY,
MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA set to AVX2, torch runs its AVX2 code
(run.sh's `torch-avx2`); onnxruntime has no such switch. The ONNX files are exported once into --work (a copy
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


class OrtDirect:
    """onnxruntime without optimum (backends `ort` and `ort-int8`), for machines where
    sentence-transformers' ONNX backend cannot be installed: the model's transformer
    exported with `torch.onnx.export`, int8 made with onnxruntime's `quantize_dynamic`
    in the configuration `export_dynamic_quantized_onnx_model` passes through optimum
    (per-channel symmetric int8 weights, asymmetric uint8 activations, every operator
    of onnxruntime's dynamic registry, the attention products included), and encoding
    as sentence-transformers does it: texts sorted by length, padded per batch, mean
    pooling, normalized."""

    def __init__(self, model, path, threads):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = model.tokenizer
        self.max_seq_length = model.max_seq_length

    def encode(self, texts, batch_size, convert_to_numpy=True):
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = None
        for i in range(0, len(texts), batch_size):
            rows = order[i : i + batch_size]
            enc = self.tokenizer(
                [texts[j] for j in rows],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            hidden = self.session.run(None, {n: enc[n].astype(np.int64) for n in self.inputs})[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), np.float32)
            out[rows] = pooled
        return out


def load_ort_direct(args):
    import onnxruntime as ort

    model = SentenceTransformer(args.model, device="cpu")
    work = os.path.join(args.work, "direct-" + os.path.basename(os.path.normpath(args.model)))
    os.makedirs(work, exist_ok=True)
    fp32 = os.path.join(work, "model.onnx")
    if not os.path.isfile(fp32):

        class Hidden(torch.nn.Module):
            def __init__(self, bert):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.bert(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        names = ["input_ids", "attention_mask", "token_type_ids"]
        enc = model.tokenizer(["a first text", "a second"], padding=True, return_tensors="pt")
        axes = {n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]}
        torch.onnx.export(
            Hidden(model[0].auto_model.eval()),
            tuple(enc[n] for n in names),
            fp32,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    if args.backend == "ort":
        return OrtDirect(model, fp32, args.threads), "onnxruntime %s float32 (direct)" % ort.__version__
    int8 = os.path.join(work, "model_qint8.onnx")
    if not os.path.isfile(int8):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            fp32,
            int8,
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
            extra_options={
                "WeightSymmetric": True,
                "ActivationSymmetric": False,
                "MatMulConstBOnly": False,
            },
        )
    return OrtDirect(model, int8, args.threads), "onnxruntime %s int8 (direct, %s config)" % (
        ort.__version__,
        quantization_config(),
    )


def latency(model, backend, texts, threads, args_backend):
    """One text at a time (queries at search time): milliseconds per `encode`, with
    the percentile of benches/query/latency.py; the encoder alone, no search."""
    for text in texts[:10]:
        model.encode([text], batch_size=1)
    times = []
    cpu = time.process_time()
    for text in texts:
        t = time.perf_counter()
        model.encode([text], batch_size=1, convert_to_numpy=True)
        times.append((time.perf_counter() - t) * 1000.0)
    cpu = time.process_time() - cpu
    ordered = sorted(times)

    def pct(q):
        return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]

    print(
        json.dumps(
            {
                "side": backend if args_backend.startswith("ort") else "sentence-transformers " + backend,
                "queries": len(times),
                "threads": threads,
                "p50_ms": round(pct(50), 2),
                "p90_ms": round(pct(90), 2),
                "p99_ms": round(pct(99), 2),
                "mean_ms": round(sum(times) / len(times), 2),
                "cpu_ms_per_query": round(cpu * 1000.0 / len(times), 2),
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--backend", choices=["torch", "onnx", "onnx-int8", "ort", "ort-int8"], default="torch"
    )
    p.add_argument("--work", default="benches/out/embed/st-models")
    p.add_argument("--out")
    p.add_argument(
        "--latency", action="store_true", help="encode the texts one at a time (queries)"
    )
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    texts = read_corpus(args.corpus, args.limit)
    if args.backend.startswith("ort"):
        model, backend = load_ort_direct(args)
    else:
        model, backend = load_model(args)
    if os.environ.get("ATEN_CPU_CAPABILITY"):
        backend += " capped at %s" % os.environ["ATEN_CPU_CAPABILITY"]
    max_len = model.max_seq_length
    tokens = sum(
        min(len(ids), max_len)
        for ids in model.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    )
    if args.latency:
        return latency(model, backend, texts, args.threads, args.backend)
    model.encode(texts[: args.batch_size], batch_size=args.batch_size)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    vectors = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if args.out:
        np.save(args.out, vectors.astype(np.float32))
    print(
        json.dumps(
            {
                "tool": "onnxruntime" if args.backend.startswith("ort") else "sentence-transformers",
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
