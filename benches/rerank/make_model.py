"""Builds the benchmark's cross-encoder: the real all-MiniLM-L6-v2 BERT weights
(6 layers, hidden 384, the real vocabulary) under a BertForSequenceClassification
with one label, and a seeded random pooler and classifier; saved with
sentence-transformers as a CrossEncoder folder recording the identity activation.
The same architecture and cost as cross-encoder/ms-marco-MiniLM-L6-v2 (which cannot
be downloaded here); its scores mean nothing, but they are the same computation.

    /work/venvs/st2/bin/python benches/rerank/make_model.py \
        /work/shared/models/all-MiniLM-L6-v2 /work/bench-ce
"""

import sys

import numpy as np
import torch
from sentence_transformers import CrossEncoder
from transformers import AutoTokenizer, BertForSequenceClassification

SEED = 15


def main():
    source, out = sys.argv[1], sys.argv[2]
    model = BertForSequenceClassification.from_pretrained(source, num_labels=1)
    rng = np.random.default_rng(SEED)
    h = model.config.hidden_size
    with torch.no_grad():
        for p, spread in [
            (model.bert.pooler.dense.weight, 1.5 / np.sqrt(h)),
            (model.bert.pooler.dense.bias, 0.1),
            (model.classifier.weight, 3.0 / np.sqrt(h)),
            (model.classifier.bias, 0.3),
        ]:
            p.copy_(torch.tensor(rng.uniform(-spread, spread, p.shape), dtype=torch.float32))
    model.config.architectures = ["BertForSequenceClassification"]
    tokenizer = AutoTokenizer.from_pretrained(source)
    staging = out + ".hf"
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    ce = CrossEncoder(staging, activation_fn=torch.nn.Identity(), device="cpu")
    ce.save(out)
    print(out, "max_seq_length", CrossEncoder(out, device="cpu").max_seq_length)


if __name__ == "__main__":
    main()
