//! Fusing two rankings into one: reciprocal rank fusion and weighted fusion of
//! normalised scores, and [`HybridRetriever`], a [`Retriever`] over two others.
//!
//! Both fusions look only at the top `depth` hits of each side. A document missing
//! from one side's list gets that side's *floor*: nothing (0) under reciprocal rank
//! fusion, the lowest normalised score of the list under weighted fusion (0 with
//! min-max), as if it were tied with the side's last hit.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::hit::{Hit, Score, sort_hits};
use crate::ids::DocId;
use crate::retriever::{QueryInput, Retriever};

/// The `k` of reciprocal rank fusion used by Cormack et al. (2009) and most tools.
pub const DEFAULT_RRF_K: f32 = 60.0;

/// How raw scores of one side are put on a common scale before weighting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScoreNorm {
    /// `(s - min) / (max - min)` over the side's list: the best hit gets 1, the last 0.
    /// A list whose scores are all equal maps to 1.
    #[default]
    MinMax,
    /// `(s - mean) / std` over the side's list (population standard deviation). A
    /// list whose scores are all equal maps to 0.
    ZScore,
}

/// How two rankings are combined.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion: `sum over sides of 1 / (k + rank)`, rank 1-based.
    Rrf {
        /// The smoothing constant ([`DEFAULT_RRF_K`] = 60).
        k: f32,
    },
    /// `alpha * norm(first) + (1 - alpha) * norm(second)`.
    Weighted {
        /// Weight of the first side, in `[0, 1]`.
        alpha: f32,
        /// How each side's scores are normalised.
        norm: ScoreNorm,
    },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: DEFAULT_RRF_K }
    }
}

impl Fusion {
    /// Checks the parameters: `k` finite and `>= 0`, `alpha` in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Fusion::Rrf { k } if !(k.is_finite() && k >= 0.0) => Err(Error::Invalid(format!(
                "reciprocal rank fusion needs a finite k >= 0, got {k}"
            ))),
            Fusion::Weighted { alpha, .. } if !(0.0..=1.0).contains(&alpha) => Err(Error::Invalid(
                format!("weighted fusion needs alpha in [0, 1], got {alpha}"),
            )),
            _ => Ok(()),
        }
    }

    /// A short description for reports: `rrf(k=60)`, `weighted(alpha=0.5,min-max)`.
    pub fn describe(&self) -> String {
        match *self {
            Fusion::Rrf { k } => format!("rrf(k={k})"),
            Fusion::Weighted { alpha, norm } => {
                let norm = match norm {
                    ScoreNorm::MinMax => "min-max",
                    ScoreNorm::ZScore => "z-score",
                };
                format!("weighted(alpha={alpha},{norm})")
            }
        }
    }
}

/// The fusion of one side's list, ready to score any document: its contribution for
/// documents in the list, and the floor for documents outside it.
struct SideScores {
    by_doc: HashMap<DocId, f32>,
    floor: f32,
}

impl SideScores {
    fn new(hits: &[Hit], fusion: Fusion) -> Self {
        match fusion {
            Fusion::Rrf { k } => SideScores {
                by_doc: hits
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.doc, 1.0 / (k + (i + 1) as f32)))
                    .collect(),
                floor: 0.0,
            },
            Fusion::Weighted { norm, .. } => {
                let normalised = normalise(hits, norm);
                let floor = normalised.iter().copied().fold(f32::INFINITY, f32::min);
                SideScores {
                    by_doc: hits
                        .iter()
                        .zip(&normalised)
                        .map(|(h, &s)| (h.doc, s))
                        .collect(),
                    floor: if floor.is_finite() { floor } else { 0.0 },
                }
            }
        }
    }

    fn get(&self, doc: DocId) -> f32 {
        self.by_doc.get(&doc).copied().unwrap_or(self.floor)
    }
}

fn normalise(hits: &[Hit], norm: ScoreNorm) -> Vec<f32> {
    if hits.is_empty() {
        return Vec::new();
    }
    let scores = hits.iter().map(|h| h.score as f64);
    match norm {
        ScoreNorm::MinMax => {
            let (min, max) = scores.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
                (lo.min(s), hi.max(s))
            });
            let range = max - min;
            hits.iter()
                .map(|h| {
                    if range > 0.0 {
                        ((h.score as f64 - min) / range) as f32
                    } else {
                        1.0
                    }
                })
                .collect()
        }
        ScoreNorm::ZScore => {
            let n = hits.len() as f64;
            let mean = scores.clone().sum::<f64>() / n;
            let std = (scores.map(|s| (s - mean) * (s - mean)).sum::<f64>() / n).sqrt();
            hits.iter()
                .map(|h| {
                    if std > 0.0 {
                        ((h.score as f64 - mean) / std) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        }
    }
}

fn weights(fusion: Fusion) -> (f32, f32) {
    match fusion {
        Fusion::Rrf { .. } => (1.0, 1.0),
        Fusion::Weighted { alpha, .. } => (alpha, 1.0 - alpha),
    }
}

/// Fuses two ranked lists (each best first, as a retriever returns them) and
/// returns the union of their documents, best first ([`sort_hits`] order: ties go to
/// the lower [`DocId`]).
pub fn fuse(first: &[Hit], second: &[Hit], fusion: Fusion) -> Vec<Hit> {
    let a = SideScores::new(first, fusion);
    let b = SideScores::new(second, fusion);
    let (wa, wb) = weights(fusion);
    let mut docs: Vec<DocId> = first.iter().chain(second).map(|h| h.doc).collect();
    docs.sort_unstable();
    docs.dedup();
    let mut fused: Vec<Hit> = docs
        .into_iter()
        .map(|doc| Hit {
            doc,
            score: wa * a.get(doc) + wb * b.get(doc),
        })
        .collect();
    sort_hits(&mut fused);
    fused
}

/// Reciprocal rank fusion of any number of ranked lists: each document scores
/// `sum over lists of 1 / (k + rank)`, rank 1-based, and nothing from a list it is
/// missing from. Returns the union, best first.
pub fn reciprocal_rank_fusion(lists: &[&[Hit]], k: f32) -> Vec<Hit> {
    let mut scores: HashMap<DocId, f32> = HashMap::new();
    for list in lists {
        for (i, hit) in list.iter().enumerate() {
            *scores.entry(hit.doc).or_insert(0.0) += 1.0 / (k + (i + 1) as f32);
        }
    }
    let mut fused: Vec<Hit> = scores
        .into_iter()
        .map(|(doc, score)| Hit { doc, score })
        .collect();
    sort_hits(&mut fused);
    fused
}

/// Weighted fusion of two ranked lists: `alpha * norm(first) + (1 - alpha) *
/// norm(second)`, a document missing from a list taking that list's lowest
/// normalised score. Returns the union, best first.
pub fn weighted_fusion(first: &[Hit], second: &[Hit], alpha: f32, norm: ScoreNorm) -> Vec<Hit> {
    fuse(first, second, Fusion::Weighted { alpha, norm })
}

/// A [`Retriever`] that fuses two others (typically BM25 and dense).
///
/// Each side is searched for its top `depth` documents, whatever `k` the caller
/// asks for; the fused list is the union of the two, best first, cut to `k`.
///
/// [`Retriever::score`] gives every document the score [`Retriever::search`] gives
/// it, computed the same way from the same two top-`depth` lists, so scores of
/// retrieved and not-retrieved documents are comparable (the miner compares the
/// positive's score with the candidates'). In particular, under reciprocal rank
/// fusion a document outside a side's top `depth` gets nothing from that side: a
/// document in neither list scores 0, below every retrieved one. Under weighted
/// fusion it gets the side's floor (0 with min-max normalisation). The sides'
/// own `score()` is never needed.
pub struct HybridRetriever {
    first: Arc<dyn Retriever>,
    second: Arc<dyn Retriever>,
    fusion: Fusion,
    depth: usize,
    name: String,
}

impl HybridRetriever {
    /// Fuses `first` and `second` over the top `depth` of each. Fails when the
    /// fusion parameters are out of range or `depth` is 0.
    pub fn new(
        first: Arc<dyn Retriever>,
        second: Arc<dyn Retriever>,
        fusion: Fusion,
        depth: usize,
    ) -> Result<Self> {
        fusion.validate()?;
        if depth == 0 {
            return Err(Error::Invalid(
                "hybrid retrieval needs a depth of at least 1 per side".into(),
            ));
        }
        Ok(HybridRetriever {
            first,
            second,
            fusion,
            depth,
            name: "hybrid".into(),
        })
    }

    /// Renames the retriever (the default name is `hybrid`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The fusion in use.
    pub fn fusion(&self) -> Fusion {
        self.fusion
    }

    /// How many documents each side contributes.
    pub fn depth(&self) -> usize {
        self.depth
    }

    fn sides(&self, query: &QueryInput<'_>) -> Result<(Vec<Hit>, Vec<Hit>)> {
        Ok((
            self.first.search(query, self.depth)?,
            self.second.search(query, self.depth)?,
        ))
    }
}

impl Retriever for HybridRetriever {
    fn name(&self) -> &str {
        &self.name
    }

    fn search(&self, query: &QueryInput<'_>, k: usize) -> Result<Vec<Hit>> {
        let (a, b) = self.sides(query)?;
        let mut fused = fuse(&a, &b, self.fusion);
        fused.truncate(k);
        Ok(fused)
    }

    fn search_batch(&self, queries: &[QueryInput<'_>], k: usize) -> Result<Vec<Vec<Hit>>> {
        let a = self.first.search_batch(queries, self.depth)?;
        let b = self.second.search_batch(queries, self.depth)?;
        if a.len() != queries.len() || b.len() != queries.len() {
            return Err(Error::Invalid(
                "a retriever returned a different number of result lists than queries".into(),
            ));
        }
        Ok(a.iter()
            .zip(&b)
            .map(|(a, b)| {
                let mut fused = fuse(a, b, self.fusion);
                fused.truncate(k);
                fused
            })
            .collect())
    }

    fn score(&self, query: &QueryInput<'_>, docs: &[DocId]) -> Result<Vec<Score>> {
        let (a, b) = self.sides(query)?;
        Ok(self.fused_scores(&a, &b, docs))
    }

    /// Both sides searched for every request's query in one batch each, then each
    /// request's documents scored as [`Retriever::score`] does.
    fn score_many(&self, requests: &[(QueryInput<'_>, &[DocId])]) -> Result<Vec<Vec<Score>>> {
        let queries: Vec<QueryInput<'_>> = requests.iter().map(|(q, _)| *q).collect();
        let a = self.first.search_batch(&queries, self.depth)?;
        let b = self.second.search_batch(&queries, self.depth)?;
        if a.len() != queries.len() || b.len() != queries.len() {
            return Err(Error::Invalid(
                "a retriever returned a different number of result lists than queries".into(),
            ));
        }
        Ok(requests
            .iter()
            .zip(a.iter().zip(&b))
            .map(|((_, docs), (a, b))| self.fused_scores(a, b, docs))
            .collect())
    }

    fn preferred_batch(&self) -> Option<usize> {
        match (self.first.preferred_batch(), self.second.preferred_batch()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

impl HybridRetriever {
    /// The fused score of each of `docs`, from the two sides' hits.
    fn fused_scores(&self, a: &[Hit], b: &[Hit], docs: &[DocId]) -> Vec<Score> {
        let (sa, sb) = (
            SideScores::new(a, self.fusion),
            SideScores::new(b, self.fusion),
        );
        let (wa, wb) = weights(self.fusion);
        docs.iter()
            .map(|&d| wa * sa.get(d) + wb * sb.get(d))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(list: &[(u32, f32)]) -> Vec<Hit> {
        list.iter()
            .map(|&(d, s)| Hit {
                doc: DocId(d),
                score: s,
            })
            .collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    /// A retriever with fixed scores for every document, ranking by them.
    struct Fixed(Vec<(u32, f32)>);

    impl Retriever for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn search(&self, _: &QueryInput<'_>, k: usize) -> Result<Vec<Hit>> {
            let mut h = hits(&self.0);
            sort_hits(&mut h);
            h.truncate(k);
            Ok(h)
        }
        fn score(&self, _: &QueryInput<'_>, docs: &[DocId]) -> Result<Vec<Score>> {
            Ok(docs
                .iter()
                .map(|d| self.0.iter().find(|x| x.0 == d.0).map_or(0.0, |x| x.1))
                .collect())
        }
    }

    #[test]
    fn rrf_by_hand() {
        // first: 1, 2, 3; second: 3, 4.
        // doc 3: 1/63 + 1/61 = 0.032266...; doc 1: 1/61 = 0.016393; doc 2: 1/62; doc 4: 1/62.
        let a = hits(&[(1, 9.0), (2, 8.0), (3, 7.0)]);
        let b = hits(&[(3, 0.9), (4, 0.8)]);
        let fused = fuse(&a, &b, Fusion::default());
        let docs: Vec<u32> = fused.iter().map(|h| h.doc.0).collect();
        assert_eq!(docs, [3, 1, 2, 4]);
        assert!(close(fused[0].score, 1.0 / 63.0 + 1.0 / 61.0));
        assert!(close(fused[1].score, 1.0 / 61.0));
        assert!(close(fused[2].score, 1.0 / 62.0) && close(fused[3].score, 1.0 / 62.0));
        assert_eq!(reciprocal_rank_fusion(&[&a, &b], 60.0), fused);
        // k = 0: doc 1 (rank 1 in a) = 1, doc 3 = 1/3 + 1 = 1.333.
        let k0 = fuse(&a, &b, Fusion::Rrf { k: 0.0 });
        assert_eq!(k0[0].doc, DocId(3));
        assert!(close(k0[0].score, 4.0 / 3.0));
    }

    #[test]
    fn weighted_min_max_by_hand() {
        // first: 10, 6, 2 -> 1, 0.5, 0; second: 0.9 (doc 3), 0.5 (doc 4) -> 1, 0.
        // alpha 0.25: doc1 = 0.25*1 + 0.75*floor(0) = 0.25; doc2 = 0.125; doc3 = 0 + 0.75 = 0.75;
        // doc4 = 0.25*floor(0) + 0 = 0.
        let a = hits(&[(1, 10.0), (2, 6.0), (3, 2.0)]);
        let b = hits(&[(3, 0.9), (4, 0.5)]);
        let fused = weighted_fusion(&a, &b, 0.25, ScoreNorm::MinMax);
        let got: Vec<(u32, f32)> = fused.iter().map(|h| (h.doc.0, h.score)).collect();
        let want = [(3, 0.75), (1, 0.25), (2, 0.125), (4, 0.0)];
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!(close(g.1, w.1), "{got:?}");
        }
    }

    #[test]
    fn weighted_z_score_by_hand() {
        // first: 3, 1 -> mean 2, std 1 -> +1, -1; second: 4, 4 (all equal) -> 0, 0.
        // alpha 0.5: doc1 = 0.5; doc2 = -0.5; doc3 (only in second) = 0.5*floor(-1) + 0 = -0.5.
        let a = hits(&[(1, 3.0), (2, 1.0)]);
        let b = hits(&[(3, 4.0), (1, 4.0)]);
        let fused = weighted_fusion(&a, &b, 0.5, ScoreNorm::ZScore);
        let got: Vec<(u32, f32)> = fused.iter().map(|h| (h.doc.0, h.score)).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 1);
        assert!(close(got[0].1, 0.5));
        // docs 2 and 3 tie at -0.5: the lower doc id first.
        assert_eq!((got[1].0, got[2].0), (2, 3));
        assert!(close(got[1].1, -0.5) && close(got[2].1, -0.5));
    }

    #[test]
    fn single_and_constant_lists_normalise_sanely() {
        assert_eq!(normalise(&hits(&[(1, 5.0)]), ScoreNorm::MinMax), [1.0]);
        assert_eq!(
            normalise(&hits(&[(1, 5.0), (2, 5.0)]), ScoreNorm::ZScore),
            [0.0, 0.0]
        );
        assert!(normalise(&[], ScoreNorm::MinMax).is_empty());
        assert!(fuse(&[], &[], Fusion::default()).is_empty());
    }

    #[test]
    fn hybrid_score_agrees_with_search_and_floors_outside_depth() {
        let first = Arc::new(Fixed(vec![(0, 5.0), (1, 4.0), (2, 3.0), (3, 2.0)]));
        let second = Arc::new(Fixed(vec![(3, 0.9), (2, 0.8), (1, 0.1), (0, 0.0)]));
        let hybrid = HybridRetriever::new(first, second, Fusion::default(), 2).unwrap();
        let q = QueryInput::text("q");
        // first top 2: 0, 1; second top 2: 3, 2. Each doc is in exactly one list.
        let found = hybrid.search(&q, 10).unwrap();
        assert_eq!(found.len(), 4);
        assert!(close(found[0].score, 1.0 / 61.0));
        let docs: Vec<DocId> = found.iter().map(|h| h.doc).collect();
        let scored = hybrid.score(&q, &docs).unwrap();
        for (h, s) in found.iter().zip(&scored) {
            assert_eq!(h.score, *s);
        }
        // Doc 9 is in neither list: 0 under RRF.
        assert_eq!(hybrid.score(&q, &[DocId(9)]).unwrap(), [0.0]);
        assert_eq!(hybrid.search(&q, 1).unwrap().len(), 1);
        let batch = hybrid.search_batch(&[q, q], 3).unwrap();
        assert_eq!(batch, vec![found[..3].to_vec(), found[..3].to_vec()]);
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(
            Fusion::Weighted {
                alpha: 1.5,
                norm: ScoreNorm::MinMax
            }
            .validate()
            .is_err()
        );
        assert!(Fusion::Rrf { k: -1.0 }.validate().is_err());
        assert!(Fusion::Rrf { k: f32::NAN }.validate().is_err());
        let r: Arc<dyn Retriever> = Arc::new(Fixed(vec![]));
        assert!(HybridRetriever::new(r.clone(), r, Fusion::default(), 0).is_err());
        assert_eq!(Fusion::default().describe(), "rrf(k=60)");
    }
}
