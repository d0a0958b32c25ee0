"""Run dredge on a Ray cluster: build an index in shards, join them, and search or
mine with the queries fanned out over workers.

Every task is a call of the ``dredge`` package on paths of a filesystem that all
nodes share (NFS, a mounted object store); outputs are written there under fixed
names and concatenated in a fixed order, so that a run on a cluster writes the
bytes one machine writes. Tasks are idempotent: a shard already built and
verified, or a part already written, is skipped when the job runs again, and a
task that dies is retried by Ray (``max_retries``).

From Python::

    import ray
    from dredge import ray_driver
    ray.init(address="auto")
    index = ray_driver.build(corpus, "/shared/idx", shards=16, vectors=..., vector_ids=...)
    ray_driver.search(index, queries, "/shared/run.trec", mode="bm25", parts=64)
    ray_driver.mine(index, "/shared/negatives.jsonl", queries=..., qrels=..., parts=64)

Or as a job (``ray job submit -- python -m dredge.ray_driver build ...``); see
``python -m dredge.ray_driver --help``.
"""

import argparse
import json
import os
import shutil
import sys
from typing import Any, Dict, List, Optional, Sequence

import ray

import dredge

SHARD_NAME = "shard-{:05d}-of-{:05d}"
JOINED = "index"


def _shard_dir(out: str, i: int, n: int) -> str:
    return os.path.join(out, "shards", SHARD_NAME.format(i, n))


def _shard_is_complete(path: str, i: int, n: int) -> bool:
    """A shard folder that opens and records itself as shard i of n."""
    try:
        manifest = json.loads(dredge.Index(path)._inner.manifest_json())
    except Exception:
        return False
    shard = manifest.get("shard") or {}
    return shard.get("index") == i and shard.get("count") == n


#: The addresses of the nodes that ran the last :func:`build`'s shard tasks.
last_build_nodes: set = set()


@ray.remote(max_retries=3, scheduling_strategy="SPREAD")
def _build_shard(corpus: str, out: str, i: int, n: int, options: Dict[str, Any]) -> Any:
    node = ray.util.get_node_ip_address()
    path = _shard_dir(out, i, n)
    if _shard_is_complete(path, i, n):
        return path, node
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Built under a temporary name and renamed when whole: a task killed halfway
    # leaves no shard that looks complete, and its rerun overwrites the leftover.
    dredge.Index.build(path, corpus, shard=f"{i}/{n}", overwrite=True, **options)
    return path, node


def build(corpus: str, out: str, shards: int, **options: Any) -> "dredge.Index":
    """Builds ``corpus`` in ``shards`` shards as Ray tasks (one shard a task, under
    ``out/shards/``), then joins them into ``out/index`` and opens it. ``options``
    are :meth:`dredge.Index.build`'s (``vectors``/``vector_ids`` as paths may cover
    the whole corpus; ``model`` encodes each shard's documents in its task).
    Shards already built and verified are not built again."""
    corpus = os.path.abspath(corpus)
    out = os.path.abspath(out)
    if isinstance(options.get("vectors"), (str, os.PathLike)):
        options["vectors"] = os.path.abspath(options["vectors"])
    if isinstance(options.get("vector_ids"), (str, os.PathLike)):
        options["vector_ids"] = os.path.abspath(options["vector_ids"])
    pending = {_build_shard.remote(corpus, out, i, shards, options): i for i in range(shards)}
    done: Dict[int, Any] = {}
    while len(done) < shards:
        ready, _ = ray.wait(list(r for r in pending if pending[r] not in done), num_returns=1)
        for ref in ready:
            done[pending[ref]] = ray.get(ref)
            path, node = done[pending[ref]]
            print(f"shard {pending[ref]}/{shards} ready on {node} ({len(done)} of {shards}): {path}",
                  file=sys.stderr, flush=True)
    done = [done[i] for i in range(shards)]
    paths = [path for path, _ in done]
    last_build_nodes.clear()
    last_build_nodes.update(node for _, node in done)
    return dredge.join_shards(os.path.join(out, JOINED), paths, overwrite=True)


def _parts(total: int, parts: int) -> List[range]:
    """``parts`` contiguous ranges covering ``0..total`` (the last ones may be empty)."""
    return [range(total * j // parts, total * (j + 1) // parts) for j in range(parts)]


def _concatenate(pieces: Sequence[str], out: str) -> None:
    """Writes the files ``pieces`` one after another into ``out``, atomically."""
    temp = os.path.join(os.path.dirname(out) or ".", f".{os.path.basename(out)}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as sink:
            for piece in pieces:
                with open(piece, "rb") as source:
                    shutil.copyfileobj(source, sink, 1 << 20)
        os.replace(temp, out)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _parts_dir(out: str) -> str:
    return f"{out}.parts"


@ray.remote(max_retries=3)
def _search_part(
    index: str, queries: List[Any], out: str, k: int, options: Dict[str, Any], threads: int
) -> str:
    if not os.path.exists(out):
        dredge.Index(index).write_run(queries, out, k, threads=threads, **options)
    return out


def search(
    index: "dredge.Index",
    queries: Any,
    out: str,
    *,
    k: int = 1000,
    parts: int = 8,
    split: Optional[str] = None,
    threads: int = 0,
    keep_parts: bool = False,
    **options: Any,
) -> str:
    """Searches ``queries`` (a queries file or BEIR folder with ``split``, or
    ``[(qid, text)]``) over ``index`` in ``parts`` Ray tasks of contiguous queries,
    each writing its run to ``out.parts/``; the parts are then concatenated in
    order into ``out``: the bytes of ``dredge search --out``. ``options`` are
    :meth:`dredge.Index.write_run`'s (``mode``, ``k1``, ``exact``, ...)."""
    if isinstance(queries, (str, os.PathLike)):
        queries = dredge.load_queries(os.fspath(queries), split)
    else:
        queries = list(queries)
    out = os.path.abspath(out)
    pieces_dir = _parts_dir(out)
    os.makedirs(pieces_dir, exist_ok=True)
    tasks = []
    for j, r in enumerate(_parts(len(queries), parts)):
        piece = os.path.join(pieces_dir, f"part-{j:05d}-of-{parts:05d}.trec")
        tasks.append(
            _search_part.remote(index.path, queries[r.start : r.stop], piece, k, options, threads)
        )
    pieces = ray.get(tasks)
    _concatenate(pieces, out)
    if not keep_parts:
        shutil.rmtree(pieces_dir)
    return out


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


@ray.remote(max_retries=3)
def _mine_part(index: str, out: str, start: int, end: int, options: Dict[str, Any]) -> Dict[str, Any]:
    audit_path = f"{out}.audit.json"
    if os.path.exists(out) and os.path.exists(audit_path):
        with open(audit_path) as f:
            return json.load(f)
    audit = dredge.Index(index).mine(out, positions=(start, end), **options)
    with open(audit_path + ".tmp", "w") as f:
        json.dump(audit, f)
    os.replace(audit_path + ".tmp", audit_path)
    return audit


def mine(
    index: "dredge.Index",
    out: str,
    *,
    parts: int = 8,
    keep_parts: bool = False,
    **options: Any,
) -> List[Dict[str, Any]]:
    """Mines hard negatives over ``index`` in ``parts`` Ray tasks, each mining a
    contiguous block of the input's queries (seeded by their position, as one run
    seeds them) into ``out.parts/``; the parts are concatenated in order into
    ``out``: the bytes of one ``dredge mine``. ``options`` are
    :meth:`dredge.Index.mine`'s (``queries`` + ``qrels``/``split``, or ``pairs``;
    the filters). Returns each part's audit."""
    for key in ("queries", "qrels", "pairs", "holdout_qrels", "doc_vectors", "doc_ids"):
        if isinstance(options.get(key), (str, os.PathLike)):
            options[key] = os.path.abspath(options[key])
    # An upper bound of the input's queries: each is a line of the queries or
    # pairs file (blocks past the last query come out empty).
    source = options.get("pairs") or options.get("queries")
    if source is None:
        raise ValueError("give queries (with qrels or split) or pairs")
    if os.path.isdir(source):
        source = os.path.join(source, "queries.jsonl")
    bound = _count_lines(source)
    out = os.path.abspath(out)
    pieces_dir = _parts_dir(out)
    os.makedirs(pieces_dir, exist_ok=True)
    tasks, pieces = [], []
    for j, r in enumerate(_parts(bound, parts)):
        piece = os.path.join(pieces_dir, f"part-{j:05d}-of-{parts:05d}.jsonl")
        pieces.append(piece)
        tasks.append(_mine_part.remote(index.path, piece, r.start, r.stop, options))
    audits = ray.get(tasks)
    _concatenate(pieces, out)
    if not keep_parts:
        shutil.rmtree(pieces_dir)
    return audits


def _main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dredge.ray_driver",
        description="dredge on a Ray cluster: build in shards and join, search or mine in parts. "
        "Paths must be on storage every node sees.",
    )
    parser.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS or a local cluster)")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build shards as tasks, then join them into OUT/index")
    b.add_argument("--corpus", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--shards", type=int, required=True)
    b.add_argument("--vectors")
    b.add_argument("--vector-ids")
    b.add_argument("--model")
    b.add_argument("--ann", default="hnsw", choices=["hnsw", "flat"])
    b.add_argument("--threads", type=int, default=0)
    s = sub.add_parser("search", help="search queries in parts; one TREC run out")
    s.add_argument("--index", required=True)
    s.add_argument("--queries", required=True)
    s.add_argument("--split")
    s.add_argument("--out", required=True)
    s.add_argument("-k", type=int, default=1000)
    s.add_argument("--mode", default="bm25", choices=["bm25", "dense", "hybrid"])
    s.add_argument("--exact", action="store_true")
    s.add_argument("--parts", type=int, default=8)
    m = sub.add_parser("mine", help="mine in parts; one JSONL out")
    m.add_argument("--index", required=True)
    m.add_argument("--queries", required=True)
    m.add_argument("--qrels")
    m.add_argument("--split", default="train")
    m.add_argument("--out", required=True)
    m.add_argument("--candidates", default="bm25", choices=["bm25", "dense", "hybrid"])
    m.add_argument("--relative-margin", type=float)
    m.add_argument("--num-negatives", type=int, default=15)
    m.add_argument("--parts", type=int, default=8)
    args = parser.parse_args(argv)
    ray.init(address=args.address)
    if args.command == "build":
        options: Dict[str, Any] = {"ann": args.ann, "threads": args.threads}
        for key in ("vectors", "vector_ids", "model"):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
        index = build(args.corpus, args.out, args.shards, **options)
        print(f"built {args.shards} shards and joined them: {index.path} ({len(index)} documents)")
    elif args.command == "search":
        index = dredge.Index(args.index)
        search(index, args.queries, args.out, k=args.k, parts=args.parts, split=args.split,
               mode=args.mode, exact=args.exact)
        print(f"wrote {args.out}")
    else:
        index = dredge.Index(args.index)
        audits = mine(index, args.out, parts=args.parts, queries=args.queries, qrels=args.qrels,
                      split=args.split, candidates=args.candidates,
                      relative_margin=args.relative_margin, num_negatives=args.num_negatives)
        mined = sum(a["queries"]["mined"] for a in audits)
        print(f"mined {mined} queries in {len(audits)} parts -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
