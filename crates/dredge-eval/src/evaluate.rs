//! Scoring a run against qrels with trec_eval's semantics.

use std::collections::HashMap;

use dredge_core::{FxBuildHasher, Qrels, QrelsQuery, Run, RunQuery};
use rayon::prelude::*;

use crate::metric::{Metric, MetricKind};

/// How to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalOptions {
    /// Drop retrieved documents whose id equals the query id before scoring, as
    /// BEIR's `ignore_identical_ids` does. On by default.
    pub ignore_identical_ids: bool,
    /// Average over every query of the qrels, counting those absent from the run
    /// as zero (trec_eval `-c`). Off by default: averages are over the queries in
    /// both run and qrels, as BEIR and pytrec_eval do.
    pub missing_as_zero: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            ignore_identical_ids: true,
            missing_as_zero: false,
        }
    }
}

/// The scores of one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryScores {
    /// External query id.
    pub qid: String,
    /// One value per metric, in the order of [`Evaluation::metrics`].
    pub values: Vec<f64>,
}

/// The result of [`evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The metrics, in the order they were asked for.
    pub metrics: Vec<Metric>,
    /// Mean of each metric over the evaluated queries (0 when there are none).
    pub means: Vec<f64>,
    /// Per-query values, queries sorted by id.
    pub per_query: Vec<QueryScores>,
    /// Run queries that have no judgments (not evaluated).
    pub run_queries_without_qrels: usize,
    /// Qrels queries absent from the run (counted as zero only with `missing_as_zero`).
    pub qrels_queries_without_run: usize,
}

impl Evaluation {
    /// Number of queries averaged over.
    pub fn queries(&self) -> usize {
        self.per_query.len()
    }

    /// The mean of `metric`, if it was computed.
    pub fn mean(&self, metric: Metric) -> Option<f64> {
        self.metrics
            .iter()
            .position(|&m| m == metric)
            .map(|i| self.means[i])
    }
}

/// Evaluates `run` against `qrels`.
///
/// Semantics are trec_eval's (and pytrec_eval's): the run is ordered by score
/// (compared as 32-bit floats, as trec_eval stores them) descending, ties by
/// document id descending (byte order); ranks are ignored. A judgment with grade
/// `>= 1` is relevant; nDCG uses the grade itself as gain with a `log2(rank + 1)`
/// discount, against the ideal ordering of the judged grades. Recall divides by all
/// relevant documents of the query; MAP@k sums precision at each relevant document
/// in the top k and divides by all relevant; P@k divides by k; MRR@k is the
/// reciprocal rank of the first relevant document within the top k.
pub fn evaluate(qrels: &Qrels, run: &Run, metrics: &[Metric], options: &EvalOptions) -> Evaluation {
    let mut work: Vec<(&QrelsQuery, Option<&RunQuery>)> = Vec::new();
    let mut qrels_without_run = 0;
    for q in qrels.queries() {
        match run.get(&q.qid) {
            Some(r) => work.push((q, Some(r))),
            None => {
                qrels_without_run += 1;
                if options.missing_as_zero {
                    work.push((q, None));
                }
            }
        }
    }
    let run_without_qrels = run
        .queries()
        .iter()
        .filter(|r| qrels.get(&r.qid).is_none())
        .count();
    work.sort_by(|a, b| a.0.qid.cmp(&b.0.qid));

    let max_k = metrics.iter().map(|m| m.k).max().unwrap_or(0);
    let per_query: Vec<QueryScores> = work
        .par_iter()
        .map_init(Scratch::default, |scratch, (q, r)| QueryScores {
            qid: q.qid.clone(),
            values: scratch.score_query(q, *r, metrics, max_k, options),
        })
        .collect();

    let n = per_query.len();
    let means = (0..metrics.len())
        .map(|i| {
            if n == 0 {
                0.0
            } else {
                per_query.iter().map(|q| q.values[i]).sum::<f64>() / n as f64 + 0.0
            }
        })
        .collect();
    Evaluation {
        metrics: metrics.to_vec(),
        means,
        per_query,
        run_queries_without_qrels: run_without_qrels,
        qrels_queries_without_run: qrels_without_run,
    }
}

/// Buffers reused across the queries one thread evaluates.
#[derive(Default)]
struct Scratch<'a> {
    grades: HashMap<&'a str, i32, FxBuildHasher>,
    ranked: Vec<(f32, &'a str)>,
    /// Grade at each rank (`None`: not judged).
    gains: Vec<Option<i32>>,
    ideal: Vec<i32>,
}

impl<'a> Scratch<'a> {
    fn score_query(
        &mut self,
        qrels: &'a QrelsQuery,
        run: Option<&'a RunQuery>,
        metrics: &[Metric],
        max_k: usize,
        options: &EvalOptions,
    ) -> Vec<f64> {
        self.grades.clear();
        self.grades
            .extend(qrels.judgments.iter().map(|j| (j.doc.as_str(), j.grade)));
        let num_rel = qrels.judgments.iter().filter(|j| j.grade >= 1).count();
        self.ideal.clear();
        self.ideal
            .extend(qrels.judgments.iter().map(|j| j.grade).filter(|&g| g >= 1));
        self.ideal.sort_unstable_by(|a, b| b.cmp(a));

        self.ranked.clear();
        if let Some(run) = run {
            self.ranked.extend(
                run.iter()
                    .filter(|(doc, _)| !(options.ignore_identical_ids && *doc == qrels.qid))
                    .map(|(doc, e)| (e.score as f32, doc)),
            );
        }
        // trec_eval: score descending, then document id descending.
        let by_rank = |a: &(f32, &str), b: &(f32, &str)| {
            b.0.partial_cmp(&a.0)
                .expect("scores are finite")
                .then_with(|| b.1.as_bytes().cmp(a.1.as_bytes()))
        };
        if self.ranked.len() > max_k {
            self.ranked.select_nth_unstable_by(max_k - 1, by_rank);
            self.ranked.truncate(max_k);
        }
        self.ranked.sort_unstable_by(by_rank);
        self.gains.clear();
        self.gains.extend(
            self.ranked
                .iter()
                .map(|(_, doc)| self.grades.get(doc).copied()),
        );

        metrics.iter().map(|m| self.metric(*m, num_rel)).collect()
    }

    fn metric(&self, metric: Metric, num_rel: usize) -> f64 {
        let k = metric.k;
        let top = &self.gains[..self.gains.len().min(k)];
        let is_rel = |g: &Option<i32>| g.is_some_and(|g| g >= 1);
        let value = match metric.kind {
            MetricKind::Ndcg => {
                let dcg: f64 = top
                    .iter()
                    .enumerate()
                    .filter_map(|(i, g)| g.filter(|&g| g > 0).map(|g| g as f64 / discount(i)))
                    .sum();
                let idcg: f64 = self
                    .ideal
                    .iter()
                    .take(k)
                    .enumerate()
                    .map(|(i, &g)| g as f64 / discount(i))
                    .sum();
                if idcg > 0.0 { dcg / idcg } else { 0.0 }
            }
            MetricKind::Recall => {
                if num_rel == 0 {
                    0.0
                } else {
                    top.iter().filter(|g| is_rel(g)).count() as f64 / num_rel as f64
                }
            }
            MetricKind::Map => {
                if num_rel == 0 {
                    return 0.0;
                }
                let mut found = 0usize;
                let mut sum = 0.0;
                for (i, g) in top.iter().enumerate() {
                    if is_rel(g) {
                        found += 1;
                        sum += found as f64 / (i + 1) as f64;
                    }
                }
                sum / num_rel as f64
            }
            MetricKind::Mrr => top
                .iter()
                .position(is_rel)
                .map_or(0.0, |i| 1.0 / (i + 1) as f64),
            MetricKind::Precision => top.iter().filter(|g| is_rel(g)).count() as f64 / k as f64,
        };
        // An empty sum is -0.0 in Rust: report zero as 0.0, never -0.0.
        value + 0.0
    }
}

/// trec_eval's discount for the 0-based position `i` (rank `i + 1`): `log2(i + 2)`.
#[inline]
fn discount(i: usize) -> f64 {
    ((i + 2) as f64).log2()
}
