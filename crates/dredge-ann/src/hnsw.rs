//! HNSW: dredge builds the graph itself (hnswlib's algorithm, in [`build`]) straight
//! into flat `u32` neighbour lists, writes them to a compact file, and searches the
//! memory-mapped file with its own layered greedy search, a reused visited table
//! and the same SIMD kernels as exact search.
//!
//! As in hnswlib, each point's layer-0 list sits next to a copy of its vector in
//! one record: expanding a candidate reads the list that follows the vector whose
//! distance brought it in, usually already cached, where a separate list table costs
//! a cache miss per expanded candidate. On 1M x 384 vectors this made search
//! 1.6x-1.7x faster at equal `ef` (BENCHMARKS.md, "Dense (ANN)"). The records are
//! also where the index's [`VectorStore`] reads its rows (exact search, scoring), so
//! an index with a graph has no `vectors.bin` and stores its vectors once.
//!
//! Until this module had its own insert, the graph was built with hnsw_rs and
//! copied out of it. hnsw_rs keeps `Arc`-linked points with per-search hash maps;
//! on 50,000 x 384 clustered vectors (M=16, ef_construction=200, 2 threads) its
//! build took 3.1x hnswlib's wall time, 3.9x its CPU time and 1.8x its peak memory
//! (BENCHMARKS.md, "Dense (ANN)"). Building in place removed those gaps and the
//! dependency.
//!
//! On disk (`hnsw.bin`, little-endian):
//!
//! ```text
//! offset  size                 field
//! 0       8                    magic "DRHNSW\0" + format version (3)
//! 8       u64                  points n
//! 16      u64                  m: list capacity above layer 0
//! 24      u64                  m0: list capacity at layer 0 (2 m)
//! 32      u64                  top layer L
//! 40      u64                  entry point (a point of layer L)
//! 48      u64                  upper lists B (sum of the points' levels)
//! 56      u64                  dimension d of the vectors
//! 64      n x u8               level of each point, padded to 8 bytes
//! ..      (n + 1) x u32        first upper list of each point, padded to 64 bytes
//! ..      n x R bytes          layer-0 records: the point's vector (d x f32, as
//!                              indexed: normalised for cosine), its list (count,
//!                              then m0 slots, u32), zeros up to R = (d + 1 + m0) x 4
//!                              rounded up to 64
//! ..      B x (1 + m) x u32    upper lists: point p's list at layer l >= 1 is
//!                              number first[p] + l - 1
//! ..      n x f32              squared L2 norm of each vector
//! ```

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use dredge_core::{DocId, Hit, write_file};
use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::similarity::Similarity;
use crate::store::VectorStore;

mod build;

const MAGIC: &[u8; 8] = b"DRHNSW\0\x03";
const HEADER: usize = 64;
/// Layers a graph may have (levels 0 to 15; a level above 15 has odds `M^-16`).
const MAX_LAYERS: usize = 16;
/// Bytes a layer-0 record is rounded up to (a cache line, so that vectors start on
/// one).
const RECORD_ALIGN: usize = 64;

/// Parameters of an HNSW graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HnswParams {
    /// Links per point above layer 0 (`M`); layer 0 keeps `2 M`. 2 to 255.
    pub m: usize,
    /// Candidate list size while inserting (`ef_construction`); at least `m`.
    pub ef_construction: usize,
    /// Seeds the order in which points are inserted and the points' levels.
    ///
    /// Insertion runs on the current rayon pool. A build on one thread is
    /// reproducible byte for byte (same vectors, parameters and seed); a parallel
    /// build is not, because threads interleave their inserts.
    pub seed: u64,
}

impl Default for HnswParams {
    /// `M = 16`, `ef_construction = 200`, seed 0.
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            seed: 0,
        }
    }
}

impl HnswParams {
    pub(crate) fn check(&self) -> Result<()> {
        if !(2..=255).contains(&self.m) {
            return Err(Error::Parameter(format!(
                "HNSW M must be between 2 and 255, got {}",
                self.m
            )));
        }
        if self.ef_construction < self.m {
            return Err(Error::Parameter(format!(
                "HNSW ef_construction ({}) must be at least M ({})",
                self.ef_construction, self.m
            )));
        }
        Ok(())
    }
}

/// A graph in memory, as written to `hnsw.bin`.
#[derive(Debug, PartialEq)]
pub(crate) struct GraphData {
    m: usize,
    m0: usize,
    top: usize,
    entry: u32,
    levels: Vec<u8>,
    first_upper: Vec<u32>,
    level0: Vec<u32>,
    upper: Vec<u32>,
}

/// A splitmix64 permutation of `0..n` (Fisher-Yates).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Builds the graph of the rows of `data` (`n x dim`, as they will be stored) on
/// the current rayon pool.
pub(crate) fn build(
    data: &[f32],
    dim: usize,
    similarity: Similarity,
    params: &HnswParams,
) -> Result<GraphData> {
    params.check()?;
    let n = data.len() / dim.max(1);
    if n == 0 {
        return Err(Error::Parameter(
            "an HNSW graph needs at least one vector".into(),
        ));
    }
    if n > u32::MAX as usize {
        return Err(Error::Parameter(format!(
            "{n} rows are more than HNSW point ids (u32) can hold"
        )));
    }
    Ok(build::build(data, dim, similarity, params))
}

fn pad8(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// Where the layer-0 records of a graph of `n` points start: after the header, the
/// levels and the first-upper-list table, on a record boundary.
fn level0_offset(n: usize) -> usize {
    (HEADER + pad8(n) + (n + 1) * 4).div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The `u32` words of a layer-0 record of a `dim`-dimensional point with `m0` slots.
fn record_words(dim: usize, m0: usize) -> usize {
    (dim + 1 + m0).div_ceil(RECORD_ALIGN / 4) * (RECORD_ALIGN / 4)
}

impl GraphData {
    /// Writes the graph to `path`, atomically, with each point's row of `data`
    /// (`n x dim`, as indexed) next to its layer-0 list, and the rows' squared norms.
    pub(crate) fn write(&self, path: &Path, data: &[f32], dim: usize) -> Result<()> {
        let n = self.levels.len();
        debug_assert_eq!(data.len(), n * dim);
        let io = |e| dredge_core::Error::io(path, e);
        write_file(path, |f| {
            let mut header = [0u8; HEADER];
            header[..8].copy_from_slice(MAGIC);
            let blocks = *self.first_upper.last().expect("n + 1 entries") as usize;
            for (i, v) in [
                n,
                self.m,
                self.m0,
                self.top,
                self.entry as usize,
                blocks,
                dim,
            ]
            .into_iter()
            .enumerate()
            {
                header[8 + 8 * i..16 + 8 * i].copy_from_slice(&(v as u64).to_le_bytes());
            }
            f.write_all(&header).map_err(io)?;
            f.write_all(&self.levels).map_err(io)?;
            f.write_all(&vec![0u8; pad8(n) - n]).map_err(io)?;
            let first: &[u8] = bytemuck::cast_slice(&self.first_upper);
            f.write_all(first).map_err(io)?;
            f.write_all(&vec![
                0u8;
                level0_offset(n) - (HEADER + pad8(n) + first.len())
            ])
            .map_err(io)?;
            let words = record_words(dim, self.m0);
            let mut record = vec![0u32; words];
            for (row, list) in data
                .chunks_exact(dim)
                .zip(self.level0.chunks_exact(1 + self.m0))
            {
                record[..dim].copy_from_slice(bytemuck::cast_slice(row));
                record[dim..dim + 1 + self.m0].copy_from_slice(list);
                f.write_all(bytemuck::cast_slice(&record)).map_err(io)?;
            }
            f.write_all(bytemuck::cast_slice(&self.upper)).map_err(io)?;
            f.write_all(bytemuck::cast_slice(&crate::store::sq_norms_of(data, dim)))
                .map_err(io)
        })?;
        Ok(())
    }
}

/// A memory-mapped graph, checked when opened so that search never leaves it.
#[derive(Debug)]
pub(crate) struct Graph {
    map: Mmap,
    n: usize,
    m: usize,
    m0: usize,
    dim: usize,
    /// `u32` words per layer-0 record.
    record: usize,
    top: usize,
    entry: u32,
    first_upper_at: usize,
    level0_at: usize,
    upper_at: usize,
    upper_len: usize,
    norms_at: usize,
}

impl Graph {
    /// Maps and checks `hnsw.bin` for an index of `rows` points of dimension `dim`.
    pub(crate) fn open(path: &Path, rows: usize, dim: usize) -> Result<Self> {
        let what = "dredge HNSW graph";
        let map = crate::store::map_file(path, MAGIC, HEADER, what)?;
        let bad = |m: String| Error::format(path, format!("not a {what}: {m}"));
        let word =
            |i: usize| u64::from_le_bytes(map[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
        let [n, m, m0, top, entry, blocks, d] = [0, 1, 2, 3, 4, 5, 6].map(word);
        if n != rows as u64 || d != dim as u64 {
            return Err(Error::format(
                path,
                format!("holds {n} x {d} vectors, the manifest says {rows} x {dim}"),
            ));
        }
        if !(1..=256).contains(&m)
            || !(1..=512).contains(&m0)
            || top >= MAX_LAYERS as u64
            || entry >= n.max(1)
        {
            return Err(bad(format!(
                "impossible header (m {m}, m0 {m0}, top layer {top}, entry {entry})"
            )));
        }
        let (n, m, m0, top) = (n as usize, m as usize, m0 as usize, top as usize);
        let size = |parts: &[Option<u64>]| parts.iter().try_fold(0u64, |a, p| a.checked_add((*p)?));
        let blocks_len = blocks.checked_mul(1 + m as u64);
        let record = record_words(dim, m0);
        let level0_at = level0_offset(n);
        let expected = size(&[
            Some(level0_at as u64),
            (n as u64).checked_mul(record as u64 * 4),
            blocks_len.and_then(|b| b.checked_mul(4)),
            Some(n as u64 * 4),
        ])
        .ok_or_else(|| bad(format!("impossible size ({blocks} upper lists)")))?;
        if map.len() as u64 != expected {
            return Err(bad(format!(
                "{n} points need {expected} bytes, the file has {} (truncated or corrupted)",
                map.len()
            )));
        }
        let first_upper_at = HEADER + pad8(n);
        let upper_at = level0_at + n * record * 4;
        let upper_len = blocks as usize * (1 + m);
        let graph = Graph {
            map,
            n,
            m,
            m0,
            dim,
            record,
            top,
            entry: entry as u32,
            first_upper_at,
            level0_at,
            upper_at,
            upper_len,
            norms_at: upper_at + upper_len * 4,
        };
        graph.check().map_err(bad)?;
        Ok(graph)
    }

    fn levels(&self) -> &[u8] {
        &self.map[HEADER..HEADER + self.n]
    }

    fn first_upper(&self) -> &[u32] {
        bytemuck::cast_slice(&self.map[self.first_upper_at..self.first_upper_at + (self.n + 1) * 4])
    }

    /// The index's rows, read in place from the layer-0 records of the graph file
    /// at `path` (mapped again: the store and the graph each hold a mapping).
    /// `normalized` says whether they were normalised for cosine.
    pub(crate) fn vector_store(&self, path: &Path, normalized: bool) -> Result<VectorStore> {
        let map = crate::store::map_file(path, MAGIC, HEADER, "dredge HNSW graph")?;
        if map.len() != self.map.len() {
            return Err(Error::format(path, "changed while the index was opened"));
        }
        Ok(VectorStore::strided(
            map,
            self.n,
            self.dim,
            normalized,
            (self.level0_at / 4, self.record, self.norms_at / 4),
        ))
    }

    /// The layer-0 records, `record` words each.
    fn level0(&self) -> &[u32] {
        bytemuck::cast_slice(&self.map[self.level0_at..self.upper_at])
    }

    fn upper(&self) -> &[u32] {
        bytemuck::cast_slice(&self.map[self.upper_at..self.upper_at + self.upper_len * 4])
    }

    /// Checks every invariant search relies on: levels and list offsets agree,
    /// counts fit their slots, and every neighbour is a point of its layer.
    fn check(&self) -> std::result::Result<(), String> {
        let (levels, first) = (self.levels(), self.first_upper());
        if levels.get(self.entry as usize).map(|&l| l as usize) != Some(self.top) {
            return Err(format!(
                "entry point {} is not on the top layer {}",
                self.entry, self.top
            ));
        }
        if first[0] != 0 {
            return Err("upper list offsets do not start at 0".into());
        }
        for p in 0..self.n {
            if levels[p] as usize > self.top {
                return Err(format!(
                    "point {p} has level {} above the top layer {}",
                    levels[p], self.top
                ));
            }
            if first[p + 1].checked_sub(first[p]) != Some(u32::from(levels[p])) {
                return Err(format!(
                    "upper list offsets of point {p} do not match its level"
                ));
            }
        }
        if first[self.n] as usize * (1 + self.m) != self.upper_len {
            return Err("upper list count does not match the header".into());
        }
        for p in 0..self.n {
            for layer in 0..=levels[p] as usize {
                let (count, cap) = self.raw_list(p as u32, layer);
                if count as usize > cap {
                    return Err(format!(
                        "point {p} lists {count} neighbours at layer {layer}, more than {cap}"
                    ));
                }
                for &nb in self.neighbours(p as u32, layer) {
                    if nb as usize >= self.n || (levels[nb as usize] as usize) < layer {
                        return Err(format!(
                            "point {p} links to {nb}, not a point of layer {layer}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Where the list of `point` at `layer` is: the words that hold it, the position
    /// of its count word among them, and its slot capacity.
    #[inline]
    fn list_at(&self, point: u32, layer: usize) -> (&[u32], usize, usize) {
        if layer == 0 {
            (
                self.level0(),
                point as usize * self.record + self.dim,
                self.m0,
            )
        } else {
            let block = self.first_upper()[point as usize] as usize + layer - 1;
            (self.upper(), block * (1 + self.m), self.m)
        }
    }

    /// The count word and slot capacity of a list.
    fn raw_list(&self, point: u32, layer: usize) -> (u32, usize) {
        let (words, at, slots) = self.list_at(point, layer);
        (words[at], slots)
    }

    /// The neighbours of `point` at `layer` (the point must be on that layer).
    #[inline]
    fn neighbours(&self, point: u32, layer: usize) -> &[u32] {
        let (list, start, slots) = self.list_at(point, layer);
        let count = (list[start] as usize).min(slots);
        &list[start + 1..start + 1 + count]
    }

    /// The vector of `point`, from its layer-0 record.
    #[inline]
    pub(crate) fn vector(&self, point: u32) -> &[f32] {
        let start = point as usize * self.record;
        bytemuck::cast_slice(&self.level0()[start..start + self.dim])
    }

    /// Layered greedy search (Malkov & Yashunin, algorithms 2 and 5) for the `k`
    /// points whose vectors have the smallest `distance`, exploring `ef` candidates
    /// on layer 0.
    ///
    /// Prefetching follows hnswlib: while a neighbour is compared, the next one's
    /// visited entry and the first line of its record are asked for, and each new
    /// candidate asks for the list of the candidate to be expanded next.
    pub(crate) fn search<F>(
        &self,
        distance: F,
        k: usize,
        ef: usize,
        scratch: &mut Scratch,
    ) -> Vec<Hit>
    where
        F: Fn(&[f32]) -> f32,
    {
        let ef = ef.max(k).max(1);
        let mut ep = self.entry;
        let mut ep_dist = distance(self.vector(ep));
        for layer in (1..=self.top).rev() {
            let mut changed = true;
            while changed {
                changed = false;
                for &nb in self.neighbours(ep, layer) {
                    let d = distance(self.vector(nb));
                    if d < ep_dist {
                        ep_dist = d;
                        ep = nb;
                        changed = true;
                    }
                }
            }
        }
        scratch.start(self.n);
        let Scratch {
            visited,
            tag,
            candidates,
            results,
        } = scratch;
        let tag = *tag;
        visited[ep as usize] = tag;
        candidates.push(Reverse(Cand {
            dist: ep_dist,
            point: ep,
        }));
        results.push(Cand {
            dist: ep_dist,
            point: ep,
        });
        let mut bound = ep_dist;
        let ahead = |point: u32, visited: &[u16]| {
            prefetch(&visited[point as usize..=point as usize]);
            prefetch(&self.vector(point)[..1]);
        };
        while let Some(Reverse(c)) = candidates.pop() {
            if c.dist > bound {
                break;
            }
            let list = self.neighbours(c.point, 0);
            if let Some(&first) = list.first() {
                ahead(first, visited);
            }
            for (i, &nb) in list.iter().enumerate() {
                if let Some(&next) = list.get(i + 1) {
                    ahead(next, visited);
                }
                let seen = &mut visited[nb as usize];
                if *seen == tag {
                    continue;
                }
                *seen = tag;
                let d = distance(self.vector(nb));
                if results.len() < ef || d < bound {
                    candidates.push(Reverse(Cand { dist: d, point: nb }));
                    if let Some(Reverse(top)) = candidates.peek() {
                        let (words, at, _) = self.list_at(top.point, 0);
                        prefetch(&words[at..=at]);
                    }
                    results.push(Cand { dist: d, point: nb });
                    if results.len() > ef {
                        results.pop();
                    }
                    bound = results.peek().map_or(d, |w| w.dist);
                }
            }
        }
        candidates.clear();
        let mut found: Vec<Cand> = results.drain().collect();
        found.sort_unstable();
        found.truncate(k);
        found
            .into_iter()
            .map(|c| Hit {
                doc: DocId(c.point),
                score: -c.dist,
            })
            .collect()
    }
}

/// Asks for the cache lines of `data` to be loaded (a hint; never faults).
#[inline]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        for line in data.chunks((64 / size_of::<T>()).max(1)) {
            // SAFETY: prefetching is a hint that never faults; SSE is part of x86-64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// A candidate: distance (lower is closer) and point, ordered by distance then
/// point id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cand {
    dist: f32,
    point: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.point.cmp(&other.point))
    }
}

/// Per-search buffers, reused across queries: a visited table stamped with a
/// generation tag (cleared only when the tag wraps), and the two heaps.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    visited: Vec<u16>,
    tag: u16,
    candidates: BinaryHeap<Reverse<Cand>>,
    results: BinaryHeap<Cand>,
}

impl Scratch {
    fn start(&mut self, n: usize) {
        if self.visited.len() != n {
            self.visited = vec![0; n];
            self.tag = 0;
        }
        self.tag = self.tag.wrapping_add(1);
        if self.tag == 0 {
            self.visited.fill(0);
            self.tag = 1;
        }
        self.candidates.clear();
        self.results.clear();
    }
}

/// A pool of [`Scratch`] buffers shared by the threads searching one index.
#[derive(Debug, Default)]
pub(crate) struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    /// Runs `f` with a scratch buffer from the pool.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        let mut scratch = self
            .free
            .lock()
            .map(|mut v| v.pop())
            .unwrap_or(None)
            .unwrap_or_default();
        let out = f(&mut scratch);
        if let Ok(mut free) = self.free.lock() {
            free.push(scratch);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_seeded_shuffle() {
        let a = permutation(1000, 7);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, permutation(1000, 7));
        assert_ne!(a, permutation(1000, 8));
    }

    #[test]
    fn records_hold_each_vector_next_to_its_list() {
        // Dimensions around the 64-byte record boundary, and one far from it.
        for dim in [3, 15, 16, 17, 47] {
            let n = 200;
            let data: Vec<f32> = (0..n * dim)
                .map(|i| ((i * 37) % 101) as f32 - 50.0)
                .collect();
            let params = HnswParams {
                m: 4,
                ef_construction: 16,
                seed: 1,
            };
            let built = build(&data, dim, Similarity::L2, &params).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hnsw.bin");
            built.write(&path, &data, dim).unwrap();
            let graph = Graph::open(&path, n, dim).unwrap();
            assert_eq!(graph.level0_at % RECORD_ALIGN, 0);
            assert_eq!((graph.record * 4) % RECORD_ALIGN, 0);
            for p in 0..n {
                assert_eq!(graph.vector(p as u32), &data[p * dim..(p + 1) * dim]);
                let list = &built.level0[p * (1 + built.m0)..(p + 1) * (1 + built.m0)];
                assert_eq!(
                    graph.neighbours(p as u32, 0),
                    &list[1..1 + list[0] as usize]
                );
            }
            let err = Graph::open(&path, n, dim + 1).unwrap_err().to_string();
            assert!(
                err.contains(&format!("the manifest says {n} x {}", dim + 1)),
                "{err}"
            );
            let store = graph.vector_store(&path, false).unwrap();
            for p in 0..n {
                let row = &data[p * dim..(p + 1) * dim];
                assert_eq!(store.row(DocId(p as u32)), row);
                assert_eq!(store.sq_norms()[p], crate::kernels::sq_norm(row));
            }
        }
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let err = HnswParams {
            m: 1,
            ..HnswParams::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("between 2 and 255"), "{err}");
        let err = HnswParams {
            m: 32,
            ef_construction: 16,
            seed: 0,
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("at least M"), "{err}");
    }
}
