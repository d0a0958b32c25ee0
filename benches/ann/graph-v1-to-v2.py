"""Rewrites a dredge dense index folder whose hnsw.bin is format 1 (layer-0 lists in
their own table) as format 2 (each point's vector followed by its layer-0 list, one
64-byte-aligned record per point; see crates/dredge-ann/src/hnsw.rs), keeping the
graph: the same links, so search returns the same hits. dense.json and vectors.bin
are hard-linked into the new folder. Used for the 1M rerun in BENCHMARKS.md, whose
graph took 13 minutes to build.
usage: benches/.venv-ann/bin/python benches/ann/graph-v1-to-v2.py OLD_DIR NEW_DIR"""
import sys, os, numpy as np
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for f in ("dense.json", "vectors.bin"):
    if not os.path.exists(os.path.join(dst, f)):
        os.link(os.path.join(src, f), os.path.join(dst, f))
g = np.fromfile(os.path.join(src, "hnsw.bin"), dtype=np.uint8)
assert bytes(g[:8]) == b"DRHNSW\0\x01"
n, m, m0, top, entry, blocks = [int(x) for x in g[8:56].view(np.uint64)]
vec = np.memmap(os.path.join(src, "vectors.bin"), dtype=np.uint8, mode="r")
dim = int(vec[16:24].view(np.uint64)[0])
rows = np.frombuffer(vec[64:64 + n * dim * 4], dtype=np.uint32).reshape(n, dim)
pad8 = lambda x: (x + 7) // 8 * 8
pad64 = lambda x: (x + 63) // 64 * 64
first_at = 64 + pad8(n)
level0_at_v1 = first_at + pad8((n + 1) * 4)
lists = g[level0_at_v1:level0_at_v1 + n * (1 + m0) * 4].view(np.uint32).reshape(n, 1 + m0)
upper = g[level0_at_v1 + n * (1 + m0) * 4:]
assert len(upper) == blocks * (1 + m) * 4
words = (dim + 1 + m0 + 15) // 16 * 16
rec = np.zeros((n, words), dtype=np.uint32)
rec[:, :dim] = rows
rec[:, dim:dim + 1 + m0] = lists
header = bytearray(g[:64].tobytes())
header[7] = 2
header[56:64] = np.uint64(dim).tobytes()
first = g[first_at:first_at + (n + 1) * 4]
level0_at = pad64(first_at + (n + 1) * 4)
with open(os.path.join(dst, "hnsw.bin"), "wb") as f:
    f.write(bytes(header)); f.write(g[64:first_at].tobytes()); f.write(first.tobytes())
    f.write(b"\0" * (level0_at - first_at - (n + 1) * 4))
    f.write(rec.tobytes()); f.write(upper.tobytes())
print(n, m, m0, dim, words)
