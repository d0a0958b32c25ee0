//! HNSW construction, following hnswlib's `hnswalg.h`, written straight into the
//! flat neighbour lists that [`GraphData`] stores and search walks.
//!
//! - Levels: point `p` gets `floor(-ln(u) / ln(M))` (at most 15) with `u` uniform
//!   in `(0, 1]`, drawn for every point before any insert from a splitmix64 stream
//!   seeded with [`HnswParams::seed`]. Knowing the levels up front is what lets the
//!   lists be laid out in their final place: layer 0 holds `2 M` slots per point,
//!   layers above `M`.
//! - Insert (hnswlib's `addPoint`): greedy descent from the entry point down to the
//!   point's level, then on each layer from there to 0 a beam search with
//!   `ef_construction` candidates (`searchBaseLayer`), the neighbour-selection
//!   heuristic (`getNeighborsByHeuristic2`) keeping at most `M` of them, and links
//!   back from each chosen neighbour; a full list is shrunk with the same heuristic
//!   to its capacity (`M`, or `2 M` on layer 0).
//! - Parallel insert on the current rayon pool. Each point's lists are guarded by
//!   its own lock while written; readers copy a list out without a lock (its words
//!   are atomics, so a reader racing a shrink may see a mix of the old and the new
//!   list, all of them points of that layer, as hnswlib's readers may). No lock is
//!   held while another is taken, so inserts cannot deadlock. Unlike hnswlib, a
//!   point's own lists are all written before any neighbour links back to it, so no
//!   insert can reach a point whose lower lists are still empty. A point whose level
//!   is above the current top holds the entry-point lock for its whole insert, as
//!   in hnswlib. Each worker reuses one visited table and its heaps.
//!
//! Reproducibility: the insertion order (a seeded permutation) and the levels
//! depend only on the seed, so a build on one thread gives the same graph byte for
//! byte. With several threads the inserts interleave differently from run to run,
//! and so do the candidate lists each insert sees: the graph differs between runs,
//! as hnswlib's and hnsw_rs's parallel builds do.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use rayon::prelude::*;

use super::{Cand, GraphData, HnswParams, MAX_LAYERS, Scratch, ScratchPool, permutation};
use crate::kernels;
use crate::similarity::Similarity;

/// Points per parallel work item: one scratch buffer is taken from the pool for each.
const CHUNK: usize = 64;

/// A splitmix64 stream.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`.
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// The level of every point: hnswlib's `getRandomLevel` with `mult = 1 / ln M`.
fn draw_levels(n: usize, m: usize, seed: u64) -> Vec<u8> {
    let mult = 1.0 / (m as f64).ln();
    // A stream of its own, apart from the permutation's.
    let mut rng = SplitMix(seed ^ 0xD1B5_4A32_D192_ED03);
    (0..n)
        .map(|_| ((-rng.unit().ln() * mult) as usize).min(MAX_LAYERS - 1) as u8)
        .collect()
}

/// The entry point and the top layer, once the first point is in.
#[derive(Clone, Copy)]
struct Entry {
    point: u32,
    top: usize,
}

/// The graph while it is built: the flat lists of [`GraphData`] as atomics, one
/// lock per point, and the entry point.
struct Builder<'a> {
    data: &'a [f32],
    dim: usize,
    m: usize,
    m0: usize,
    ef_construction: usize,
    levels: Vec<u8>,
    first_upper: Vec<u32>,
    level0: Vec<AtomicU32>,
    upper: Vec<AtomicU32>,
    locks: Vec<Mutex<()>>,
    entry: Mutex<Option<Entry>>,
    kern: &'static kernels::Kernels,
    /// Squared L2 distance, else the negated inner product (rows of cosine
    /// indexes are stored normalised).
    l2: bool,
}

/// Locks a mutex that guards no data of its own: a poisoned lock (a panicking
/// insert elsewhere) is still a lock.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<'a> Builder<'a> {
    fn new(data: &'a [f32], dim: usize, similarity: Similarity, params: &HnswParams) -> Self {
        let n = data.len() / dim;
        let (m, m0) = (params.m, 2 * params.m);
        let levels = draw_levels(n, m, params.seed);
        let mut first_upper = Vec::with_capacity(n + 1);
        let mut blocks = 0u32;
        for &l in &levels {
            first_upper.push(blocks);
            blocks += u32::from(l);
        }
        first_upper.push(blocks);
        let atomics = |len: usize| (0..len).map(|_| AtomicU32::new(0)).collect::<Vec<_>>();
        Builder {
            data,
            dim,
            m,
            m0,
            ef_construction: params.ef_construction,
            levels,
            first_upper,
            level0: atomics(n * (1 + m0)),
            upper: atomics(blocks as usize * (1 + m)),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            entry: Mutex::new(None),
            kern: kernels::kernels(),
            l2: similarity == Similarity::L2,
        }
    }

    #[inline]
    fn row(&self, p: u32) -> &[f32] {
        &self.data[p as usize * self.dim..(p as usize + 1) * self.dim]
    }

    #[inline]
    fn distance(&self, q: &[f32], p: u32) -> f32 {
        if self.l2 {
            (self.kern.l2sq)(q, self.row(p))
        } else {
            -(self.kern.dot)(q, self.row(p))
        }
    }

    /// The words of `point`'s list at `layer`: count, then the slots.
    #[inline]
    fn slot(&self, point: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let s = 1 + self.m0;
            &self.level0[point as usize * s..(point as usize + 1) * s]
        } else {
            let s = 1 + self.m;
            let block = self.first_upper[point as usize] as usize + layer - 1;
            &self.upper[block * s..(block + 1) * s]
        }
    }

    /// Copies `point`'s list at `layer` into `out` and returns its length.
    #[inline]
    fn read(&self, point: u32, layer: usize, out: &mut [u32; 512]) -> usize {
        let slot = self.slot(point, layer);
        let count = (slot[0].load(AtomicOrdering::Acquire) as usize).min(slot.len() - 1);
        for (o, s) in out.iter_mut().zip(&slot[1..=count]) {
            *o = s.load(AtomicOrdering::Relaxed);
        }
        count
    }

    /// Replaces `point`'s list at `layer`; the caller holds the point's lock.
    fn write(&self, point: u32, layer: usize, list: impl ExactSizeIterator<Item = u32>) {
        let slot = self.slot(point, layer);
        let count = list.len().min(slot.len() - 1);
        for (s, p) in slot[1..].iter().zip(list) {
            s.store(p, AtomicOrdering::Relaxed);
        }
        slot[0].store(count as u32, AtomicOrdering::Release);
    }

    /// Greedy walk on `layer` from `ep` towards `q` (one closest point kept).
    fn greedy(&self, q: &[f32], mut ep: Cand, layer: usize, buf: &mut [u32; 512]) -> Cand {
        let mut changed = true;
        while changed {
            changed = false;
            let count = self.read(ep.point, layer, buf);
            for &nb in &buf[..count] {
                let d = self.distance(q, nb);
                if d < ep.dist {
                    ep = Cand { dist: d, point: nb };
                    changed = true;
                }
            }
        }
        ep
    }

    /// hnswlib's `searchBaseLayer`: the `ef_construction` closest points to `q` on
    /// `layer` found from `ep`, in `scratch.results` (a max-heap).
    fn search_layer(&self, q: &[f32], ep: Cand, layer: usize, scratch: &mut Scratch) {
        let ef = self.ef_construction;
        scratch.start(self.levels.len());
        let Scratch {
            visited,
            tag,
            candidates,
            results,
        } = scratch;
        let tag = *tag;
        visited[ep.point as usize] = tag;
        candidates.push(std::cmp::Reverse(ep));
        results.push(ep);
        let mut bound = ep.dist;
        let mut buf = [0u32; 512];
        while let Some(std::cmp::Reverse(c)) = candidates.pop() {
            if c.dist > bound && results.len() >= ef {
                break;
            }
            let count = self.read(c.point, layer, &mut buf);
            let mut fresh = 0;
            for i in 0..count {
                let nb = buf[i];
                let seen = &mut visited[nb as usize];
                if *seen != tag {
                    *seen = tag;
                    buf[fresh] = nb;
                    fresh += 1;
                }
            }
            if fresh > 0 {
                super::prefetch(self.row(buf[0]));
            }
            for i in 0..fresh {
                if i + 1 < fresh {
                    super::prefetch(self.row(buf[i + 1]));
                }
                let nb = buf[i];
                let d = self.distance(q, nb);
                if results.len() < ef || d < bound {
                    candidates.push(std::cmp::Reverse(Cand { dist: d, point: nb }));
                    results.push(Cand { dist: d, point: nb });
                    if results.len() > ef {
                        results.pop();
                    }
                    bound = results.peek().map_or(d, |w| w.dist);
                }
            }
        }
        candidates.clear();
    }

    /// hnswlib's `getNeighborsByHeuristic2`: from `sorted` (closest first), keeps
    /// a candidate only when it is closer to the query than to every candidate kept
    /// before it, up to `max` of them; `sorted` is truncated to those kept.
    fn select(&self, sorted: &mut Vec<Cand>, max: usize) {
        if sorted.len() <= max {
            return;
        }
        let mut kept = 0;
        for i in 0..sorted.len() {
            if kept >= max {
                break;
            }
            let c = sorted[i];
            let row = self.row(c.point);
            let good = sorted[..kept]
                .iter()
                .all(|k| self.distance(row, k.point) >= c.dist);
            if good {
                sorted[kept] = c;
                kept += 1;
            }
        }
        sorted.truncate(kept);
    }

    /// Links `point` into the graph (hnswlib's `addPoint`).
    fn insert(&self, point: u32, scratch: &mut Scratch, selected: &mut Vec<Vec<Cand>>) {
        let level = usize::from(self.levels[point as usize]);
        let q = self.row(point);
        // Hold the entry lock throughout only when this point becomes the new top.
        let mut entry_guard = lock(&self.entry);
        let Some(entry) = *entry_guard else {
            *entry_guard = Some(Entry { point, top: level });
            return;
        };
        let raises_top = level > entry.top;
        let held = if raises_top {
            Some(entry_guard)
        } else {
            drop(entry_guard);
            None
        };
        let mut buf = [0u32; 512];
        let mut ep = Cand {
            dist: self.distance(q, entry.point),
            point: entry.point,
        };
        for layer in (level + 1..=entry.top).rev() {
            ep = self.greedy(q, ep, layer, &mut buf);
        }
        let lowest = level.min(entry.top);
        selected.resize_with(lowest + 1, Vec::new);
        // Own lists first, every layer, so that the point is whole once reachable.
        for layer in (0..=lowest).rev() {
            self.search_layer(q, ep, layer, scratch);
            let chosen = &mut selected[layer];
            chosen.clear();
            chosen.extend(scratch.results.drain());
            chosen.sort_unstable();
            self.select(chosen, self.m);
            ep = chosen[0];
            let _own = lock(&self.locks[point as usize]);
            self.write(point, layer, chosen.iter().map(|c| c.point));
        }
        // Then the links back, shrinking full lists with the heuristic.
        let mut pool = Vec::with_capacity(self.m0 + 1);
        for (layer, chosen) in selected.iter().enumerate().take(lowest + 1) {
            let cap = if layer == 0 { self.m0 } else { self.m };
            for c in chosen {
                let _guard = lock(&self.locks[c.point as usize]);
                let count = self.read(c.point, layer, &mut buf);
                if buf[..count].contains(&point) {
                    continue;
                }
                if count < cap {
                    let slot = self.slot(c.point, layer);
                    slot[1 + count].store(point, AtomicOrdering::Relaxed);
                    slot[0].store(count as u32 + 1, AtomicOrdering::Release);
                    continue;
                }
                let row = self.row(c.point);
                pool.clear();
                pool.push(Cand {
                    dist: c.dist,
                    point,
                });
                pool.extend(buf[..count].iter().map(|&nb| Cand {
                    dist: self.distance(row, nb),
                    point: nb,
                }));
                pool.sort_unstable();
                self.select(&mut pool, cap);
                self.write(c.point, layer, pool.iter().map(|c| c.point));
            }
        }
        if let Some(mut guard) = held {
            *guard = Some(Entry { point, top: level });
        }
    }

    fn finish(self) -> GraphData {
        let entry = lock(&self.entry).unwrap_or(Entry { point: 0, top: 0 });
        let plain = |v: Vec<AtomicU32>| v.into_iter().map(AtomicU32::into_inner).collect();
        GraphData {
            m: self.m,
            m0: self.m0,
            top: entry.top,
            entry: entry.point,
            levels: self.levels,
            first_upper: self.first_upper,
            level0: plain(self.level0),
            upper: plain(self.upper),
        }
    }
}

/// Builds the graph of the `n x dim` rows of `data` (as they are stored) on the
/// current rayon pool. `params` must have been checked.
pub(super) fn build(
    data: &[f32],
    dim: usize,
    similarity: Similarity,
    params: &HnswParams,
) -> GraphData {
    let n = data.len() / dim;
    let builder = Builder::new(data, dim, similarity, params);
    let order: Vec<u32> = permutation(n, params.seed)
        .into_iter()
        .map(|p| p as u32)
        .collect();
    if rayon::current_num_threads() <= 1 {
        let (mut scratch, mut selected) = (Scratch::default(), Vec::new());
        for &p in &order {
            builder.insert(p, &mut scratch, &mut selected);
        }
    } else {
        let pool = ScratchPool::default();
        let selected_pool: Mutex<Vec<Vec<Vec<Cand>>>> = Mutex::new(Vec::new());
        order.par_chunks(CHUNK).for_each(|chunk| {
            let mut selected = lock(&selected_pool).pop().unwrap_or_default();
            pool.with(|scratch| {
                for &p in chunk {
                    builder.insert(p, scratch, &mut selected);
                }
            });
            lock(&selected_pool).push(selected);
        });
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_geometric_law() {
        let levels = draw_levels(100_000, 16, 3);
        assert_eq!(levels, draw_levels(100_000, 16, 3));
        let above = |l: u8| levels.iter().filter(|&&x| x >= l).count() as f64 / 1e5;
        // P(level >= l) = M^-l.
        assert!((above(1) - 1.0 / 16.0).abs() < 0.005, "{}", above(1));
        assert!((above(2) - 1.0 / 256.0).abs() < 0.001, "{}", above(2));
    }

    #[test]
    fn heuristic_drops_a_point_shadowed_by_a_closer_one() {
        // On a line: query at 0, points at 1, 1.1 and -1. The point at 1.1 is closer
        // to 1 than to the query, so it goes; -1 stays.
        let data = [0.0f32, 1.0, 1.1, -1.0];
        let params = HnswParams {
            m: 2,
            ef_construction: 2,
            seed: 0,
        };
        let b = Builder::new(&data, 1, Similarity::L2, &params);
        let mut cands: Vec<Cand> = [1u32, 2, 3]
            .iter()
            .map(|&p| Cand {
                dist: b.distance(&[0.0], p),
                point: p,
            })
            .collect();
        cands.sort_unstable();
        b.select(&mut cands, 2);
        assert_eq!(cands.iter().map(|c| c.point).collect::<Vec<_>>(), [1, 3]);
    }
}
