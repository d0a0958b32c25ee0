"""Type stubs of the extension module (crates/dredge-py). Use the `dredge` package's
wrappers; these are their building blocks."""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class DredgeError(Exception):
    """An error of dredge: bad input (the message names the file and line), a missing
    or damaged index, or work that failed."""

class Qrels:
    """Judgments converted once: `{qid: {docid: grade}}` or a qrels file path."""

    def __init__(self, qrels: Union[str, Mapping[str, Mapping[str, int]]]) -> None: ...
    def __len__(self) -> int: ...

class Index:
    def __init__(
        self,
        path: str,
        *,
        model: Optional[str] = None,
        batch_size: int = 32,
        one_shard_at_a_time: bool = False,
        precision: Optional[str] = None,
    ) -> None: ...
    @property
    def has_checksums(self) -> bool: ...
    @staticmethod
    def build(
        out: str,
        corpus: Optional[str] = None,
        documents: Optional[Any] = None,
        *,
        vectors: Union[None, str, npt.NDArray[np.float32]] = None,
        vector_ids: Union[None, str, Sequence[str]] = None,
        model: Optional[str] = None,
        dense_name: str = "default",
        ann: str = "hnsw",
        similarity: str = "cosine",
        bm25: bool = True,
        k1: float = 0.9,
        b: float = 0.4,
        overwrite: bool = False,
        threads: int = 0,
        batch_size: int = 32,
        max_length: Optional[int] = None,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 200,
        hnsw_seed: int = 0,
        shard: Optional[str] = None,
        precision: str = "fp32",
    ) -> "Index": ...
    @property
    def path(self) -> str: ...
    @property
    def dense_components(self) -> List[str]: ...
    def manifest_json(self) -> str: ...
    def __len__(self) -> int: ...
    def document(self, id: str) -> Optional[Dict[str, str]]: ...
    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "bm25",
        options: Optional[Dict[str, Any]] = None,
        vector: Optional[npt.NDArray[np.float32]] = None,
        with_text: bool = False,
    ) -> List[Dict[str, Any]]: ...
    def search_many(
        self,
        queries: List[Tuple[str, str]],
        k: int = 1000,
        mode: str = "bm25",
        options: Optional[Dict[str, Any]] = None,
        vectors: Optional[npt.NDArray[np.float32]] = None,
        threads: int = 0,
    ) -> Dict[str, Dict[str, float]]: ...
    def search_many_arrays(
        self,
        queries: List[Tuple[str, str]],
        k: int = 1000,
        mode: str = "bm25",
        options: Optional[Dict[str, Any]] = None,
        vectors: Optional[npt.NDArray[np.float32]] = None,
        threads: int = 0,
    ) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
    def write_run(
        self,
        queries: List[Tuple[str, str]],
        out: str,
        k: int = 1000,
        mode: str = "bm25",
        options: Optional[Dict[str, Any]] = None,
        vectors: Optional[npt.NDArray[np.float32]] = None,
        threads: int = 0,
        tag: Optional[str] = None,
    ) -> int: ...
    def doc_ids(self) -> List[str]: ...
    def mine(
        self,
        *,
        out: Optional[str] = None,
        queries: Optional[str] = None,
        qrels: Optional[str] = None,
        split: str = "train",
        pairs: Optional[str] = None,
        rows: Optional[List[Tuple[str, str, Sequence[str]]]] = None,
        candidates: str = "bm25",
        options: Optional[Dict[str, Any]] = None,
        query_vectors: Optional[npt.NDArray[np.float32]] = None,
        query_ids: Optional[Sequence[str]] = None,
        doc_vectors: Optional[str] = None,
        doc_ids: Optional[str] = None,
        config: Optional[Dict[str, Any]] = None,
        holdout_qrels: Optional[str] = None,
        threads: int = 0,
        rescore: Optional[str] = None,
        rescore_batch_size: int = 32,
        rescore_max_length: Optional[int] = None,
    ) -> Tuple[str, Optional[bytes]]: ...

def load_queries(path: str, split: Optional[str] = None) -> List[Tuple[str, str]]: ...
def join_shards(out: str, shards: List[str], overwrite: bool = False) -> Index: ...
def evaluate(
    qrels: Union[str, Qrels, Mapping[str, Mapping[str, int]]],
    run: Union[str, Mapping[str, Mapping[str, float]]],
    metrics: List[str],
    *,
    ignore_identical_ids: bool = True,
    missing_as_zero: bool = False,
) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]]]: ...
def evaluate_per_query(
    qrels: Qrels,
    run: Union[str, Mapping[str, Mapping[str, float]]],
    measures: List[Tuple[str, Optional[int], str]],
) -> Dict[str, Dict[str, float]]: ...

class VectorIndex:
    """The rows of a float32 matrix, searched exactly on all cores."""

    def __init__(self, vectors: npt.NDArray[np.float32], similarity: str = "cosine") -> None: ...
    def __len__(self) -> int: ...
    def search(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
    def score_pairs(
        self,
        queries: npt.NDArray[np.float32],
        rows: npt.NDArray[np.int64],
        docs: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.float32]: ...
