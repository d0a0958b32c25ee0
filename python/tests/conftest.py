"""Shared fixtures: the real collections beside the repository (../shared, or where
DREDGE_SHARED points). Absent, tests that need them skip saying so; under CI (CI
set) they fail instead."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def shared_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("DREDGE_SHARED", REPO.parent / "shared"))


def need(path: pathlib.Path) -> pathlib.Path:
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path} is required under CI")
    pytest.skip(f"{path} not found")


@pytest.fixture(scope="session")
def scifact() -> pathlib.Path:
    return need(shared_dir() / "data" / "scifact")


@pytest.fixture(scope="session")
def sample() -> pathlib.Path:
    return REPO / "data" / "sample"


@pytest.fixture(scope="session")
def scifact_index(scifact, tmp_path_factory):
    import dredge

    emb = scifact / "embeddings" / "all-MiniLM-L6-v2"
    out = tmp_path_factory.mktemp("scifact") / "index"
    return dredge.Index.build(
        out,
        corpus=scifact,
        vectors=emb / "corpus.npy",
        vector_ids=emb / "corpus.ids.txt",
        ann="hnsw",
        threads=1,
    )
