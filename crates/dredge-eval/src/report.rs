//! Presenting an [`Evaluation`]: a table for people, JSON for programs.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::evaluate::Evaluation;
use crate::metric::MetricKind;

/// The evaluation as an aligned table: a row per measure, a column per cutoff,
/// values to 4 decimals, then the number of queries averaged over.
///
/// ```text
///            @1      @3      @5     @10    @100   @1000
/// nDCG   0.5467  0.6123  0.6341  0.6533  0.6870  0.6925
/// ```
pub fn table(eval: &Evaluation) -> String {
    let ks: BTreeSet<usize> = eval.metrics.iter().map(|m| m.k).collect();
    let mut kinds: Vec<MetricKind> = Vec::new();
    for m in &eval.metrics {
        if !kinds.contains(&m.kind) {
            kinds.push(m.kind);
        }
    }
    let headers: Vec<String> = ks.iter().map(|k| format!("@{k}")).collect();
    let width = headers.iter().map(String::len).max().unwrap_or(0).max(6);
    let label_width = kinds
        .iter()
        .map(|k| k.label().len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = String::new();
    let _ = write!(out, "{:label_width$}", "");
    for h in &headers {
        let _ = write!(out, "  {h:>width$}");
    }
    out.push('\n');
    for kind in kinds {
        let _ = write!(out, "{:label_width$}", kind.label());
        for &k in &ks {
            match eval.metrics.iter().position(|m| m.kind == kind && m.k == k) {
                Some(i) => {
                    let _ = write!(out, "  {:>width$.4}", eval.means[i]);
                }
                None => {
                    let _ = write!(out, "  {:>width$}", "");
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "queries: {}", eval.queries());
    out
}

/// Per-query values, one line each in trec_eval's `-q` layout:
/// `metric<TAB>qid<TAB>value`.
pub fn per_query_lines(eval: &Evaluation) -> String {
    let mut out = String::new();
    for q in &eval.per_query {
        for (m, v) in eval.metrics.iter().zip(&q.values) {
            let _ = writeln!(out, "{m}\t{}\t{v:.4}", q.qid);
        }
    }
    out
}

/// The evaluation as one JSON object: a key per metric (`"ndcg@10"`) holding its
/// mean, `"queries"`, and with `per_query` a `"per_query"` object of objects.
pub fn json(eval: &Evaluation, per_query: bool) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    for (m, v) in eval.metrics.iter().zip(&eval.means) {
        obj.insert(m.to_string(), (*v).into());
    }
    obj.insert("queries".into(), eval.queries().into());
    if per_query {
        let mut queries = serde_json::Map::new();
        for q in &eval.per_query {
            let values: serde_json::Map<String, serde_json::Value> = eval
                .metrics
                .iter()
                .zip(&q.values)
                .map(|(m, v)| (m.to_string(), (*v).into()))
                .collect();
            queries.insert(q.qid.clone(), values.into());
        }
        obj.insert("per_query".into(), queries.into());
    }
    obj.into()
}
