//! Exact (brute-force) search, batched: queries are packed `NR` at a time
//! (interleaved, once per batch) and a register-blocked kernel computes each tile of
//! `MR` documents, read where they lie in the store, by `NR` queries; each query
//! keeps a [`Selection`] of its best hits.
//!
//! Work is split over rayon into (query group, document range) tasks: by query
//! groups when there are many queries, and also by document ranges when there are
//! few (one query over a million rows still uses every thread).

use dredge_core::{
    DocId, Hit, Id, best_of_keys, from_rank_key, keep_best_keys, rank_key, sort_hits,
};
use rayon::prelude::*;

use crate::kernels::{self, MR, NR};
use crate::similarity::Similarity;
use crate::store::VectorStore;

/// Largest packed query group, in bytes: it is read for every tile of documents, so
/// it should stay in L2.
const GROUP_BYTES: usize = 512 * 1024;
/// Smallest document range worth a task of its own.
const MIN_DOCS_PER_TASK: usize = 4096;

/// The best `k` documents for each query of `queries` (`nq x dim`, prepared: of the
/// store's dimension, finite, normalised for cosine), best first.
pub(crate) fn search_batch(
    store: &VectorStore,
    similarity: Similarity,
    queries: &[f32],
    k: usize,
) -> Vec<Vec<Hit>> {
    let dim = store.dim();
    let nq = queries.len() / dim;
    let n = store.len();
    let k = k.min(n);
    if nq == 0 || k == 0 {
        return vec![Vec::new(); nq];
    }
    let threads = rayon::current_num_threads().max(1);
    // Query groups: enough of them to feed every thread, each a whole number of tiles
    // and small enough to stay in cache.
    let max_group = (GROUP_BYTES / (dim * 4)).max(NR) / NR * NR;
    let group = nq.div_ceil(threads * 2).div_ceil(NR).max(1) * NR;
    let group = group.min(max_group).max(NR);
    let groups = nq.div_ceil(group);
    // Document ranges: split only when query groups alone leave threads idle.
    let splits = if groups >= threads * 2 {
        1
    } else {
        (threads * 2)
            .div_ceil(groups)
            .min((n / MIN_DOCS_PER_TASK).max(1))
    };
    let span = n.div_ceil(splits).div_ceil(MR) * MR;
    let tasks: Vec<(usize, usize)> = (0..groups)
        .flat_map(|g| (0..splits).map(move |s| (g, s)))
        .collect();
    let mut partial: Vec<Vec<Vec<Hit>>> = tasks
        .par_iter()
        .map(|&(g, s)| {
            let q0 = g * group;
            let q1 = (q0 + group).min(nq);
            let d0 = (s * span).min(n);
            let d1 = (d0 + span).min(n);
            scan(store, similarity, &queries[q0 * dim..q1 * dim], d0..d1, k)
        })
        .collect();
    // Merge the document ranges of each group, in task order.
    let mut out = Vec::with_capacity(nq);
    for g in 0..groups {
        let mut parts: Vec<Vec<Vec<Hit>>> = partial.drain(..splits).collect();
        let q0 = g * group;
        let q1 = (q0 + group).min(nq);
        for i in 0..q1 - q0 {
            let mut hits: Vec<Hit> = if splits == 1 {
                std::mem::take(&mut parts[0][i])
            } else {
                parts.iter().flat_map(|p| p[i].iter().copied()).collect()
            };
            if splits > 1 {
                sort_hits(&mut hits);
                hits.truncate(k);
            }
            if similarity == Similarity::L2 {
                // The tile computes 2q.x - |x|^2 - |q|^2; give the exact distances.
                let query = &queries[(q0 + i) * dim..(q0 + i + 1) * dim];
                for h in &mut hits {
                    h.score = -(kernels::kernels().l2sq)(query, store.row(h.doc));
                }
                sort_hits(&mut hits);
            }
            out.push(hits);
        }
    }
    out
}

/// Scans documents `docs` for the queries `queries` (a group), returning each
/// query's best `k` among them, best first.
fn scan(
    store: &VectorStore,
    similarity: Similarity,
    queries: &[f32],
    docs: std::ops::Range<usize>,
    k: usize,
) -> Vec<Vec<Hit>> {
    let dim = store.dim();
    let nq = queries.len() / dim;
    let tiles = nq.div_ceil(NR);
    let kern = kernels::kernels();
    let l2 = similarity == Similarity::L2;
    // Pack the queries tile by tile, interleaved: qpack[t][kk][j] = query t*NR+j at kk
    // (padding queries are zero and accept nothing: their floor is +inf).
    let mut qpack = vec![0.0f32; tiles * dim * NR];
    for (qi, q) in queries.chunks_exact(dim).enumerate() {
        let tile = &mut qpack[(qi / NR) * dim * NR..(qi / NR + 1) * dim * NR];
        for (kk, &v) in q.iter().enumerate() {
            tile[kk * NR + qi % NR] = v;
        }
    }
    // Scores are `alpha * dot - row_bias - col_bias`: the dot product itself, or for
    // L2 the negated squared distance `2 q.x - |x|^2 - |q|^2`.
    let alpha = if l2 { 2.0 } else { 1.0 };
    let mut col_bias = vec![0.0f32; tiles * NR];
    if l2 {
        for (qi, q) in queries.chunks_exact(dim).enumerate() {
            col_bias[qi] = kernels::sq_norm(q);
        }
    }
    let norms = store.sq_norms();
    let mut tops: Vec<Selection> = (0..nq).map(|_| Selection::new(k, docs.len())).collect();
    let mut floors = vec![f32::INFINITY; tiles * NR];
    floors[..nq].fill(f32::NEG_INFINITY);
    let zeros = vec![0.0f32; dim];
    let mut row_bias = [0.0f32; MR];
    let mut acc = [0.0f32; MR * NR];
    let mut start = docs.start;
    while start < docs.end {
        let valid = MR.min(docs.end - start);
        // MR documents, in place (padding rows are zero, and get a score of -inf
        // through their bias).
        let rows: [&[f32]; MR] = std::array::from_fn(|i| {
            if i < valid {
                store.row(DocId::from_index(start + i))
            } else {
                &zeros
            }
        });
        for (i, bias) in row_bias.iter_mut().enumerate() {
            *bias = if i >= valid {
                f32::INFINITY
            } else if l2 {
                norms[start + i]
            } else {
                0.0
            };
        }
        for t in 0..tiles {
            let cols = t * NR..(t + 1) * NR;
            (kern.tile)(
                &rows,
                &qpack[t * dim * NR..(t + 1) * dim * NR],
                dim,
                &mut acc,
            );
            let tile_bias: &[f32; NR] = col_bias[cols.clone()].try_into().expect("NR queries");
            let tile_floors: [f32; NR] = floors[cols].try_into().expect("NR queries");
            let masks = (kern.finalize)(&mut acc, alpha, &row_bias, tile_bias, &tile_floors);
            // Documents in increasing id order for each query, as Selection needs.
            for (i, &mask) in masks.iter().enumerate() {
                let mut mask = mask;
                while mask != 0 {
                    let j = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let qi = t * NR + j;
                    let s = acc[i * NR + j];
                    // A score equal to the current k-th best can never enter (ties go
                    // to the lower id): `>` suffices.
                    if s > floors[qi] {
                        floors[qi] = tops[qi].push(DocId::from_index(start + i), s);
                    }
                }
            }
        }
        start += MR;
    }
    tops.into_iter().map(Selection::into_sorted).collect()
}

/// The best `k` of hits offered in increasing document order, kept in a buffer of
/// up to `2k` that is cut back to its best `k` (quickselect) whenever it fills: each
/// offer is an append, and the cuts cost O(k) per `k` accepted hits, where a heap
/// pays O(log k) for every accepted hit. For a depth like 200 over a few thousand
/// documents (mining), most documents beat the heap's threshold early on, and the
/// heap's sift-downs cost more than the dot products.
///
/// Hits are held as [`rank_key`]s, so that selecting and sorting compare integers.
struct Selection {
    k: usize,
    keys: Vec<u64>,
    floor: f32,
}

impl Selection {
    fn new(k: usize, docs: usize) -> Self {
        Selection {
            k,
            keys: Vec::with_capacity(k.saturating_mul(2).min(docs)),
            floor: f32::NEG_INFINITY,
        }
    }

    /// Appends a hit that beats the floor (so its score is not NaN); returns the new
    /// floor, the score a later hit must exceed. Documents arrive in increasing id
    /// order, so a later hit scoring exactly the `k`-th best ranks below it.
    #[inline]
    fn push(&mut self, doc: DocId, score: f32) -> f32 {
        self.keys.push(rank_key(doc, score));
        if self.keys.len() >= self.k * 2 {
            self.cut();
        }
        self.floor
    }

    fn cut(&mut self) {
        keep_best_keys(&mut self.keys, self.k);
        self.floor = from_rank_key(self.keys[self.k - 1]).score;
    }

    fn into_sorted(mut self) -> Vec<Hit> {
        best_of_keys(&mut self.keys, self.k)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn selection_equals_sort_then_truncate(scores in prop::collection::vec(-4i32..4, 1..300), k in 1usize..40) {
            let mut sel = Selection::new(k, scores.len());
            let mut all = Vec::new();
            for (i, &s) in scores.iter().enumerate() {
                let hit = Hit { doc: DocId(i as u32), score: s as f32 };
                // The scan offers only what beats the floor.
                if hit.score > sel.floor {
                    sel.push(hit.doc, hit.score);
                }
                all.push(hit);
            }
            sort_hits(&mut all);
            all.truncate(k);
            prop_assert_eq!(sel.into_sorted(), all);
        }
    }

    fn naive(store: &VectorStore, sim: Similarity, q: &[f32], k: usize) -> Vec<Hit> {
        let mut hits: Vec<Hit> = (0..store.len())
            .map(|i| {
                let row = store.row(DocId::from_index(i));
                let score = match sim {
                    Similarity::L2 => -row
                        .iter()
                        .zip(q)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>(),
                    _ => row.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(),
                };
                Hit {
                    doc: DocId::from_index(i),
                    score,
                }
            })
            .collect();
        sort_hits(&mut hits);
        hits.truncate(k);
        hits
    }

    #[test]
    fn batched_search_matches_naive_for_every_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.bin");
        let (n, dim) = (9000, 20);
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Coarse values make ties likely.
            ((s >> 60) as f32) - 8.0
        };
        let data: Vec<f32> = (0..n * dim).map(|_| next()).collect();
        VectorStore::write(&path, &data, dim, false).unwrap();
        let store = VectorStore::open(&path).unwrap();
        for nq in [1, 5, 13] {
            let queries: Vec<f32> = (0..nq * dim).map(|_| next()).collect();
            for sim in [Similarity::InnerProduct, Similarity::L2] {
                for threads in [1, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let got = pool.install(|| search_batch(&store, sim, &queries, 25));
                    for (qi, hits) in got.iter().enumerate() {
                        let expect = naive(&store, sim, &queries[qi * dim..(qi + 1) * dim], 25);
                        assert_eq!(hits, &expect, "nq {nq} {sim} threads {threads} query {qi}");
                    }
                }
            }
        }
        assert_eq!(
            search_batch(&store, Similarity::InnerProduct, &data[..dim], 0),
            vec![Vec::<Hit>::new()]
        );
        assert_eq!(
            search_batch(&store, Similarity::InnerProduct, &data[..dim], 50_000)[0].len(),
            n
        );
    }
}
