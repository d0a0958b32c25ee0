"""Round trips through the Python API: build (corpus, documents, vectors), search in
the three modes, search_many, mine in memory and to a file; bad input raises the
right exception with the file and line."""

import json

import numpy as np
import pytest

import dredge
from conftest import need, shared_dir

DOCS = [
    {"_id": "d0", "title": "Bees", "text": "honey bees dance to share where nectar is"},
    {"_id": "d1", "title": "Bread", "text": "a sourdough starter needs flour and water"},
    {"_id": "d2", "title": "", "text": "bees make honey from the nectar of flowers"},
    {"_id": "d3", "title": "Bikes", "text": "rust on an old bike chain"},
]
VECTORS = np.array([[1, 0, 0], [0, 1, 0], [0.8, 0.1, 0.1], [0, 0, 1]], dtype=np.float32)


def test_build_from_documents_and_search_every_mode(tmp_path):
    index = dredge.Index.build(tmp_path / "ix", documents=DOCS, vectors=VECTORS, ann="flat")
    assert len(index) == 4
    assert index.dense_components == ["default"]
    assert index.document("d1")["title"] == "Bread"
    assert index.document("nope") is None
    hits = index.search("honey bees", k=2, with_text=True)
    assert [h["id"] for h in hits] == ["d0", "d2"]
    assert hits[0]["text"] == DOCS[0]["text"] and hits[0]["score"] > hits[1]["score"]
    query = np.array([0.1, 0.0, 1.0], dtype=np.float32)
    assert index.search("", k=1, mode="dense", vector=query)[0]["id"] == "d3"
    hybrid = index.search("honey", k=3, mode="hybrid", vector=query, fusion="weighted", alpha=0.9)
    assert hybrid[0]["id"] in {"d0", "d2"}
    # The index records no model: text alone cannot be searched densely.
    with pytest.raises(dredge.DredgeError, match="vectors"):
        index.search("honey", mode="dense")
    with pytest.raises(ValueError, match="mode must be"):
        index.search("honey", mode="sparse")
    run = index.search_many({"q1": "honey bees", "q2": "bike chain"}, k=2)
    assert list(run) == ["q1", "q2"] and list(run["q2"]) == ["d3"]
    vectors = np.stack([query, query])
    dense = index.search_many([("q1", ""), ("q2", "")], k=1, mode="dense", vectors=vectors)
    assert dense == {"q1": {"d3": pytest.approx(dense["q1"]["d3"])}, "q2": dense["q2"]}
    with pytest.raises(ValueError, match="1 query vectors for 2 queries"):
        index.search_many([("q1", ""), ("q2", "")], mode="dense", vectors=vectors[:1])
    # Arrays: the same hits, documents as ordinals into doc_ids, padded past the end.
    docs, scores = index.search_many({"q1": "honey bees", "q2": "bike chain"}, k=2, arrays=True)
    assert docs.shape == scores.shape == (2, 2) and docs.dtype == np.int64
    assert {index.doc_ids[d]: float(s) for d, s in zip(docs[0], scores[0])} == pytest.approx(run["q1"])
    assert docs[1, 1] == -1 and scores[1, 1] == -np.inf
    # Reopened from its folder, the same answers.
    again = dredge.Index(tmp_path / "ix")
    assert again.search_many({"q1": "honey bees"}, k=2) == {"q1": run["q1"]}


def test_search_many_matches_one_by_one_and_the_shared_vectors(scifact, scifact_index):
    queries = dredge.load_queries(scifact, "test")
    assert len(queries) == 300
    run = scifact_index.search_many(queries, k=10)
    for qid, text in queries[:20]:
        hits = scifact_index.search(text, k=10)
        assert {h["id"]: h["score"] for h in hits} == run[qid]
    emb = scifact / "embeddings" / "all-MiniLM-L6-v2"
    ids = (emb / "queries.ids.txt").read_text().split()
    matrix = np.load(emb / "queries.npy")
    row = {q: i for i, q in enumerate(ids)}
    vectors = np.stack([matrix[row[q]] for q, _ in queries])
    dense = scifact_index.search_many(queries, k=10, mode="dense", vectors=vectors, exact=True)
    ndcg = dredge.evaluate(scifact / "qrels" / "test.tsv", dense, ["ndcg@10"])["ndcg@10"]
    # all-MiniLM-L6-v2 on SciFact (BEIR leaderboard figure: 0.645).
    assert 0.6 < ndcg < 0.7, ndcg


def test_mine_in_memory_and_to_a_file_agree(scifact, scifact_index, tmp_path):
    rows, audit = scifact_index.mine(queries=scifact, split="train", num_negatives=4, depth=50)
    assert audit["queries"]["mined"] == len(rows) > 700
    qrels = {}
    for line in (scifact / "qrels" / "train.tsv").read_text().splitlines()[1:]:
        q, d, g = line.split("\t")
        if int(g) > 0:
            qrels.setdefault(q, set()).add(d)
    out = tmp_path / "neg.jsonl"
    file_audit = scifact_index.mine(out, queries=scifact, split="train", num_negatives=4, depth=50, format="ids")
    assert file_audit["queries"]["mined"] == len(rows)
    for row, line in zip(rows, out.read_text().splitlines()):
        ids = json.loads(line)
        assert ids["qid"] == row["qid"]
        assert len(ids["neg_ids"]) == 4 and not set(ids["neg_ids"]) & qrels[row["qid"]]
    # Rows given in memory, dense candidates from given vectors.
    some = [(q, t, sorted(qrels[q])) for q, t in dredge.load_queries(scifact, "train")[:5]]
    emb = scifact / "embeddings" / "all-MiniLM-L6-v2"
    ids = (emb / "queries.ids.txt").read_text().split()
    rows, audit = scifact_index.mine(
        rows=some,
        candidates="dense",
        query_vectors=np.load(emb / "queries.npy"),
        query_ids=ids,
        num_negatives=3,
        format="triplet",
    )
    assert audit["queries"]["mined"] == 5 and len(rows) == 15
    assert set(rows[0]) == {"anchor", "positive", "negative"}
    # The same vectors given as doc_vectors: the same negatives.
    again, _ = scifact_index.mine(
        rows=some,
        candidates="dense",
        query_vectors=np.load(emb / "queries.npy"),
        query_ids=ids,
        doc_vectors=emb / "corpus.npy",
        doc_ids=emb / "corpus.ids.txt",
        num_negatives=3,
        format="triplet",
    )
    assert again == rows
    with pytest.raises(ValueError, match="doc_vectors need query_vectors"):
        scifact_index.mine(rows=some, candidates="dense", doc_vectors=emb / "corpus.npy")


def test_bad_input_names_file_and_line(tmp_path, sample):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "fine"}\n{"_id": "b", "text": 5}\n')
    with pytest.raises(dredge.DredgeError, match=r"corpus\.jsonl:2"):
        dredge.Index.build(tmp_path / "ix", corpus=corpus)
    assert not (tmp_path / "ix").exists()
    with pytest.raises(dredge.DredgeError, match="manifest"):
        dredge.Index(tmp_path)
    with pytest.raises(ValueError, match='document 2 has no "_id"'):
        dredge.Index.build(tmp_path / "ix", documents=[{"_id": "a", "text": "x"}, {"text": "y"}])
    for bad in ["a b", "a\tb", "a\nb"]:
        with pytest.raises(dredge.DredgeError, match="document 2: id .* contains"):
            dredge.Index.build(tmp_path / "ix", documents=[{"_id": "a", "text": "x"}, {"_id": bad, "text": "y"}])
        assert not (tmp_path / "ix").exists()
    index = dredge.Index.build(tmp_path / "ok", corpus=sample)
    with pytest.raises(dredge.DredgeError, match="already exists"):
        dredge.Index.build(tmp_path / "ok", corpus=sample)
    with pytest.raises(dredge.DredgeError, match="negatives"):
        index.mine(queries=sample, num_negatives=0)


def test_damaged_files_are_errors_and_old_indexes_warn(tmp_path):
    index = dredge.Index.build(tmp_path / "ix", documents=DOCS, vectors=VECTORS, ann="flat")
    assert index.has_checksums
    vectors = tmp_path / "ix" / "dense" / "default" / "vectors.bin"
    good = vectors.read_bytes()
    vectors.write_bytes(good[:100] + bytes(b ^ 0xFF for b in good[100:108]) + good[108:])
    opened = dredge.Index(tmp_path / "ix")
    assert opened.search("honey", k=1)  # BM25 does not read the vectors
    with pytest.raises(dredge.DredgeError, match=r"vectors\.bin: its bytes changed.*rebuild"):
        opened.search("honey", k=1, mode="dense", vector=np.array([1, 0, 0], dtype=np.float32))
    vectors.write_bytes(good)
    manifest = tmp_path / "ix" / "manifest.json"
    m = json.loads(manifest.read_text())
    del m["files"], m["manifest_checksum"]
    m["format_version"] = 1
    manifest.write_text(json.dumps(m, indent=2))
    with pytest.warns(UserWarning, match="before dredge recorded checksums"):
        old = dredge.Index(tmp_path / "ix")
    assert not old.has_checksums
    assert [h["id"] for h in old.search("honey bees", k=2)] == ["d0", "d2"]


def test_mine_rescores_with_a_teacher(scifact, scifact_index):
    model = need(shared_dir() / "models" / "all-MiniLM-L6-v2")
    qrels = {}
    for line in (scifact / "qrels" / "train.tsv").read_text().splitlines()[1:]:
        q, d, g = line.split("\t")
        if int(g) > 0:
            qrels.setdefault(q, set()).add(d)
    some = [(q, t, sorted(qrels[q])) for q, t in dredge.load_queries(scifact, "train")[:3]]
    plain, _ = scifact_index.mine(rows=some, depth=8, num_negatives=8)
    rows, audit = scifact_index.mine(
        rows=some, depth=8, num_negatives=8, rescore=model, report_queries=2, report_worst=1
    )
    assert audit["teacher"]["kind"] == "bi-encoder" and audit["teacher"]["pairs"] >= 3 * 8
    assert len(audit["query_audit"]["sampled"]) == 2 and len(audit["query_audit"]["worst"]) == 1
    for row, base in zip(rows, plain):
        # The teacher's cosines, ranked; BM25's scores beside them.
        assert all(-1.0 <= s <= 1.0 for s in row["pos_scores"] + row["neg_scores"])
        assert row["neg_scores"] == sorted(row["neg_scores"], reverse=True)
        assert row["retriever_pos_scores"] == base["pos_scores"]
        bm25 = dict(zip(base["neg_ids"], base["neg_scores"]))
        assert [bm25[d] for d in row["neg_ids"]] == row["retriever_neg_scores"]


def test_precisions_are_recorded_and_encode_the_queries(tmp_path):
    model = need(shared_dir() / "models" / "all-MiniLM-L6-v2")
    found = {}
    for precision in ("fp32", "int8", "bf16"):
        index = dredge.Index.build(
            tmp_path / precision, documents=DOCS, model=model, bm25=False, ann="flat", precision=precision
        )
        dense = index.manifest["components"]["dense"]["default"]
        assert dense["encoder"].get("precision", "fp32") == precision
        hits = dredge.Index(tmp_path / precision).search("where do bees find nectar", k=4, mode="dense")
        found[precision] = [h["id"] for h in hits]
        assert all(-1.0 <= h["score"] <= 1.0 for h in hits)
    # Rounding moves the scores a little, not what the query finds first.
    assert found["fp32"][:2] == found["int8"][:2] == found["bf16"][:2], found
    with pytest.raises(ValueError, match="unknown precision `int4`"):
        dredge.Index(tmp_path / "fp32", precision="int4")
