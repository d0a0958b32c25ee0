//! HNSW: dredge builds the graph itself (hnswlib's algorithm, in [`build`]) straight
//! into flat `u32` neighbour lists, writes them to a compact file, and searches the
//! memory-mapped file with its own layered greedy search, a reused visited table
//! and the same SIMD kernels as exact search.
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
//! 0       8                    magic "DRHNSW\0" + format version (1)
//! 8       u64                  points n
//! 16      u64                  m: list capacity above layer 0
//! 24      u64                  m0: list capacity at layer 0 (2 m)
//! 32      u64                  top layer L
//! 40      u64                  entry point (a point of layer L)
//! 48      u64                  upper lists B (sum of the points' levels)
//! 56      8                    reserved (zero)
//! 64      n x u8               level of each point, padded to 8 bytes
//! ..      (n + 1) x u32        first upper list of each point, padded to 8 bytes
//! ..      n x (1 + m0) x u32   layer-0 lists: count, then m0 slots
//! ..      B x (1 + m) x u32    upper lists: point p's list at layer l >= 1 is
//!                              number first[p] + l - 1
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

mod build;

const MAGIC: &[u8; 8] = b"DRHNSW\0\x01";
const HEADER: usize = 64;
/// Layers a graph may have (levels 0 to 15; a level above 15 has odds `M^-16`).
const MAX_LAYERS: usize = 16;
/// How many neighbours ahead search prefetches vectors.
const PREFETCH_AHEAD: usize = 1;

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

impl GraphData {
    /// Writes the graph to `path`, atomically.
    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let n = self.levels.len();
        let io = |e| dredge_core::Error::io(path, e);
        write_file(path, |f| {
            let mut header = [0u8; HEADER];
            header[..8].copy_from_slice(MAGIC);
            let blocks = *self.first_upper.last().expect("n + 1 entries") as usize;
            for (i, v) in [n, self.m, self.m0, self.top, self.entry as usize, blocks]
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
            f.write_all(&vec![0u8; pad8(first.len()) - first.len()])
                .map_err(io)?;
            f.write_all(bytemuck::cast_slice(&self.level0))
                .map_err(io)?;
            f.write_all(bytemuck::cast_slice(&self.upper)).map_err(io)
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
    top: usize,
    entry: u32,
    first_upper_at: usize,
    level0_at: usize,
    upper_at: usize,
    upper_len: usize,
}

impl Graph {
    /// Maps and checks `hnsw.bin` for a store of `rows` points.
    pub(crate) fn open(path: &Path, rows: usize) -> Result<Self> {
        let what = "dredge HNSW graph";
        let map = crate::store::map_file(path, MAGIC, HEADER, what)?;
        let bad = |m: String| Error::format(path, format!("not a {what}: {m}"));
        let word =
            |i: usize| u64::from_le_bytes(map[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
        let [n, m, m0, top, entry, blocks] = [0, 1, 2, 3, 4, 5].map(word);
        if n != rows as u64 {
            return Err(bad(format!(
                "{n} points, but the vector store has {rows} rows"
            )));
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
        let expected = size(&[
            Some(HEADER as u64),
            Some(pad8(n) as u64),
            Some(pad8((n + 1) * 4) as u64),
            Some((n * (1 + m0) * 4) as u64),
            blocks_len.and_then(|b| b.checked_mul(4)),
        ])
        .ok_or_else(|| bad(format!("impossible size ({blocks} upper lists)")))?;
        if map.len() as u64 != expected {
            return Err(bad(format!(
                "{n} points need {expected} bytes, the file has {} (truncated or corrupted)",
                map.len()
            )));
        }
        let first_upper_at = HEADER + pad8(n);
        let level0_at = first_upper_at + pad8((n + 1) * 4);
        let upper_at = level0_at + n * (1 + m0) * 4;
        let graph = Graph {
            map,
            n,
            m,
            m0,
            top,
            entry: entry as u32,
            first_upper_at,
            level0_at,
            upper_at,
            upper_len: blocks as usize * (1 + m),
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

    /// The count word and slot capacity of a list.
    fn raw_list(&self, point: u32, layer: usize) -> (u32, usize) {
        if layer == 0 {
            (self.level0()[point as usize * (1 + self.m0)], self.m0)
        } else {
            let block = self.first_upper()[point as usize] as usize + layer - 1;
            (self.upper()[block * (1 + self.m)], self.m)
        }
    }

    /// The neighbours of `point` at `layer` (the point must be on that layer).
    #[inline]
    fn neighbours(&self, point: u32, layer: usize) -> &[u32] {
        let (list, stride) = if layer == 0 {
            (self.level0(), 1 + self.m0)
        } else {
            (self.upper(), 1 + self.m)
        };
        let start = if layer == 0 {
            point as usize * stride
        } else {
            (self.first_upper()[point as usize] as usize + layer - 1) * stride
        };
        let count = (list[start] as usize).min(stride - 1);
        &list[start + 1..start + 1 + count]
    }

    /// Layered greedy search (Malkov & Yashunin, algorithms 2 and 5) for the `k`
    /// points of smallest `distance`, exploring `ef` candidates on layer 0.
    /// `prefetch_point` asks for a point's vector to be brought into cache.
    pub(crate) fn search<F, P>(
        &self,
        distance: F,
        prefetch_point: P,
        k: usize,
        ef: usize,
        scratch: &mut Scratch,
    ) -> Vec<Hit>
    where
        F: Fn(u32) -> f32,
        P: Fn(u32),
    {
        let ef = ef.max(k).max(1);
        let mut ep = self.entry;
        let mut ep_dist = distance(ep);
        for layer in (1..=self.top).rev() {
            let mut changed = true;
            while changed {
                changed = false;
                for &nb in self.neighbours(ep, layer) {
                    let d = distance(nb);
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
        // Filled anew for every candidate (a list holds at most 511 neighbours).
        let mut fresh = [0u32; 512];
        while let Some(Reverse(c)) = candidates.pop() {
            if c.dist > bound {
                break;
            }
            // Mark the unvisited neighbours first, then compute their distances
            // with the next rows prefetched while the current one is compared.
            let mut count = 0;
            for &nb in self.neighbours(c.point, 0) {
                let seen = &mut visited[nb as usize];
                if *seen != tag {
                    *seen = tag;
                    fresh[count] = nb;
                    count += 1;
                }
            }
            let new = &fresh[..count];
            for &nb in new.iter().take(PREFETCH_AHEAD) {
                prefetch_point(nb);
            }
            for (i, &nb) in new.iter().enumerate() {
                if let Some(&next) = new.get(i + PREFETCH_AHEAD) {
                    prefetch_point(next);
                }
                let d = distance(nb);
                if results.len() < ef || d < bound {
                    candidates.push(Reverse(Cand { dist: d, point: nb }));
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
pub(crate) fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        for line in data.chunks(16) {
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
