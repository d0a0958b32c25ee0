"""dredge.sentence_transformers.mine_hard_negatives against sentence-transformers'
own output (fixtures/st, made by fixtures/make_st_fixtures.py with the library and
the same cached embeddings; see fixtures/st/settings.json for versions).

Every row must be the library's: the same texts in the same order, the scores (dredge's
float32 kernels against torch's) equal within 2e-6."""

import json
import os
import pathlib
import random
import sys

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
    result = mine_hard_negatives(dataset, model, verbose=False, **kwargs)
    # The column types sentence-transformers' Dataset.from_dict gives the same columns.
    datasets = datasets_or_fail()
    assert result.features == datasets.Dataset.from_dict(result.to_dict()).features, name
    ours = [encode_ids(model, row) for row in result]
    theirs = [json.loads(line) for line in (FIXTURES / "st" / f"{name}.jsonl").read_text().splitlines()]
    assert len(ours) == len(theirs), name
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert close(a, b), (name, i, a, b)


def test_cross_encoder_is_refused(inputs):
    from dredge.sentence_transformers import mine_hard_negatives

    model, dataset, _ = inputs
    with pytest.raises(NotImplementedError, match="cross_encoder"):
        mine_hard_negatives(dataset, model, cross_encoder=object(), verbose=False)
    with pytest.raises(ValueError, match="num_negatives must be at least 1"):
        mine_hard_negatives(dataset, model, num_negatives=0, verbose=False)
