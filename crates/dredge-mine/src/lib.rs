//! Hard-negative mining with positive-aware false-negative filters.
//!
//! For each query with known positives, the [`Miner`] asks a
//! [`dredge_core::Retriever`] (BM25, dense or hybrid: the miner does not care) for
//! its top `depth` candidates, drops those that are probably not negatives at all,
//! picks `num_negatives` of the rest, and writes one JSON line per query in the
//! shape trainers read ([`OutputFormat`]). An [`Audit`] counts what every filter
//! dropped and, given held-out positives, how many mined negatives are in fact
//! positives.
//!
//! The filters ([`Filter`]), each counted:
//! - known positives: every positive of the query and of queries with the same
//!   normalised text, and any document whose normalised text equals a positive's;
//! - the rank window `[min, max)`;
//! - `max_score` (TopK-Abs), `margin` (TopK-MarginPos) and `relative_margin`
//!   (TopK-PercPos) against the positive score, which the retriever's own
//!   [`dredge_core::Retriever::score`] gives even for positives it did not retrieve.
//!
//! [`FilterOrder`] says whether the rank window applies to the survivors of the
//! other filters (sentence-transformers, the default) or to the raw candidate list
//! (FlagEmbedding). Random choices are seeded per query, so the same inputs and
//! seed give the same bytes whatever the number of threads.
//!
//! ```
//! use dredge_core::{DocId, DocStore, Hit, QueryInput, Retriever, Score};
//! use dredge_mine::{MineConfig, MineQuery, Miner, Positive};
//!
//! /// Scores a document by the number of query words it contains.
//! struct Overlap<'a>(&'a DocStore);
//! impl Retriever for Overlap<'_> {
//!     fn name(&self) -> &str { "overlap" }
//!     fn score(&self, q: &QueryInput<'_>, docs: &[DocId]) -> dredge_core::Result<Vec<Score>> {
//!         Ok(docs.iter().map(|&d| {
//!             let text = self.0.text(d);
//!             q.text.split_whitespace().filter(|w| text.contains(*w)).count() as Score
//!         }).collect())
//!     }
//!     fn search(&self, q: &QueryInput<'_>, k: usize) -> dredge_core::Result<Vec<Hit>> {
//!         let all: Vec<DocId> = self.0.doc_ids().collect();
//!         let mut hits: Vec<Hit> = all.iter().zip(self.score(q, &all)?)
//!             .map(|(&doc, score)| Hit { doc, score }).collect();
//!         dredge_core::sort_hits(&mut hits);
//!         hits.truncate(k);
//!         Ok(hits)
//!     }
//! }
//!
//! # fn main() -> dredge_mine::Result<()> {
//! let mut docs = DocStore::new();
//! let answer = docs.push("a", "", "rust borrow checker rules");
//! docs.push("b", "", "the rust borrow checker explained");
//! docs.push("c", "", "rust belts for bikes");
//! docs.push("d", "", "gardening tips");
//! let retriever = Overlap(&docs);
//! let config = MineConfig { num_negatives: 2, margin: Some(0.5), ..MineConfig::default() };
//! let miner = Miner::new(&retriever, &docs, config)?;
//! let query = MineQuery::new("q1", "rust borrow checker", vec![Positive::doc(answer)]);
//! let (out, audit) = miner.mine_all(&[query], None)?;
//! // "b" scores 3, like the positive: too close, the margin drops it.
//! assert_eq!(audit.drops.get(dredge_mine::Filter::Margin), 1);
//! let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
//! assert_eq!(line["neg_ids"], serde_json::json!(["c", "d"]));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod audit;
mod config;
mod error;
mod filter;
mod input;
mod miner;
mod output;
mod plot;
mod text;
mod trace;

#[cfg(test)]
mod tests;

pub use audit::{
    Audit, DropCounts, Holdout, HoldoutAudit, Quantiles, QueryCounts, SAMPLE_CAPACITY, ScoreReport,
    ScoreSample, TeacherReport, Timing,
};
pub use config::{
    FilterOrder, MineConfig, OnShort, OutputFormat, PositiveScore, RankRange, Sampling,
};
pub use error::{Error, Result};
pub use filter::{Filter, apply_filters, positive_filter, score_filter};
pub use input::{
    BeirInput, BeirQueries, Exclusions, InputCounts, MineQuery, PairsReader, Positive,
    PositiveGroups,
};
pub use miner::{MinedQuery, Miner, Rescored};
pub use output::{Lines, Negative, write_lines};
pub use plot::{html, retriever_svg, svg};
pub use text::{TextKeys, document_key, text_key};
pub use trace::{QueryAudit, QueryTrace, TRACE_TEXT_CHARS, TraceDoc};
