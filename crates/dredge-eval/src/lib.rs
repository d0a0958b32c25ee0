//! Retrieval metrics exactly as trec_eval computes them: nDCG, Recall, MAP, MRR and
//! P at any cutoff, averaged the way BEIR and pytrec_eval average.
//!
//! ```
//! use dredge_core::{Qrels, Run};
//! use dredge_eval::{EvalOptions, Metric, evaluate};
//!
//! let mut qrels = Qrels::new();
//! qrels.insert("q1", "d1", 1);
//! let mut run = Run::new();
//! run.push("q1", "d2", 2.0);
//! run.push("q1", "d1", 1.0);
//! let metrics = Metric::parse_list("mrr@10,recall@1").unwrap();
//! let eval = evaluate(&qrels, &run, &metrics, &EvalOptions::default());
//! assert_eq!(eval.means, [0.5, 0.0]);
//! ```
#![warn(missing_docs)]

mod evaluate;
mod metric;
mod report;

pub use evaluate::{EvalOptions, Evaluation, QueryScores, evaluate};
pub use metric::{Metric, MetricKind, ParseMetricError};
pub use report::{json, per_query_lines, table};

#[cfg(test)]
mod tests;
