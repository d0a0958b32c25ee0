//! The false-negative filters, applied to one query's ranked candidates.
//!
//! Each candidate is either kept or dropped by exactly one filter: the first one
//! it fails, in the configured [`FilterOrder`]:
//!
//! - sentence-transformers: known positive, duplicate of a positive, margin,
//!   relative margin, max score, then the rank window over the survivors;
//! - FlagEmbedding: the rank window over the raw candidate list, then the same
//!   filters.

use std::cmp::Ordering;

use dredge_core::Hit;
use serde::Serialize;

use crate::config::{FilterOrder, MineConfig};
use crate::input::Exclusions;
use crate::text::TextKeys;

/// A filter, and the reason a candidate was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// The candidate is a positive of the query (or of a query with the same
    /// normalised text).
    KnownPositive,
    /// The candidate's normalised text equals a positive's.
    DuplicateOfPositive,
    /// The candidate's rank is outside `[min, max)`.
    RankWindow,
    /// `score > max_score`.
    MaxScore,
    /// `score >= positive - margin`.
    Margin,
    /// `score >= positive - |positive| * relative_margin`.
    RelativeMargin,
}

impl Filter {
    /// Every filter, in report order.
    pub const ALL: [Filter; 6] = [
        Filter::KnownPositive,
        Filter::DuplicateOfPositive,
        Filter::RankWindow,
        Filter::MaxScore,
        Filter::Margin,
        Filter::RelativeMargin,
    ];

    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Filter::KnownPositive => "known_positive",
            Filter::DuplicateOfPositive => "duplicate_of_positive",
            Filter::RankWindow => "rank_window",
            Filter::MaxScore => "max_score",
            Filter::Margin => "margin",
            Filter::RelativeMargin => "relative_margin",
        }
    }

    /// Position in [`Filter::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The score filters (margin, relative margin, max score, in that order):
/// the first one `score` fails, or `None`. The margins apply only when the
/// positive score is known.
pub fn score_filter(score: f32, positive: Option<f32>, config: &MineConfig) -> Option<Filter> {
    // NaN is neither below nor at most anything: a NaN score fails every filter.
    let below = |t: f32| score.partial_cmp(&t) == Some(Ordering::Less);
    let at_most = |t: f32| {
        matches!(
            score.partial_cmp(&t),
            Some(Ordering::Less | Ordering::Equal)
        )
    };
    if let Some(pos) = positive {
        if config.margin.is_some_and(|m| !below(pos - m)) {
            return Some(Filter::Margin);
        }
        if config
            .relative_margin
            .is_some_and(|r| !below(pos - pos.abs() * r))
        {
            return Some(Filter::RelativeMargin);
        }
    }
    if config.max_score.is_some_and(|max| !at_most(max)) {
        return Some(Filter::MaxScore);
    }
    None
}

/// The positive filters: is `hit` a positive, or a text duplicate of one?
pub fn positive_filter(hit: &Hit, exclusions: &Exclusions, keys: &TextKeys) -> Option<Filter> {
    if exclusions.docs.binary_search(&hit.doc).is_ok() {
        Some(Filter::KnownPositive)
    } else if !exclusions.keys.is_empty() && keys.matches_any(hit.doc, &exclusions.keys) {
        Some(Filter::DuplicateOfPositive)
    } else {
        None
    }
}

/// Applies every filter to `candidates` (best first) and writes one verdict per
/// candidate into `verdicts`: `None` for kept, else the filter that dropped it.
pub fn apply_filters(
    candidates: &[Hit],
    exclusions: &Exclusions,
    keys: &TextKeys,
    positive: Option<f32>,
    config: &MineConfig,
    verdicts: &mut Vec<Option<Filter>>,
) {
    verdicts.clear();
    let mut survivor_rank = 0;
    for (rank, hit) in candidates.iter().enumerate() {
        let verdict = match config.filter_order {
            FilterOrder::SentenceTransformers => {
                let v = positive_filter(hit, exclusions, keys)
                    .or_else(|| score_filter(hit.score, positive, config));
                if v.is_some() {
                    v
                } else {
                    survivor_rank += 1;
                    (!config.range.contains(survivor_rank - 1)).then_some(Filter::RankWindow)
                }
            }
            FilterOrder::FlagEmbedding => {
                if !config.range.contains(rank) {
                    Some(Filter::RankWindow)
                } else {
                    positive_filter(hit, exclusions, keys)
                        .or_else(|| score_filter(hit.score, positive, config))
                }
            }
        };
        verdicts.push(verdict);
    }
}
