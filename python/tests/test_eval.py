"""dredge.RelevanceEvaluator against pytrec_eval (pytrec-eval-terrier) on runs over
the shared collections, every measure, to 1e-12; and dredge.evaluate's averages."""

import math
import random

import pytest

import dredge

pytrec_eval = pytest.importorskip("pytrec_eval")

MEASURES = {
    "map",
    "ndcg",
    "recip_rank",
    "ndcg_cut",
    "P",
    "recall",
    "map_cut",
    "ndcg_cut.3,7",
    "P.1,2",
    "recall.1000",
}


def qrels_of(path):
    qrels = {}
    with open(path) as f:
        for i, line in enumerate(f):
            cols = line.split()
            if i == 0 and not cols[-1].lstrip("-").isdigit():
                continue
            qrels.setdefault(cols[0], {})[cols[-2]] = int(cols[-1])
    return qrels


def assert_same(ours, theirs):
    assert set(ours) == set(theirs)
    for qid, values in theirs.items():
        assert set(ours[qid]) == set(values), qid
        for key, value in values.items():
            assert math.isclose(ours[qid][key], value, rel_tol=0, abs_tol=1e-12), (qid, key, ours[qid][key], value)


@pytest.mark.parametrize("name", ["scifact", "cranfield", "med"])
def test_relevance_evaluator_matches_pytrec_eval(name, tmp_path):
    from conftest import need, shared_dir

    data = need(shared_dir() / "data" / name)
    index = dredge.Index.build(tmp_path / "index", corpus=data)
    split = "test"
    qrels = qrels_of(data / "qrels" / f"{split}.tsv")
    run = index.search_many(data, split=split, k=100)
    # Ties: scores rounded to one decimal, so that trec_eval's order (score, then
    # document id, both descending) decides; a query missing from the qrels; an
    # empty query.
    rng = random.Random(7)
    tied = {q: {d: round(s, 1) for d, s in docs.items()} for q, docs in run.items()}
    tied["not-judged"] = {"x": 1.0}
    some = rng.choice(sorted(tied))
    tied[some] = {d: 1.0 for d in list(tied[some])[:20]}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, MEASURES)
    ours = dredge.RelevanceEvaluator(qrels, MEASURES)
    for r in (run, tied):
        assert_same(ours.evaluate(r), theirs.evaluate(r))


def test_measure_names():
    qrels = {"q1": {"d1": 2, "d2": 0, "d3": 1}}
    run = {"q1": {"d2": 3.0, "d1": 2.0, "d9": 1.0, "d3": 0.5}}
    for measures in [{"ndcg_cut_10"}, {"ndcg_cut.10,100"}, {"recall_100"}, {"map_cut_100"}, {"P_10"}, {"recip_rank"}]:
        assert_same(
            dredge.RelevanceEvaluator(qrels, measures).evaluate(run),
            pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run),
        )
    with pytest.raises(ValueError, match="unsupported measure 'bpref'"):
        dredge.RelevanceEvaluator(qrels, {"bpref"})
    with pytest.raises(TypeError):
        dredge.RelevanceEvaluator({"q1": {"d1": "high"}}, {"map"})


def test_evaluate_averages_over_judged_queries(tmp_path):
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    run = {"q1": {"d1": 2.0, "d3": 1.0}, "q3": {"d1": 1.0}}
    means, per_query = dredge.evaluate(qrels, run, ["mrr@10", "recall@1"], per_query=True)
    assert means == {"mrr@10": 1.0, "recall@1": 1.0}
    assert list(per_query) == ["q1"]
    means = dredge.evaluate(qrels, run, ["mrr@10"], missing_as_zero=True)
    assert means == {"mrr@10": 0.5}
    # Paths work as dicts do, and a bad file names its line.
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d3 2 1.0 t\n")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    assert dredge.evaluate(tmp_path / "qrels.tsv", tmp_path / "run.trec", ["mrr@10"]) == {"mrr@10": 1.0}
    (tmp_path / "bad.trec").write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d3 2 high t\n")
    with pytest.raises(dredge.DredgeError, match=r"bad\.trec:2"):
        dredge.evaluate(qrels, tmp_path / "bad.trec", ["mrr@10"])
    with pytest.raises(ValueError, match="unknown metric"):
        dredge.evaluate(qrels, run, ["ndcg10"])
