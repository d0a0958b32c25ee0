"""dredge.sentence_transformers.mine_hard_negatives against sentence-transformers'
own output (fixtures/st, made by fixtures/make_st_fixtures.py with the library and
the same cached embeddings, and for the `ce_*` settings the same stand-in
cross-encoder, whose `predict` calls must be the library's too; see
fixtures/st/settings.json for versions).

Every row must be the library's: the same texts in the same order, the scores (dredge's
float32 kernels against torch's) equal within 2e-6."""

import json
import os
import pathlib
import random
import sys

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

TOLERANCE = 2e-6


def datasets_or_fail():
    try:
        import datasets
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("the `datasets` package is required under CI")
        pytest.skip("datasets is not installed")
    return datasets


def settings():
    path = FIXTURES / "st" / "settings.json"
    if not path.exists():
        return []
    return sorted(json.loads(path.read_text())["settings"].items())


@pytest.fixture(scope="module")
def inputs(scifact):
    datasets = datasets_or_fail()
    from make_st_fixtures import load
    from st_standin import CachedEmbeddings

    model = CachedEmbeddings(str(scifact))
    pairs, corpus = load(scifact)
    dataset = datasets.Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    return model, dataset, corpus


def encode_ids(model, row):
    out = {}
    for key, value in row.items():
        if isinstance(value, str):
            out[key] = model.to_id(value)
        elif isinstance(value, list) and value and isinstance(value[0], str):
            out[key] = [model.to_id(v) for v in value]
        else:
            out[key] = value
    return out


def close(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(close(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= TOLERANCE
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name,setting", settings() or [pytest.param("none", {}, marks=pytest.mark.skip("no fixtures"))])
def test_same_rows_as_sentence_transformers(inputs, name, setting):
    from dredge.sentence_transformers import mine_hard_negatives

    model, dataset, corpus = inputs
    kwargs = dict(setting)
    if kwargs.pop("corpus", None) == "all":
        kwargs["corpus"] = corpus
    seed = kwargs.pop("seed", None)
    if seed is not None:
        random.seed(seed)
    cross_encoder = None
    if str(kwargs.get("cross_encoder", "")).startswith("standin"):
        from st_standin import TokenOverlapCrossEncoder

        dtype = kwargs["cross_encoder"].partition("-")[2] or "float32"
        cross_encoder = kwargs["cross_encoder"] = TokenOverlapCrossEncoder(dtype)
    result = mine_hard_negatives(dataset, model, verbose=False, **kwargs)
    if cross_encoder is not None:
        # Called as sentence-transformers called it: the same calls, sizes, arguments and
        # pairs (each call's pairs compared as a sorted digest, so candidates whose
        # bi-encoder scores tie may come in another order within a call).
        recorded = json.loads((FIXTURES / "st" / "cross_encoder_calls.json").read_text())[name]
        assert cross_encoder.calls == recorded, name
    # The column types sentence-transformers' Dataset.from_dict gives the same columns.
    datasets = datasets_or_fail()
    assert result.features == datasets.Dataset.from_dict(result.to_dict()).features, name
    ours = [encode_ids(model, row) for row in result]
    theirs = [json.loads(line) for line in (FIXTURES / "st" / f"{name}.jsonl").read_text().splitlines()]
    assert len(ours) == len(theirs), name
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert close(a, b), (name, i, a, b)


def test_cross_encoder_predict_is_used_as_given(inputs):
    """Any object with `predict` rescores, called with sentence-transformers' arguments;
    a list answer (convert_to_tensor ignored) is taken, a wrong shape is an error."""
    from st_standin import TokenOverlapCrossEncoder

    from dredge.sentence_transformers import mine_hard_negatives

    model, dataset, _ = inputs

    class Plain(TokenOverlapCrossEncoder):
        def predict(self, sentences, **kwargs):
            self.calls.append(sorted(kwargs.items()))
            return [float(self.score(q, p)) for q, p in sentences]

    plain, standin = Plain(), TokenOverlapCrossEncoder()
    args = dict(max_score=0.2, output_format="labeled-pair", output_scores=True, batch_size=8, verbose=False)
    result = mine_hard_negatives(dataset, model, cross_encoder=plain, **args)
    expected_kwargs = [("batch_size", 8), ("convert_to_tensor", True), ("pool", None)]
    assert plain.calls and all(c == expected_kwargs for c in plain.calls)
    # Python floats are float64, as the float64 stand-in's scores: the same rows.
    expected = mine_hard_negatives(dataset, model, cross_encoder=TokenOverlapCrossEncoder("float64"), **args)
    assert result.to_dict() == expected.to_dict()
    assert result.to_dict() != mine_hard_negatives(dataset, model, cross_encoder=standin, **args).to_dict()

    class TwoLabels:
        def predict(self, sentences, **kwargs):
            return np.zeros((len(sentences), 2), dtype=np.float32)

    with pytest.raises(ValueError, match="one score per pair"):
        mine_hard_negatives(dataset, model, cross_encoder=TwoLabels(), relative_margin=0.1, verbose=False)
    with pytest.raises(ValueError, match="num_negatives must be at least 1"):
        mine_hard_negatives(dataset, model, cross_encoder=TwoLabels(), num_negatives=0, verbose=False)
