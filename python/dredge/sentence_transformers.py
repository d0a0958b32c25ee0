"""A drop-in for sentence-transformers' ``util.mine_hard_negatives`` (version 5):
the same signature, defaults and results, the search, filters and sampling done by
dredge. Change one import line::

    # from sentence_transformers.util import mine_hard_negatives
    from dredge.sentence_transformers import mine_hard_negatives

Encoding is the model's own, called as sentence-transformers calls it
(``encode_document`` / ``encode_query`` with ``normalize_embeddings=True``, the
prompts, ``batch_size``); any object with sentence-transformers' ``encode`` works.
The candidates are the exact top ``range_max + max_positives`` of each distinct
query (dredge's exact search on all cores: ``use_faiss`` changes nothing but the
backend, so it is accepted and the search stays exact), the positives are masked,
then ``absolute_margin`` and ``relative_margin`` against the query's lowest positive
score, ``max_score``, ``min_score``, the rank window and the sampling apply in
sentence-transformers' order. ``sampling_strategy="random"`` draws with Python's
``random.sample``, as sentence-transformers does, so ``random.seed(s)`` before the
call gives its draws. Scores are computed in float32 by dredge's kernels rather
than torch's: candidates whose scores tie within rounding may come in another order.

``cross_encoder`` (any object with sentence-transformers' ``CrossEncoder.predict``)
rescores exactly when sentence-transformers 5.7.0 does, when ``absolute_margin``,
``relative_margin`` or ``max_score`` is given (without one it is ignored, as there).
Each distinct query's ``range_max + max_positives`` bi-encoder candidates, its
positives and any padding (index -1, the corpus's last text) included, are scored in
one ``cross_encoder.predict(pairs, batch_size=batch_size, convert_to_tensor=True,
pool=pool)`` call per query (``pool`` from ``cross_encoder.start_multi_process_pool``
under ``use_multi_process``), then every (anchor, positive) pair in one call. The
positives are masked afterwards; the margins (against the query's lowest positive
cross-encoder score), ``max_score``/``min_score``, the ranking for the rank window
and the sampling, and ``output_scores`` all use the cross-encoder's scores: the
candidates' as float32, the positives' in the dtype ``predict`` returns (float32 or
float64; a tensor, array or list is accepted; one score per pair is required).

Not supported (a clear error, never ignored): models whose similarity is not cosine
or dot product.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from . import _dredge

__all__ = ["mine_hard_negatives"]

_NEG_INF = np.float32(-np.inf)


def _encode(model: Any, texts: List[str], kind: str, batch_size: int, prompt_name, prompt, pool):
    method = getattr(model, f"encode_{kind}", None)
    kwargs = dict(
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=True,
        prompt_name=prompt_name,
        prompt=prompt,
    )
    if method is None:
        method = model.encode
        if pool is not None:
            kwargs["pool"] = pool
    else:
        kwargs["pool"] = pool
    vectors = method(texts, **kwargs)
    if hasattr(vectors, "detach"):  # a tensor from a model that ignores convert_to_numpy
        vectors = vectors.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))


def _predict(cross_encoder: Any, pairs: List[tuple], batch_size: int, pool) -> np.ndarray:
    """The cross-encoder's scores of (query, passage) pairs, asked for as
    sentence-transformers' `mine_hard_negatives` asks (a tensor, the batch size, the pool),
    as a 1-D float32 or float64 array (a tensor or array-like is accepted; float16 and
    bfloat16 are widened to float32)."""
    values = cross_encoder.predict(pairs, batch_size=batch_size, convert_to_tensor=True, pool=pool)
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        if str(values.dtype) not in ("torch.float32", "torch.float64"):
            values = values.float()
        values = values.numpy()
    values = np.asarray(values)
    if values.dtype != np.float64:
        values = values.astype(np.float32)
    if values.shape != (len(pairs),):
        raise ValueError(
            f"cross_encoder.predict returned scores of shape {values.shape} for {len(pairs)} pairs; "
            "mine_hard_negatives needs one score per pair (a single-label cross-encoder)"
        )
    return values


def _columns(dataset: Any, names: List[str]) -> dict:
    """The named columns as lists, in row order (a `datasets.Dataset`'s `to_dict` reads
    them in one go, honouring a selection or shuffle; anything else by indexing)."""
    select = getattr(dataset, "select_columns", None)
    if select is not None:
        return select(names).to_dict()
    return {name: list(dataset[name]) for name in names}


def _dataset(Dataset: Any, data: dict) -> Any:
    """`Dataset.from_dict(data)` without hashing the table for a fingerprint (a random
    one, as datasets gives tables made in memory; the columns and features are the
    same)."""
    try:
        from datasets.fingerprint import generate_random_fingerprint
        from datasets.table import InMemoryTable
    except ImportError:
        return Dataset.from_dict(data)
    return Dataset(InMemoryTable.from_pydict(data), fingerprint=generate_random_fingerprint())


def _similarity_name(model: Any) -> str:
    name = getattr(model, "similarity_fn_name", None) or "cosine"
    name = str(getattr(name, "value", name))
    if name in ("cosine", "cos_sim"):
        return "cosine"
    if name in ("dot", "dot_product", "dot_score"):
        return "dot"
    raise NotImplementedError(
        f"dredge's mine_hard_negatives supports cosine and dot similarity, not the model's {name!r}"
    )


def mine_hard_negatives(
    dataset: Any,
    model: Any,
    anchor_column_name: Optional[str] = None,
    positive_column_name: Optional[str] = None,
    corpus: Optional[List[str]] = None,
    cross_encoder: Any = None,
    range_min: int = 0,
    range_max: Optional[int] = None,
    max_score: Optional[float] = None,
    min_score: Optional[float] = None,
    absolute_margin: Optional[float] = None,
    relative_margin: Optional[float] = None,
    num_negatives: int = 3,
    sampling_strategy: str = "top",
    query_prompt_name: Optional[str] = None,
    query_prompt: Optional[str] = None,
    corpus_prompt_name: Optional[str] = None,
    corpus_prompt: Optional[str] = None,
    include_positives: bool = False,
    output_format: str = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    faiss_batch_size: int = 16384,
    use_faiss: bool = False,
    use_multi_process: Union[Sequence[str], bool] = False,
    verbose: bool = True,
    cache_folder: Optional[str] = None,
    as_triplets: Optional[bool] = None,
    margin: Optional[float] = None,
):
    """sentence-transformers' ``mine_hard_negatives``, computed by dredge: same
    arguments, defaults and output ``datasets.Dataset`` (see the module docs)."""
    from datasets import Dataset

    if len(dataset) == 0:
        raise ValueError("The dataset is empty. Please provide a non-empty dataset.")
    if faiss_batch_size <= 0:
        raise ValueError(f"faiss_batch_size must be a positive integer, got {faiss_batch_size}.")
    columns = dataset.column_names
    if not anchor_column_name or anchor_column_name not in columns:
        anchor_column_name = columns[0]
    if not positive_column_name or positive_column_name not in columns:
        positive_column_name = columns[1]
    if as_triplets is not None:
        output_format = "triplet" if as_triplets else "n-tuple"
    if include_positives:
        output_format = "n-tuple"
    if output_format == "n-tuple-scores":
        output_format, output_scores = "n-tuple", True
    if output_format not in ["triplet", "n-tuple", "labeled-pair", "labeled-list"]:
        raise ValueError(
            f"Invalid output_format: {output_format}. Must be one of 'triplet', 'n-tuple', 'labeled-pair', or 'labeled-list'."
        )
    if sampling_strategy not in ("top", "random"):
        raise ValueError(f"sampling_strategy must be 'top' or 'random', not {sampling_strategy!r}")
    if margin is not None:
        absolute_margin = margin

    columns_data = _columns(dataset, [anchor_column_name, positive_column_name])
    queries, positives = columns_data[anchor_column_name], columns_data[positive_column_name]
    # Pairs per anchor (pandas' groupby().count() counts non-null positives).
    counts = Counter(q for q, p in zip(queries, positives) if p is not None)
    max_positives = max(counts.values())
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be at least 1, got num_negatives={num_negatives}.")
    if range_max is None:
        if absolute_margin is not None or relative_margin is not None or max_score is not None:
            range_max = range_min + (num_negatives * 10) + max_positives
        else:
            range_max = range_min + num_negatives + max_positives
        if verbose:
            print(f"Setting range_max to {range_max} based on the provided parameters.")
    if range_min < 0:
        raise ValueError(f"range_min must be non-negative, got range_min={range_min}.")
    if range_min >= range_max:
        raise ValueError(
            f"range_min must be smaller than range_max, got range_min={range_min} and range_max={range_max}."
        )
    if num_negatives > range_max - range_min:
        raise ValueError(
            f"Cannot mine {num_negatives} negatives per query: only {range_max - range_min} candidates remain after "
            f"skipping the first range_min={range_min} of range_max={range_max}. Consider decreasing num_negatives "
            f"or range_min, or increasing range_max."
        )

    if corpus is None:
        corpus = positives
    corpus = list(dict.fromkeys(list(corpus) + positives))
    corpus_idx = {text: i for i, text in enumerate(corpus)}
    all_queries = queries
    queries = list(dict.fromkeys(queries))
    queries_idx = {q: i for i, q in enumerate(queries)}
    n_queries = len(queries)
    if verbose and n_queries != len(all_queries):
        print(f"Found {n_queries} unique queries out of {len(all_queries)} total queries.")

    corpus_embeddings = query_embeddings = None
    if cache_folder:
        os.makedirs(cache_folder, exist_ok=True)
        card = getattr(model, "model_card_data", None)
        model_name = (getattr(card, "base_model", None) or "") if card is not None else ""
        query_hash = hashlib.sha256(repr((model_name, query_prompt, query_prompt_name, queries)).encode()).hexdigest()
        corpus_hash = hashlib.sha256(repr((model_name, corpus_prompt, corpus_prompt_name, corpus)).encode()).hexdigest()
        query_cache = os.path.join(cache_folder, f"query_embeddings_{query_hash}.npy")
        corpus_cache = os.path.join(cache_folder, f"corpus_embeddings_{corpus_hash}.npy")
        if os.path.exists(query_cache):
            query_embeddings = np.load(query_cache).astype(np.float32)
        if os.path.exists(corpus_cache):
            corpus_embeddings = np.load(corpus_cache).astype(np.float32)
    if corpus_embeddings is None or query_embeddings is None:
        pool = None
        if use_multi_process:
            pool = model.start_multi_process_pool(
                target_devices=None if isinstance(use_multi_process, bool) else use_multi_process
            )
        try:
            if corpus_embeddings is None:
                corpus_embeddings = _encode(model, corpus, "document", batch_size, corpus_prompt_name, corpus_prompt, pool)
            if query_embeddings is None:
                query_embeddings = _encode(model, queries, "query", batch_size, query_prompt_name, query_prompt, pool)
        finally:
            if pool is not None:
                model.stop_multi_process_pool(pool)
    if cache_folder:
        if not os.path.exists(query_cache):
            np.save(query_cache, query_embeddings)
        if not os.path.exists(corpus_cache):
            np.save(corpus_cache, corpus_embeddings)

    index = _dredge.VectorIndex(corpus_embeddings, _similarity_name(model))
    width = range_max + max_positives
    k = min(width, len(corpus))
    indices, scores = index.search(query_embeddings, k)
    if width > k:
        indices = np.concatenate([indices, np.full((n_queries, width - k), -1, dtype=np.int64)], axis=1)
        scores = np.concatenate([scores, np.full((n_queries, width - k), _NEG_INF, dtype=np.float32)], axis=1)

    positive_indices: List[List[int]] = [[] for _ in range(n_queries)]
    for query, positive in zip(all_queries, positives):
        q = queries_idx[query]
        if corpus_idx[positive] not in positive_indices[q]:
            positive_indices[q].append(corpus_idx[positive])
    n_positives = [len(p) for p in positive_indices]
    rows = np.repeat(np.arange(n_queries, dtype=np.int64), n_positives)
    flat_positives = np.array([d for p in positive_indices for d in p], dtype=np.int64)
    positive_scores = index.score_pairs(query_embeddings, rows, flat_positives)
    positives = [corpus[d] for d in flat_positives]
    all_queries = [queries[q] for q in rows]

    if cross_encoder is not None and (
        absolute_margin is not None or relative_margin is not None or max_score is not None
    ):
        pool = None
        if use_multi_process:
            pool = cross_encoder.start_multi_process_pool(
                target_devices=None if isinstance(use_multi_process, bool) else use_multi_process
            )
        try:
            for q in range(n_queries):
                # Every candidate, positives and padding (index -1, the last text) included,
                # one call per query, as sentence-transformers does.
                passages = [corpus[d] for d in indices[q]]
                scores[q] = _predict(cross_encoder, [(queries[q], p) for p in passages], batch_size, pool)
            positive_scores = _predict(cross_encoder, list(zip(all_queries, positives)), batch_size, pool)
        finally:
            if pool is not None:
                cross_encoder.stop_multi_process_pool(pool)

    scores[indices == -1] = _NEG_INF
    if not include_positives:
        padded = np.full((n_queries, max(n_positives)), -2, dtype=np.int64)
        for q, p in enumerate(positive_indices):
            padded[q, : len(p)] = p
        scores[(indices[:, :, None] == padded[:, None, :]).any(axis=2)] = _NEG_INF
    if absolute_margin is not None or relative_margin is not None:
        starts = np.concatenate([[0], np.cumsum(n_positives)[:-1]]).astype(np.int64)
        # In the positive scores' own dtype (float32, or float64 from a cross-encoder that
        # gives it), compared with the float32 candidate scores as torch promotes.
        lowest = np.minimum.reduceat(positive_scores, starts)
        if absolute_margin is not None:
            scores[scores + np.float32(absolute_margin) > lowest[:, None]] = _NEG_INF
        if relative_margin is not None:
            threshold = lowest - np.abs(lowest) * np.float32(relative_margin)
            scores[scores > threshold[:, None]] = _NEG_INF
    if max_score is not None:
        scores[scores > np.float32(max_score)] = _NEG_INF
    if min_score is not None:
        scores[scores < np.float32(min_score)] = _NEG_INF

    order = np.argsort(-scores, axis=1, kind="stable")[:, :range_max]
    negative_scores = np.take_along_axis(scores, order, axis=1)
    indices = np.take_along_axis(indices, order, axis=1)
    if range_min:
        indices, negative_scores = indices[:, range_min:], negative_scores[:, range_min:]
    if sampling_strategy == "top":
        indices, negative_scores = indices[:, :num_negatives], negative_scores[:, :num_negatives]
    else:
        options = indices.shape[1] - np.isinf(negative_scores).sum(axis=1)
        options = np.maximum(options, num_negatives)
        sampled = np.array([random.sample(range(int(o)), k=num_negatives) for o in options], dtype=np.int64)
        indices = np.take_along_axis(indices, sampled, axis=1)
        negative_scores = np.take_along_axis(negative_scores, sampled, axis=1)
        resort = np.argsort(-negative_scores, axis=1, kind="stable")
        negative_scores = np.take_along_axis(negative_scores, resort, axis=1)
        indices = np.take_along_axis(indices, resort, axis=1)

    per_pair_indices = np.repeat(indices, n_positives, axis=0)
    per_pair_scores = np.repeat(negative_scores, n_positives, axis=0)
    found = ~np.isinf(per_pair_scores)
    anchor, positive = anchor_column_name, positive_column_name
    if output_format == "triplet":
        data = {anchor: [], positive: [], "negative": []}
        if output_scores:
            data["scores"] = []
        for i in range(len(rows)):
            for j in np.nonzero(found[i])[0]:
                data[anchor].append(all_queries[i])
                data[positive].append(positives[i])
                data["negative"].append(corpus[per_pair_indices[i, j]])
                if output_scores:
                    data["scores"].append([float(positive_scores[i]), float(per_pair_scores[i, j])])
    elif output_format == "labeled-pair":
        data = {anchor: [], positive: [], ("score" if output_scores else "label"): []}
        labels = data["score" if output_scores else "label"]
        pair = 0
        for q in range(n_queries):
            for d in positive_indices[q]:
                data[anchor].append(queries[q])
                data[positive].append(corpus[d])
                labels.append(float(positive_scores[pair]) if output_scores else 1)
                pair += 1
            for d, s in zip(indices[q], negative_scores[q]):
                if np.isinf(s):
                    continue
                data[anchor].append(queries[q])
                data[positive].append(corpus[d])
                labels.append(float(s) if output_scores else 0)
    elif output_format == "n-tuple":
        keep = found.all(axis=1)
        data = {
            anchor: [all_queries[i] for i in np.nonzero(keep)[0]],
            positive: [positives[i] for i in np.nonzero(keep)[0]],
        }
        kept = per_pair_indices[keep]
        for j in range(kept.shape[1]):
            data[f"negative_{j + 1}"] = [corpus[d] for d in kept[:, j]]
        if output_scores:
            data["scores"] = np.concatenate(
                [positive_scores[keep][:, None], per_pair_scores[keep]], axis=1
            ).tolist()
    else:  # labeled-list
        has = found.any(axis=1)
        data = {
            anchor: [all_queries[i] for i in np.nonzero(has)[0]],
            positive: [
                [positives[i]] + [corpus[d] for d, f in zip(per_pair_indices[i], found[i]) if f]
                for i in np.nonzero(has)[0]
            ],
        }
        if output_scores:
            data["scores"] = [
                [float(positive_scores[i])] + per_pair_scores[i][found[i]].tolist() for i in np.nonzero(has)[0]
            ]
        else:
            data["labels"] = [[1] + [0] * int(found[i].sum()) for i in np.nonzero(has)[0]]
    result = _dataset(Dataset, data)
    if verbose:
        print(
            f"dredge mined {int(found.sum())} negatives for {len(rows)} (anchor, positive) pairs "
            f"of {n_queries} queries; {len(result)} rows."
        )
    return result
