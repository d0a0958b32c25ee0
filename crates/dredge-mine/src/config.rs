//! What the miner is asked to do: candidate depth, filters and their order,
//! sampling, what to do with short queries, and the output shape.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

/// In which order the rank window and the other filters are applied. The two
/// popular tools disagree, and the negatives they give differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterOrder {
    /// sentence-transformers' `mine_hard_negatives`: drop known positives and
    /// candidates failing the score filters first, then take ranks
    /// `[min, max)` of the survivors.
    #[default]
    SentenceTransformers,
    /// FlagEmbedding's `hn_mine.py`: take ranks `[min, max)` of the raw candidate
    /// list first, then drop known positives and score-filter failures.
    #[serde(rename = "flagembedding")]
    FlagEmbedding,
}

impl FilterOrder {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOrder::SentenceTransformers => "sentence-transformers",
            FilterOrder::FlagEmbedding => "flagembedding",
        }
    }
}

/// Which single score stands for a query's positives in the margin filters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PositiveScore {
    /// The lowest positive score (sentence-transformers' choice): the strictest
    /// threshold, so the fewest false negatives slip through.
    #[default]
    Min,
    /// The mean of the positive scores.
    Mean,
    /// The highest positive score.
    Max,
}

impl PositiveScore {
    /// Combines the scores of one query's positives; `None` when there are none.
    pub fn combine(self, scores: impl IntoIterator<Item = f32>) -> Option<f32> {
        let mut n = 0usize;
        let (mut min, mut max, mut sum) = (f32::INFINITY, f32::NEG_INFINITY, 0f64);
        for s in scores.into_iter().filter(|s| !s.is_nan()) {
            n += 1;
            min = min.min(s);
            max = max.max(s);
            sum += s as f64;
        }
        (n > 0).then(|| match self {
            PositiveScore::Min => min,
            PositiveScore::Max => max,
            PositiveScore::Mean => (sum / n as f64) as f32,
        })
    }
}

/// How negatives are picked among the candidates that survive the filters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// The best-ranked survivors.
    #[default]
    Top,
    /// A uniform random draw among the survivors (seeded), written best first.
    Random,
}

/// What to do with a query left with fewer than `num_negatives` negatives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnShort {
    /// Write the negatives it has.
    #[default]
    Keep,
    /// Leave the query out of the output.
    Drop,
    /// Fill up with random corpus documents that are neither positives (nor
    /// their text duplicates), nor retrieved candidates, nor already chosen, and
    /// that pass the score filters.
    Pad,
}

/// The shape of each output line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// FlagEmbedding's training rows, with ids: `{"query", "pos", "neg",
    /// "pos_scores", "neg_scores", "qid", "pos_ids", "neg_ids"}`.
    #[default]
    Flag,
    /// The same without texts: `{"qid", "pos_ids", "neg_ids", "pos_scores", "neg_scores"}`.
    Ids,
    /// sentence-transformers triplets, one row per (positive, negative) pair:
    /// `{"anchor", "positive", "negative"}`.
    Triplet,
}

/// The window of candidate ranks negatives may come from: `[min, max)`, 0-based.
/// `max = None` is open-ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RankRange {
    /// First rank allowed (0 = the top candidate).
    pub min: usize,
    /// First rank no longer allowed, or `None` for no upper bound.
    pub max: Option<usize>,
}

impl RankRange {
    /// True when `rank` lies in the window.
    pub fn contains(&self, rank: usize) -> bool {
        rank >= self.min && self.max.is_none_or(|max| rank < max)
    }
}

impl FromStr for RankRange {
    type Err = Error;

    /// Parses `MIN:MAX`, `MIN:` or `:MAX` (also with `-` as separator, as
    /// FlagEmbedding's `10-210`).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "rank range `{s}` is not MIN:MAX (for example 10:100, 10: or :100)"
            ))
        };
        let (lo, hi) = s
            .split_once(':')
            .or_else(|| s.split_once('-'))
            .ok_or_else(bad)?;
        let min = if lo.trim().is_empty() {
            0
        } else {
            lo.trim().parse().map_err(|_| bad())?
        };
        let max = if hi.trim().is_empty() {
            None
        } else {
            Some(hi.trim().parse().map_err(|_| bad())?)
        };
        if max.is_some_and(|max| max <= min) {
            return Err(Error::Config(format!(
                "rank range `{s}` is empty: MAX must be above MIN"
            )));
        }
        Ok(RankRange { min, max })
    }
}

impl fmt::Display for RankRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) => write!(f, "{}:{max}", self.min),
            None => write!(f, "{}:", self.min),
        }
    }
}

/// Everything the miner needs to know, checked by [`MineConfig::validate`].
#[derive(Clone, Debug, Serialize)]
pub struct MineConfig {
    /// Candidates retrieved per query (default 200).
    pub depth: usize,
    /// Rank window negatives come from.
    pub range: RankRange,
    /// Keep a candidate only if `score <= max_score` (NV-Retriever's TopK-Abs).
    pub max_score: Option<f32>,
    /// Keep a candidate only if `score < positive - margin` (TopK-MarginPos).
    pub margin: Option<f32>,
    /// Keep a candidate only if `score < positive - |positive| * relative_margin`,
    /// which is `(1 - R) * positive` for the non-negative scores of BM25 and
    /// cosine (TopK-PercPos; 0.05 is NV-Retriever's setting). The `|positive|`
    /// form is sentence-transformers' and stays strict for negative scores.
    pub relative_margin: Option<f32>,
    /// Which positive score the margins compare against.
    pub positive_score: PositiveScore,
    /// Negatives wanted per query.
    pub num_negatives: usize,
    /// How they are picked among the survivors.
    pub sampling: Sampling,
    /// Seed of every random choice (random sampling, padding, report sampling).
    pub seed: u64,
    /// What to do when a query has too few negatives.
    pub on_short: OnShort,
    /// The output line shape.
    pub format: OutputFormat,
    /// Where the rank window sits among the filters.
    pub filter_order: FilterOrder,
    /// Queries processed together (in parallel, then written in order); memory
    /// grows with this times `depth`, not with the number of queries.
    pub chunk_size: usize,
    /// Mine only the input's queries at these positions (counted from 0, every
    /// input query counted), each still seeded by its position: the parts of a
    /// fan-out over workers, whose outputs concatenated in order are the bytes of
    /// one run over all queries. `None`: every query.
    pub positions: Option<std::ops::Range<u64>>,
    /// Queries the report shows in full (query, positives, kept negatives, dropped
    /// candidates with text, scores and filter): a seeded uniform sample of this
    /// many mined queries (default 20).
    pub report_sampled: usize,
    /// And this many of the worst queries by margin: the smallest gap between the
    /// positive score the margins compare against and the score of the hardest
    /// negative chosen (default 10).
    pub report_worst: usize,
}

impl Default for MineConfig {
    fn default() -> Self {
        MineConfig {
            depth: 200,
            range: RankRange::default(),
            max_score: None,
            margin: None,
            relative_margin: None,
            positive_score: PositiveScore::Min,
            num_negatives: 15,
            sampling: Sampling::Top,
            seed: 42,
            on_short: OnShort::Keep,
            format: OutputFormat::Flag,
            filter_order: FilterOrder::SentenceTransformers,
            chunk_size: 512,
            positions: None,
            report_sampled: 20,
            report_worst: 10,
        }
    }
}

impl MineConfig {
    /// Rejects settings that cannot work: a zero depth or count, a rank window
    /// starting at or past the depth, non-finite thresholds, a negative margin.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.depth == 0 {
            return bad("the candidate depth must be at least 1".into());
        }
        if self.num_negatives == 0 {
            return bad("the number of negatives must be at least 1".into());
        }
        if self.chunk_size == 0 {
            return bad("the chunk size must be at least 1".into());
        }
        if self.range.min >= self.depth {
            return bad(format!(
                "the rank window {} starts at or past the candidate depth {}: no candidate could be chosen",
                self.range, self.depth
            ));
        }
        if self.range.max.is_some_and(|max| max <= self.range.min) {
            return bad(format!("the rank window {} is empty", self.range));
        }
        for (name, value) in [
            ("max-score", self.max_score),
            ("margin", self.margin),
            ("relative-margin", self.relative_margin),
        ] {
            if value.is_some_and(|v| !v.is_finite()) {
                return bad(format!("--{name} must be a finite number"));
            }
        }
        if self.margin.is_some_and(|m| m < 0.0) {
            return bad("--margin must be >= 0".into());
        }
        if self
            .relative_margin
            .is_some_and(|r| !(0.0..=1.0).contains(&r))
        {
            return bad("--relative-margin must be in [0, 1] (0.05 keeps candidates scoring under 95% of the positive)".into());
        }
        Ok(())
    }

    /// True when a margin filter needs the positive score.
    pub fn needs_positive_score(&self) -> bool {
        self.margin.is_some() || self.relative_margin.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_ranges_parse() {
        assert_eq!(
            "10:100".parse::<RankRange>().unwrap(),
            RankRange {
                min: 10,
                max: Some(100)
            }
        );
        assert_eq!(
            "10-210".parse::<RankRange>().unwrap(),
            RankRange {
                min: 10,
                max: Some(210)
            }
        );
        assert_eq!(
            "5:".parse::<RankRange>().unwrap(),
            RankRange { min: 5, max: None }
        );
        assert_eq!(
            ":7".parse::<RankRange>().unwrap(),
            RankRange {
                min: 0,
                max: Some(7)
            }
        );
        assert!("7:7".parse::<RankRange>().is_err());
        assert!("x:1".parse::<RankRange>().is_err());
        assert!("12".parse::<RankRange>().is_err());
        let r = RankRange {
            min: 2,
            max: Some(4),
        };
        assert!(!r.contains(1) && r.contains(2) && r.contains(3) && !r.contains(4));
        assert_eq!(r.to_string(), "2:4");
    }

    #[test]
    fn positive_score_combines() {
        let s = [3.0, 1.0, 2.0];
        assert_eq!(PositiveScore::Min.combine(s), Some(1.0));
        assert_eq!(PositiveScore::Max.combine(s), Some(3.0));
        assert_eq!(PositiveScore::Mean.combine(s), Some(2.0));
        assert_eq!(PositiveScore::Min.combine([]), None);
        assert_eq!(PositiveScore::Min.combine([f32::NAN]), None);
    }

    #[test]
    fn validation_names_the_setting() {
        let ok = MineConfig::default();
        ok.validate().unwrap();
        let cases: [(MineConfig, &str); 5] = [
            (
                MineConfig {
                    depth: 0,
                    ..ok.clone()
                },
                "depth",
            ),
            (
                MineConfig {
                    num_negatives: 0,
                    ..ok.clone()
                },
                "number of negatives",
            ),
            (
                MineConfig {
                    range: RankRange {
                        min: 200,
                        max: None,
                    },
                    ..ok.clone()
                },
                "starts at or past",
            ),
            (
                MineConfig {
                    relative_margin: Some(1.5),
                    ..ok.clone()
                },
                "--relative-margin",
            ),
            (
                MineConfig {
                    max_score: Some(f32::NAN),
                    ..ok.clone()
                },
                "--max-score",
            ),
        ];
        for (config, expected) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
