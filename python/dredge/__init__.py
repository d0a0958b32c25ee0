"""dredge from Python: build and open indexes, search (BM25, dense, hybrid),
evaluate with trec_eval's numbers, and mine hard negatives.

    import dredge
    index = dredge.Index.build("scifact-index", corpus="scifact/")
    run = index.search_many("scifact/", split="test", k=100)
    print(dredge.evaluate("scifact/qrels/test.tsv", run, ["ndcg@10", "recall@100"]))
    rows, audit = index.mine(queries="scifact/", split="train", num_negatives=8)

Drop-ins: :class:`dredge.RelevanceEvaluator` (pytrec_eval's interface and numbers) and
:func:`dredge.sentence_transformers.mine_hard_negatives` (sentence-transformers' own).
Every error of dredge is a :class:`DredgeError` whose message names the file and
line at fault.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _dredge
from ._dredge import DredgeError, Qrels, __version__

__all__ = [
    "DredgeError",
    "Index",
    "Qrels",
    "RelevanceEvaluator",
    "evaluate",
    "join_shards",
    "load_queries",
    "supported_measures",
    "__version__",
]

PathLike = Union[str, "os.PathLike[str]"]
Run = Dict[str, Dict[str, float]]


def _retrieval(
    k1: Optional[float],
    b: Optional[float],
    dense_name: Optional[str],
    ef: Optional[int],
    exact: bool,
    fusion: str,
    rrf_k: float,
    alpha: float,
    normalize: str,
    depth: Optional[int],
) -> Dict[str, Any]:
    return {
        "k1": k1,
        "b": b,
        "dense_name": dense_name,
        "ef": ef,
        "exact": exact,
        "fusion": fusion,
        "rrf_k": rrf_k,
        "alpha": alpha,
        "normalize": normalize,
        "depth": depth,
    }


def load_queries(path: PathLike, split: Optional[str] = None) -> List[Tuple[str, str]]:
    """The queries of a ``queries.jsonl`` or a BEIR folder as ``(id, text)`` pairs;
    with ``split``, those judged in ``qrels/<split>.tsv``."""
    return _dredge.load_queries(os.fspath(path), split)


def _queries(queries: Any, split: Optional[str]) -> List[Tuple[str, str]]:
    if isinstance(queries, (str, os.PathLike)):
        return load_queries(queries, split)
    if isinstance(queries, Mapping):
        return [(str(q), str(t)) for q, t in queries.items()]
    return [(str(q), str(t)) for q, t in queries]


class Index:
    """An index folder made by ``dredge index`` or :meth:`Index.build`.

    ``model`` replaces the model folder the index records (for an index moved to
    another machine; it must be the same model); ``batch_size`` is how many queries
    are encoded per forward pass; ``precision`` (``"fp32"``, ``"int8"`` or ``"bf16"``) encodes
    query text in another precision than the index's vectors were made with
    (default: theirs). A sharded index (``dredge shards join``) opens
    the same way; ``one_shard_at_a_time=True`` holds one of its shards in memory at
    a time (``--one-shard-at-a-time``).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        model: Optional[PathLike] = None,
        batch_size: int = 32,
        one_shard_at_a_time: bool = False,
        precision: Optional[str] = None,
    ) -> None:
        self._inner = _dredge.Index(
            os.fspath(path),
            model=None if model is None else os.fspath(model),
            batch_size=batch_size,
            one_shard_at_a_time=one_shard_at_a_time,
            precision=precision,
        )
        if not self._inner.has_checksums:
            warnings.warn(
                f"{os.fspath(path)} was built before dredge recorded checksums (index format 1): "
                "damaged files are not detected; rebuild it to add them",
                stacklevel=2,
            )

    @property
    def has_checksums(self) -> bool:
        """False for an index built before dredge recorded checksums (format 1)."""
        return bool(self._inner.has_checksums)

    @classmethod
    def _wrap(cls, inner: Any) -> "Index":
        index = cls.__new__(cls)
        index._inner = inner
        return index

    @classmethod
    def build(
        cls,
        out: PathLike,
        corpus: Optional[PathLike] = None,
        documents: Optional[Iterable[Mapping[str, str]]] = None,
        *,
        vectors: Any = None,
        vector_ids: Any = None,
        model: Optional[PathLike] = None,
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
    ) -> "Index":
        """Builds an index at ``out`` (atomically) and opens it.

        The documents are a ``corpus.jsonl`` or BEIR folder (``corpus``), or an
        iterable of ``{"_id", "title", "text"}`` dicts (``documents``). BM25 is built
        unless ``bm25=False``. A dense component comes from ``vectors`` (a 2-D
        float32 NumPy array whose rows are named by ``vector_ids``, or in document
        order when ``documents`` are given; or the path of a ``.npy`` whose ids file
        is ``vector_ids`` or ``FILE.ids.txt``) or from ``model`` (a
        sentence-transformers folder that encodes every document; the index then
        encodes query text too). The options are ``dredge index``'s; ``shard="i/n"``
        builds shard i of n of the corpus file (join shards with :func:`join_shards`);
        ``precision="int8"`` (or ``"bf16"``) encodes with int8 (bf16) linear layers (``--precision``).
        """
        inner = _dredge.Index.build(
            os.fspath(out),
            None if corpus is None else os.fspath(corpus),
            documents,
            vectors=os.fspath(vectors) if isinstance(vectors, (str, os.PathLike)) else vectors,
            vector_ids=os.fspath(vector_ids)
            if isinstance(vector_ids, (str, os.PathLike))
            else vector_ids,
            model=None if model is None else os.fspath(model),
            dense_name=dense_name,
            ann=ann,
            similarity=similarity,
            bm25=bm25,
            k1=k1,
            b=b,
            overwrite=overwrite,
            threads=threads,
            batch_size=batch_size,
            max_length=max_length,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            hnsw_seed=hnsw_seed,
            shard=shard,
            precision=precision,
        )
        return cls._wrap(inner)

    @property
    def path(self) -> str:
        """The index folder."""
        return os.fspath(self._inner.path)

    @property
    def dense_components(self) -> List[str]:
        """The names of the dense components."""
        return self._inner.dense_components

    @property
    def manifest(self) -> Dict[str, Any]:
        """The index's ``manifest.json``."""
        return json.loads(self._inner.manifest_json())

    def __len__(self) -> int:
        return len(self._inner)

    def document(self, doc_id: str) -> Optional[Dict[str, str]]:
        """``{"_id", "title", "text"}`` of a document, or ``None``."""
        return self._inner.document(doc_id)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "bm25",
        vector: Any = None,
        with_text: bool = False,
        k1: Optional[float] = None,
        b: Optional[float] = None,
        dense_name: Optional[str] = None,
        ef: Optional[int] = None,
        exact: bool = False,
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        alpha: float = 0.5,
        normalize: str = "minmax",
        depth: Optional[int] = None,
    ) -> List[Dict[str, Any]]:
        """The best ``k`` documents for one query, as ``{"id", "score"}`` dicts
        (with ``"title"`` and ``"text"`` when ``with_text``).

        ``mode`` is ``"bm25"``, ``"dense"`` or ``"hybrid"``; dense and hybrid take
        the query ``vector`` (1-D float32) or encode the text with the index's model.
        The other options are ``dredge search``'s: BM25 ``k1``/``b``; the dense
        component ``dense_name``, HNSW ``ef`` or ``exact``; hybrid ``fusion``
        (``"rrf"`` with ``rrf_k``, or ``"weighted"`` with ``alpha`` and
        ``normalize``) over the top ``depth`` of each side.
        """
        options = _retrieval(k1, b, dense_name, ef, exact, fusion, rrf_k, alpha, normalize, depth)
        return self._inner.search(query, k, mode, options, vector, with_text)

    def search_many(
        self,
        queries: Union[PathLike, Mapping[str, str], Sequence[Tuple[str, str]]],
        k: int = 1000,
        *,
        mode: str = "bm25",
        split: Optional[str] = None,
        vectors: Any = None,
        threads: int = 0,
        arrays: bool = False,
        k1: Optional[float] = None,
        b: Optional[float] = None,
        dense_name: Optional[str] = None,
        ef: Optional[int] = None,
        exact: bool = False,
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        alpha: float = 0.5,
        normalize: str = "minmax",
        depth: Optional[int] = None,
    ) -> Any:
        """Searches many queries on all cores (the GIL released; Ctrl-C stops it)
        and returns ``{qid: {docid: score}}``, the run shape pytrec_eval takes.

        ``queries``: ``{qid: text}``, ``[(qid, text)]``, or a ``queries.jsonl`` /
        BEIR folder (``split`` picks the judged queries). ``vectors``: a 2-D float32
        array, one row per query in order. Options as in :meth:`search`.

        ``arrays=True`` returns ``(documents, scores)`` instead: int64 and float32
        arrays of shape ``[queries, k]``, documents as ordinals into :attr:`doc_ids`
        (-1 and -inf past a query's last hit), without a Python object per hit.
        """
        options = _retrieval(k1, b, dense_name, ef, exact, fusion, rrf_k, alpha, normalize, depth)
        queries = _queries(queries, split)
        if arrays:
            return self._inner.search_many_arrays(queries, k, mode, options, vectors, threads)
        return self._inner.search_many(queries, k, mode, options, vectors, threads)

    def write_run(
        self,
        queries: Union[PathLike, Mapping[str, str], Sequence[Tuple[str, str]]],
        out: PathLike,
        k: int = 1000,
        *,
        mode: str = "bm25",
        split: Optional[str] = None,
        vectors: Any = None,
        threads: int = 0,
        tag: Optional[str] = None,
        k1: Optional[float] = None,
        b: Optional[float] = None,
        dense_name: Optional[str] = None,
        ef: Optional[int] = None,
        exact: bool = False,
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        alpha: float = 0.5,
        normalize: str = "minmax",
        depth: Optional[int] = None,
    ) -> int:
        """Searches ``queries`` as :meth:`search_many` does and writes the hits to
        ``out`` as a TREC run (atomically), the bytes ``dredge search --out`` writes
        for the same queries and options (``tag`` defaults to ``dredge-<mode>``).
        Returns the number of queries searched."""
        options = _retrieval(k1, b, dense_name, ef, exact, fusion, rrf_k, alpha, normalize, depth)
        return self._inner.write_run(
            _queries(queries, split), os.fspath(out), k, mode, options, vectors, threads, tag
        )

    @property
    def doc_ids(self) -> List[str]:
        """Every document id, by ordinal (what ``search_many(..., arrays=True)``
        returns); read once, then kept."""
        ids = getattr(self, "_doc_ids", None)
        if ids is None:
            ids = self._doc_ids = self._inner.doc_ids()
        return ids

    def mine(
        self,
        out: Optional[PathLike] = None,
        *,
        queries: Union[PathLike, None] = None,
        qrels: Optional[PathLike] = None,
        split: str = "train",
        pairs: Optional[PathLike] = None,
        rows: Optional[Iterable[Tuple[str, str, Sequence[str]]]] = None,
        candidates: str = "bm25",
        depth: int = 200,
        range: Optional[str] = None,
        max_score: Optional[float] = None,
        margin: Optional[float] = None,
        relative_margin: Optional[float] = None,
        positive_score: str = "min",
        num_negatives: int = 15,
        sampling: str = "top",
        seed: int = 42,
        on_short: str = "keep",
        format: str = "flag",
        filter_order: str = "sentence-transformers",
        holdout_qrels: Optional[PathLike] = None,
        query_vectors: Any = None,
        query_ids: Optional[Sequence[str]] = None,
        doc_vectors: Optional[PathLike] = None,
        doc_ids: Optional[PathLike] = None,
        threads: int = 0,
        k1: Optional[float] = None,
        b: Optional[float] = None,
        dense_name: Optional[str] = None,
        ef: Optional[int] = None,
        exact: bool = False,
        fusion: str = "rrf",
        rrf_k: float = 60.0,
        alpha: float = 0.5,
        normalize: str = "minmax",
        positions: Optional[Tuple[int, int]] = None,
        rescore: Optional[PathLike] = None,
        rescore_batch_size: int = 32,
        rescore_max_length: Optional[int] = None,
        report_queries: int = 20,
        report_worst: int = 10,
    ) -> Union[Dict[str, Any], Tuple[List[Dict[str, Any]], Dict[str, Any]]]:
        """Mines hard negatives with every option of ``dredge mine``.

        The queries and positives: ``queries`` (a ``queries.jsonl`` with ``qrels``,
        or a BEIR folder whose ``qrels/<split>.tsv`` gives them), ``pairs``
        (FlagEmbedding JSONL rows ``{"query", "pos"}``), or ``rows`` (``(qid, text,
        [positive doc ids])``). Candidates: ``"bm25"``, ``"dense"`` (exact unless
        ``ef``) or ``"hybrid"`` over each side's top ``depth``, with ``query_vectors``
        (rows named by ``query_ids``) or the index's model; ``doc_vectors`` (a
        ``.npy`` whose ids file is ``doc_ids`` or ``FILE.ids.txt``) replaces the
        index's dense components with those vectors, searched exactly. Filters, sampling and
        formats are ``dredge mine``'s. With ``out``, writes the JSONL there
        (atomically) and returns the audit; without, returns ``(rows, audit)``.
        ``positions=(start, end)`` mines only the input queries at those positions
        (counted from 0), each seeded as in a run over all of them: the parts of a
        fan-out, whose outputs concatenated in order are one run's bytes.
        ``rescore`` (a model folder: a sentence-transformers cross-encoder or
        bi-encoder) rescores candidates and positives as ``dredge mine --rescore``
        does: the filters compare its scores, ``pos_scores``/``neg_scores`` are its,
        the candidate source's beside them as ``retriever_pos_scores``/
        ``retriever_neg_scores``. The audit's ``query_audit`` holds
        ``report_queries`` sampled queries and the ``report_worst`` worst by margin.
        """
        options = _retrieval(k1, b, dense_name, ef, exact, fusion, rrf_k, alpha, normalize, depth)
        config = {
            "depth": depth,
            "range": range,
            "max_score": max_score,
            "margin": margin,
            "relative_margin": relative_margin,
            "positive_score": positive_score,
            "num_negatives": num_negatives,
            "sampling": sampling,
            "seed": seed,
            "on_short": on_short,
            "format": format,
            "filter_order": filter_order,
            "positions": positions,
            "report_queries": report_queries,
            "report_worst": report_worst,
        }
        audit, lines = self._inner.mine(
            out=None if out is None else os.fspath(out),
            queries=None if queries is None else os.fspath(queries),
            qrels=None if qrels is None else os.fspath(qrels),
            split=split,
            pairs=None if pairs is None else os.fspath(pairs),
            rows=None if rows is None else list(rows),
            candidates=candidates,
            options=options,
            query_vectors=query_vectors,
            query_ids=None if query_ids is None else list(query_ids),
            doc_vectors=None if doc_vectors is None else os.fspath(doc_vectors),
            doc_ids=None if doc_ids is None else os.fspath(doc_ids),
            config=config,
            holdout_qrels=None if holdout_qrels is None else os.fspath(holdout_qrels),
            threads=threads,
            rescore=None if rescore is None else os.fspath(rescore),
            rescore_batch_size=rescore_batch_size,
            rescore_max_length=rescore_max_length,
        )
        audit = json.loads(audit)
        if lines is None:
            return audit
        return [json.loads(line) for line in lines.splitlines() if line], audit


def evaluate(
    qrels: Union[PathLike, Mapping[str, Mapping[str, int]], Qrels],
    run: Union[PathLike, Mapping[str, Mapping[str, float]]],
    metrics: Sequence[str] = ("ndcg@10", "recall@100", "map@100", "mrr@10", "p@10"),
    *,
    ignore_identical_ids: bool = True,
    missing_as_zero: bool = False,
    per_query: bool = False,
) -> Union[Dict[str, float], Tuple[Dict[str, float], Dict[str, Dict[str, float]]]]:
    """Evaluates a run against qrels as ``dredge eval`` does (BEIR's averaging,
    trec_eval's numbers): ``{metric: mean}`` and, with ``per_query``, also
    ``{qid: {metric: value}}``.

    ``qrels`` and ``run`` are dicts (``{qid: {docid: grade}}``, ``{qid: {docid:
    score}}``) or paths (qrels TSV/TREC, TREC run). Metrics are written ``name@k``
    with name one of ndcg, recall, map, mrr, p.
    """
    if isinstance(qrels, (str, os.PathLike)):
        qrels = os.fspath(qrels)
    if isinstance(run, (str, os.PathLike)):
        run = os.fspath(run)
    means, queries = _dredge.evaluate(
        qrels,
        run,
        list(metrics),
        ignore_identical_ids=ignore_identical_ids,
        missing_as_zero=missing_as_zero,
    )
    return (means, queries) if per_query else means


_DEFAULT_CUTOFFS = (5, 10, 15, 20, 30, 100, 200, 500, 1000)
_FAMILIES = {"ndcg_cut": "ndcg", "P": "p", "recall": "recall", "map_cut": "map"}
_WHOLE = {"map": "map", "ndcg": "ndcg", "recip_rank": "mrr"}

#: The pytrec_eval measures dredge computes (families take any cutoffs).
supported_measures = frozenset(_WHOLE) | frozenset(_FAMILIES)


def join_shards(out: PathLike, shards: Sequence[PathLike], overwrite: bool = False) -> Index:
    """Joins shard folders (built with ``Index.build(..., shard="i/n")`` or
    ``dredge index --shard i/n``) into the sharded index ``out`` and opens it:
    ``dredge shards join``."""
    inner = _dredge.join_shards(os.fspath(out), [os.fspath(s) for s in shards], overwrite)
    return Index._wrap(inner)


def _combine_measures(measures: Iterable[str]) -> List[Tuple[str, Optional[int], str]]:
    """``(dredge kind, cutoff or None, pytrec_eval key)`` for a set of measure names,
    combined as pytrec_eval combines them: cutoffs given for a family (``P.5``,
    ``P_5``, ``P.5,10``, ``P_5,10``) are pooled and replace its default cutoffs,
    which a bare family name (``P``) asks for."""
    families: Dict[str, set] = {}
    whole: List[str] = []
    for measure in measures:
        if measure in _WHOLE:
            if measure not in whole:
                whole.append(measure)
            continue
        if measure in _FAMILIES:
            families.setdefault(measure, set())
            continue
        for family in _FAMILIES:
            rest = measure[len(family) + 1 :]
            if (
                measure.startswith(family)
                and measure[len(family) : len(family) + 1] in (".", "_")
                and rest
                and all(c.isdigit() and int(c) > 0 for c in rest.split(","))
            ):
                families.setdefault(family, set()).update(int(c) for c in rest.split(","))
                break
        else:
            raise ValueError(
                f"unsupported measure {measure!r}: dredge computes {sorted(supported_measures)} "
                "(families with cutoffs as 'ndcg_cut.10,100' or 'ndcg_cut_10')"
            )
    parsed = [(_WHOLE[m], None, m) for m in whole]
    for family, cutoffs in families.items():
        for k in sorted(cutoffs or _DEFAULT_CUTOFFS):
            parsed.append((_FAMILIES[family], k, f"{family}_{k}"))
    return parsed


class RelevanceEvaluator:
    """pytrec_eval's ``RelevanceEvaluator``, computed by dredge.

    ``RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall_100", "map"}).evaluate(run)``
    returns ``{qid: {"ndcg_cut_10": ..., "recall_100": ..., "map": ...}}`` for the
    run's queries that have judgments, with trec_eval's numbers. Measures: ``map``,
    ``ndcg``, ``recip_rank``, and ``ndcg_cut``, ``P``, ``recall``, ``map_cut`` at any
    cutoffs (trec_eval's defaults without).
    """

    def __init__(
        self,
        query_relevance: Mapping[str, Mapping[str, int]],
        measures: Iterable[str],
        relevance_level: int = 1,
        judged_docs_only_flag: bool = False,
    ) -> None:
        if relevance_level != 1:
            raise ValueError("dredge counts grade >= 1 as relevant: relevance_level must be 1")
        if judged_docs_only_flag:
            raise ValueError("judged_docs_only_flag is not supported by dredge")
        if isinstance(measures, str):
            raise TypeError("measures must be a collection of measure names, not one str")
        self._measures = _combine_measures(measures)
        # As pytrec_eval: queries without any judgment are not judged queries.
        self._qrels = Qrels({q: docs for q, docs in query_relevance.items() if len(docs) > 0})

    def evaluate(self, scores: Mapping[str, Mapping[str, float]]) -> Dict[str, Dict[str, float]]:
        """``{qid: {measure: value}}`` for the queries of ``scores`` with judgments."""
        return _dredge.evaluate_per_query(self._qrels, scores, self._measures)
