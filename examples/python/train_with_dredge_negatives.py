"""Fine-tune a sentence-transformers bi-encoder on SciFact with hard negatives mined
by dredge (not run in CI: it needs torch and sentence-transformers).

    pip install . sentence-transformers datasets        # from the dredge clone
    python examples/python/train_with_dredge_negatives.py \
        --data ../shared/data/scifact --model ../shared/models/all-MiniLM-L6-v2 --out runs/minilm-scifact

What it does:
1. builds (once) a BM25 + dense index of the corpus with dredge, the dense side
   encoded by the starting model;
2. mines 4 hard negatives per training query from hybrid candidates, dropping
   candidates within 5% of the positive's score (NV-Retriever's TopK-PercPos), which
   filters most false negatives;
3. trains with MultipleNegativesRankingLoss on (anchor, positive, negative) triplets;
4. evaluates nDCG@10 on the test split before and after, with dredge.evaluate.
"""

import argparse
import os

import dredge


def ndcg10(index, data):
    """Test nDCG@10 of the index's dense component, queries encoded by its model."""
    run = index.search_many(data, split="test", k=100, mode="dense", exact=True)
    return dredge.evaluate(os.path.join(data, "qrels", "test.tsv"), run, ["ndcg@10"])["ndcg@10"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a BEIR folder (corpus, queries, qrels/train.tsv, qrels/test.tsv)")
    ap.add_argument("--model", required=True, help="a sentence-transformers model name or folder")
    ap.add_argument("--out", required=True, help="where the index and the trained model go")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    model = SentenceTransformer(args.model, device="cpu")
    index_dir = os.path.join(args.out, "index")
    if os.path.isdir(index_dir):
        index = dredge.Index(index_dir)
    else:
        index = dredge.Index.build(index_dir, corpus=args.data, model=args.model)

    before = ndcg10(index, args.data)

    rows, audit = index.mine(queries=args.data, split="train", candidates="hybrid",
                             num_negatives=4, relative_margin=0.05, range="5:100",
                             format="triplet")
    print(f"mined {len(rows)} triplets for {audit['queries']['mined']} queries")
    train = Dataset.from_list(rows)

    trainer = SentenceTransformerTrainer(
        model=model,
        args=SentenceTransformerTrainingArguments(
            output_dir=os.path.join(args.out, "checkpoints"),
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=2e-5,
            warmup_ratio=0.1,
            save_strategy="no",
        ),
        train_dataset=train,
        loss=MultipleNegativesRankingLoss(model),
    )
    trainer.train()
    trained = os.path.join(args.out, "model")
    model.save(trained)

    # The corpus encoded again by the trained model (dense only), then the same test.
    after_index = dredge.Index.build(os.path.join(args.out, "index-trained"), corpus=args.data,
                                     model=trained, bm25=False, overwrite=True)
    after = ndcg10(after_index, args.data)
    print(f"SciFact test nDCG@10: {before:.4f} before, {after:.4f} after training")


if __name__ == "__main__":
    main()
