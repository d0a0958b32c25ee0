"""Rewrites a dredge dense index folder whose hnsw.bin is an older format as the
current one (3: each point's vector followed by its layer-0 list in one
64-byte-aligned record, then the upper lists, then the vectors' squared norms; no
vectors.bin; see crates/dredge-ann/src/hnsw.rs), keeping the graph: the same links,
so search returns the same hits. Reads format 1 (layer-0 lists in their own table,
vectors in vectors.bin) and format 2 (records, vectors.bin beside them). dense.json
is hard-linked into the new folder. Used for the 1M reruns in BENCHMARKS.md, whose
graph took 13 minutes to build.
usage: benches/.venv-ann/bin/python benches/ann/graph-convert.py OLD_DIR NEW_DIR"""
import os
import sys

import numpy as np

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
if not os.path.exists(os.path.join(dst, "dense.json")):
    os.link(os.path.join(src, "dense.json"), os.path.join(dst, "dense.json"))
g = np.memmap(os.path.join(src, "hnsw.bin"), dtype=np.uint8, mode="r")
assert bytes(g[:7]) == b"DRHNSW\0" and g[7] in (1, 2), "not a format 1 or 2 graph"
version = int(g[7])
n, m, m0, top, entry, blocks = [int(x) for x in np.frombuffer(g[8:56], dtype=np.uint64)]
pad8 = lambda x: (x + 7) // 8 * 8
pad64 = lambda x: (x + 63) // 64 * 64
first_at = 64 + pad8(n)
if version == 1:
    vec = np.memmap(os.path.join(src, "vectors.bin"), dtype=np.uint8, mode="r")
    dim = int(np.frombuffer(vec[16:24], dtype=np.uint64)[0])
else:
    dim = int(np.frombuffer(g[56:64], dtype=np.uint64)[0])
words = (dim + 1 + m0 + 15) // 16 * 16
level0_at = pad64(first_at + (n + 1) * 4)
if version == 1:
    rows = np.frombuffer(vec[64:64 + n * dim * 4], dtype=np.float32).reshape(n, dim)
    at = first_at + pad8((n + 1) * 4)
    lists = np.frombuffer(g[at:at + n * (1 + m0) * 4], dtype=np.uint32).reshape(n, 1 + m0)
    upper = g[at + n * (1 + m0) * 4:]
    rec = np.zeros((n, words), dtype=np.uint32)
    rec[:, :dim] = rows.view(np.uint32)
    rec[:, dim:dim + 1 + m0] = lists
    records = rec
else:
    records = np.frombuffer(g[level0_at:level0_at + n * words * 4], dtype=np.uint32).reshape(n, words)
    rows = records[:, :dim].view(np.float32)
    upper = g[level0_at + n * words * 4:]
assert len(upper) == blocks * (1 + m) * 4
norms = np.einsum("ij,ij->i", rows, rows).astype(np.float32)
header = bytearray(g[:64].tobytes())
header[7] = 3
header[56:64] = np.uint64(dim).tobytes()
with open(os.path.join(dst, "hnsw.bin"), "wb") as f:
    f.write(bytes(header))
    f.write(g[64:first_at].tobytes())
    f.write(g[first_at:first_at + (n + 1) * 4].tobytes())
    f.write(b"\0" * (level0_at - first_at - (n + 1) * 4))
    for i in range(0, n, 65536):
        f.write(np.ascontiguousarray(records[i:i + 65536]).tobytes())
    f.write(upper.tobytes())
    f.write(norms.tobytes())
print(f"{src} (format {version}) -> {dst} (format 3): {n} points, dim {dim}, m {m}")
