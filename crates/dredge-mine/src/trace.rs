//! The audit query by query: for a seeded sample of queries and the worst ones by
//! margin, everything the miner saw and decided (positives, negatives chosen,
//! candidates dropped and the filter that dropped each), with text and scores.
//!
//! Memory stays bounded: a query is traced only when it enters one of two bounded
//! selections, and each selection holds at most its size.
//!
//! - The sample: each mined query gets a pseudo-random priority from the seed and
//!   its input position; the `report_sampled` smallest priorities are kept (a
//!   bottom-k sample, uniform and the same whatever the threads or chunking).
//! - The worst by margin: the `report_worst` queries with the smallest gap
//!   `positive score - score of the hardest negative chosen`, where the positive
//!   score is the one the margins compare against (`--positive-score`, the lowest
//!   positive's by default) and the hardest negative is the highest-scoring one
//!   picked from the candidates (padding aside). Scores are the teacher's when
//!   candidates were rescored. A small or negative gap is a negative that scores
//!   like a positive: the likeliest false negatives. Queries with no positive
//!   score or no negative from the candidates have no gap and are not ranked.
//!   Ties go to the earlier query.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use dredge_core::{DocStore, Score, document_text};
use serde::Serialize;

use crate::input::MineQuery;
use crate::miner::MinedQuery;

/// Characters of a document's text kept in a trace (the rest is cut, marked by
/// `truncated`).
pub const TRACE_TEXT_CHARS: usize = 2000;

/// A document in a [`QueryTrace`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceDoc {
    /// The corpus id (`None` for an external positive, known only by its text).
    pub id: Option<String>,
    /// The text (`title text`), cut at [`TRACE_TEXT_CHARS`] characters.
    pub text: String,
    /// True when the text was cut.
    pub truncated: bool,
    /// Rank (0-based) in the candidate list the filters saw (ranked by the
    /// teacher's score when rescored under the sentence-transformers order).
    pub rank: Option<usize>,
    /// Rank (0-based) in the candidate source's list, when rescored.
    pub retriever_rank: Option<usize>,
    /// The score the filters compared: the teacher's when rescored.
    pub score: Option<Score>,
    /// The candidate source's score, when rescored.
    pub retriever_score: Option<Score>,
    /// For a dropped candidate, the filter that dropped it.
    pub filter: Option<&'static str>,
    /// For a negative, true when it was drawn at random to pad a short query.
    pub padded: bool,
}

/// One query, as the miner saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryTrace {
    /// Position of the query in the input (0-based).
    pub position: u64,
    /// The query id.
    pub qid: String,
    /// The query text.
    pub query: String,
    /// The positive score the margins compared against.
    pub positive_score: Option<Score>,
    /// The score of the hardest negative chosen from the candidates.
    pub hardest_negative: Option<Score>,
    /// `positive_score - hardest_negative`.
    pub gap: Option<Score>,
    /// The query's positives.
    pub positives: Vec<TraceDoc>,
    /// The negatives chosen, in output order.
    pub negatives: Vec<TraceDoc>,
    /// The candidates a filter dropped, best first.
    pub dropped: Vec<TraceDoc>,
    /// Candidates that passed every filter but were not picked.
    pub not_sampled: usize,
    /// Fewer negatives than asked survived the filters.
    pub short: bool,
    /// The query's row is in the output.
    pub written: bool,
}

/// The traced queries of a run (in the JSON report as `query_audit`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueryAudit {
    /// How the two lists are chosen.
    pub definition: &'static str,
    /// A seeded uniform sample of the mined queries, in input order.
    pub sampled: Vec<QueryTrace>,
    /// The worst by margin, smallest gap first.
    pub worst: Vec<QueryTrace>,
}

const DEFINITION: &str = "sampled: a seeded uniform sample of the mined queries (input order); worst: the smallest gap between the positive score the margins compare against (--positive-score, lowest positive by default) and the score of the hardest negative chosen from the candidates (teacher scores when rescored), smallest first";

/// A key that orders floats totally, for the heaps.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Gap(f32);
impl Eq for Gap {}
impl PartialOrd for Gap {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Gap {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// An entry of a bounded selection, ordered by its key only.
#[derive(Clone, Debug)]
struct Entry<K> {
    key: K,
    trace: QueryTrace,
}
impl<K: Ord> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<K: Ord> Eq for Entry<K> {}
impl<K: Ord> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord> Ord for Entry<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// The `capacity` entries with the smallest keys (a max-heap of them).
#[derive(Clone, Debug)]
struct Smallest<K> {
    capacity: usize,
    heap: BinaryHeap<Entry<K>>,
}

impl<K: Ord + Copy> Smallest<K> {
    fn new(capacity: usize) -> Self {
        Smallest {
            capacity,
            heap: BinaryHeap::new(),
        }
    }

    /// True when an entry with `key` would be kept.
    fn admits(&self, key: K) -> bool {
        self.capacity > 0
            && (self.heap.len() < self.capacity
                || self.heap.peek().is_some_and(|top| key < top.key))
    }

    fn push(&mut self, key: K, trace: QueryTrace) {
        if !self.admits(key) {
            return;
        }
        if self.heap.len() == self.capacity {
            self.heap.pop();
        }
        self.heap.push(Entry { key, trace });
    }

    fn into_sorted(self) -> Vec<QueryTrace> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| e.trace)
            .collect()
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Chooses and records the traced queries as mined queries go past.
#[derive(Clone, Debug)]
pub(crate) struct Tracer {
    seed: u64,
    sampled: Smallest<(u64, u64)>,
    worst: Smallest<(Gap, u64)>,
}

impl Tracer {
    pub(crate) fn new(seed: u64, sampled: usize, worst: usize) -> Self {
        Tracer {
            seed,
            sampled: Smallest::new(sampled),
            worst: Smallest::new(worst),
        }
    }

    /// Looks at one mined query; builds its trace only when a selection keeps it.
    pub(crate) fn see(&mut self, query: &MineQuery, mined: &MinedQuery, docs: &DocStore) {
        let priority = (mix(self.seed ^ mix(mined.index)), mined.index);
        let gap = gap(mined).map(|g| (Gap(g.2), mined.index));
        let in_sample = self.sampled.admits(priority);
        let in_worst = gap.is_some_and(|g| self.worst.admits(g));
        if !in_sample && !in_worst {
            return;
        }
        let trace = trace(query, mined, docs);
        if let (true, Some(g)) = (in_worst, gap) {
            self.worst.push(g, trace.clone());
        }
        if in_sample {
            self.sampled.push(priority, trace);
        }
    }

    pub(crate) fn finish(self) -> QueryAudit {
        let mut sampled = self.sampled.into_sorted();
        sampled.sort_by_key(|t| t.position);
        QueryAudit {
            definition: DEFINITION,
            sampled,
            worst: self.worst.into_sorted(),
        }
    }
}

/// The positive score, the hardest negative's and their difference, when both
/// are known.
fn gap(mined: &MinedQuery) -> Option<(Score, Score, Score)> {
    let pos = mined.positive_score.filter(|s| !s.is_nan())?;
    let hardest = mined
        .negatives
        .iter()
        .filter(|n| !n.padded && !n.score.is_nan())
        .map(|n| n.score)
        .max_by(f32::total_cmp)?;
    Some((pos, hardest, pos - hardest))
}

fn cut(text: String) -> (String, bool) {
    match text.char_indices().nth(TRACE_TEXT_CHARS) {
        Some((at, _)) => (text[..at].to_owned(), true),
        None => (text, false),
    }
}

fn trace(query: &MineQuery, mined: &MinedQuery, docs: &DocStore) -> QueryTrace {
    let doc_text = |d| cut(document_text(docs.title(d), docs.text(d)));
    let rescored = mined.rescored.as_ref();
    let candidate = |i: usize, filter: Option<&'static str>| {
        let hit = &mined.candidates[i];
        let (text, truncated) = doc_text(hit.doc);
        TraceDoc {
            id: Some(docs.id(hit.doc).to_owned()),
            text,
            truncated,
            rank: Some(i),
            retriever_rank: rescored.map(|r| r.ranks[i]),
            score: Some(hit.score),
            retriever_score: rescored.map(|r| r.scores[i]),
            filter,
            padded: false,
        }
    };
    let positives = query
        .positives
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let (text, truncated) = match (&p.text, p.doc) {
                (Some(t), _) => cut(t.clone()),
                (None, Some(d)) => doc_text(d),
                (None, None) => (String::new(), false),
            };
            let at = p
                .doc
                .and_then(|d| mined.candidates.iter().position(|h| h.doc == d));
            TraceDoc {
                id: p.doc.map(|d| docs.id(d).to_owned()),
                text,
                truncated,
                rank: at,
                retriever_rank: at.and_then(|i| rescored.map(|r| r.ranks[i])),
                score: mined.positive_scores.get(k).copied().flatten(),
                retriever_score: rescored.and_then(|r| r.positive_scores.get(k).copied().flatten()),
                filter: None,
                padded: false,
            }
        })
        .collect();
    let negatives = mined
        .negatives
        .iter()
        .map(|n| {
            let at = (!n.padded)
                .then(|| mined.candidates.iter().position(|h| h.doc == n.doc))
                .flatten();
            match at {
                Some(i) => candidate(i, None),
                None => {
                    let (text, truncated) = doc_text(n.doc);
                    TraceDoc {
                        id: Some(docs.id(n.doc).to_owned()),
                        text,
                        truncated,
                        rank: None,
                        retriever_rank: None,
                        score: Some(n.score),
                        retriever_score: n.retriever_score,
                        filter: None,
                        padded: n.padded,
                    }
                }
            }
        })
        .collect();
    let dropped = mined
        .verdicts
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|f| candidate(i, Some(f.as_str()))))
        .collect();
    let hard = mined.negatives.iter().filter(|n| !n.padded).count();
    let g = gap(mined);
    QueryTrace {
        position: mined.index,
        qid: query.qid.clone(),
        query: query.text.clone(),
        positive_score: mined.positive_score,
        hardest_negative: g.map(|g| g.1),
        gap: g.map(|g| g.2),
        positives,
        negatives,
        dropped,
        not_sampled: mined.survivors.saturating_sub(hard),
        short: mined.short,
        written: mined.written,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_keeps_the_smallest_keys() {
        let t = |p: u64| QueryTrace {
            position: p,
            qid: p.to_string(),
            query: String::new(),
            positive_score: None,
            hardest_negative: None,
            gap: None,
            positives: vec![],
            negatives: vec![],
            dropped: vec![],
            not_sampled: 0,
            short: false,
            written: true,
        };
        let mut s = Smallest::new(3);
        for (k, p) in [(5u64, 0u64), (1, 1), (9, 2), (3, 3), (7, 4), (2, 5)] {
            s.push(k, t(p));
        }
        let got: Vec<u64> = s.into_sorted().iter().map(|t| t.position).collect();
        assert_eq!(got, [1, 5, 3]);
        let mut none = Smallest::<u64>::new(0);
        none.push(1, t(0));
        assert!(none.into_sorted().is_empty());
        assert_eq!(
            cut("é".repeat(TRACE_TEXT_CHARS + 3)).0.chars().count(),
            TRACE_TEXT_CHARS
        );
        assert!(!cut("short".into()).1);
    }
}
