//! Crafted cases with hand-computed values.

use dredge_core::{Qrels, Run};
use proptest::prelude::*;

use crate::{EvalOptions, Metric, evaluate};

fn qrels(rows: &[(&str, &str, i32)]) -> Qrels {
    let mut q = Qrels::new();
    for (qid, doc, grade) in rows {
        q.insert(qid, doc, *grade);
    }
    q
}

fn run(rows: &[(&str, &str, f64)]) -> Run {
    let mut r = Run::new();
    for (qid, doc, score) in rows {
        r.push(qid, doc, *score);
    }
    r
}

fn means(q: &Qrels, r: &Run, metrics: &str, options: EvalOptions) -> Vec<f64> {
    evaluate(q, r, &Metric::parse_list(metrics).unwrap(), &options).means
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} != {b:?}");
    }
}

#[test]
fn ties_break_by_doc_id_descending() {
    let q = qrels(&[("q", "d1", 1)]);
    let r = run(&[("q", "d1", 1.0), ("q", "d2", 1.0), ("q", "d3", 2.0)]);
    // Order: d3 (2.0), then the tie d2, d1.
    close(
        &means(
            &q,
            &r,
            "mrr@10,p@1,recall@2,recall@3",
            EvalOptions::default(),
        ),
        &[1.0 / 3.0, 0.0, 0.0, 1.0],
    );
}

#[test]
fn ties_are_judged_at_float32_precision() {
    let q = qrels(&[("q", "a", 1)]);
    // 1.000000001 and 1.0 are the same 32-bit float: a tie, so "b" > "a" goes first.
    let r = run(&[("q", "a", 1.000_000_001), ("q", "b", 1.0)]);
    close(&means(&q, &r, "mrr@10", EvalOptions::default()), &[0.5]);
}

#[test]
fn ndcg_uses_linear_gains_and_ideal_from_qrels() {
    let q = qrels(&[("q", "a", 2), ("q", "b", 1), ("q", "c", 0), ("q", "z", 3)]);
    let r = run(&[
        ("q", "b", 3.0),
        ("q", "a", 2.0),
        ("q", "c", 1.0),
        ("q", "x", 0.5),
    ]);
    let l = |x: f64| x.log2();
    let dcg3 = 1.0 / l(2.0) + 2.0 / l(3.0);
    let idcg3 = 3.0 / l(2.0) + 2.0 / l(3.0) + 1.0 / l(4.0);
    let idcg1 = 3.0;
    close(
        &means(&q, &r, "ndcg@3,ndcg@1", EvalOptions::default()),
        &[dcg3 / idcg3, 1.0 / idcg1],
    );
}

#[test]
fn recall_map_precision_over_all_relevant() {
    let q = qrels(&[("q", "a", 1), ("q", "b", 1), ("q", "c", 1), ("q", "n", 0)]);
    let r = run(&[
        ("q", "a", 5.0),
        ("q", "n", 4.0),
        ("q", "b", 3.0),
        ("q", "x", 2.0),
    ]);
    // Relevant at ranks 1 and 3 of 3 relevant.
    let ap = (1.0 / 1.0 + 2.0 / 3.0) / 3.0;
    close(
        &means(
            &q,
            &r,
            "recall@2,recall@10,map@10,map@1,p@3,p@10",
            EvalOptions::default(),
        ),
        &[1.0 / 3.0, 2.0 / 3.0, ap, 1.0 / 3.0, 2.0 / 3.0, 0.2],
    );
}

#[test]
fn identical_ids_are_ignored_by_default() {
    let q = qrels(&[("q1", "d1", 1)]);
    let r = run(&[("q1", "q1", 9.0), ("q1", "d1", 1.0)]);
    close(&means(&q, &r, "mrr@10", EvalOptions::default()), &[1.0]);
    let keep = EvalOptions {
        ignore_identical_ids: false,
        ..Default::default()
    };
    close(&means(&q, &r, "mrr@10", keep), &[0.5]);
}

#[test]
fn averages_over_queries_in_both_unless_missing_as_zero() {
    let q = qrels(&[("q1", "d1", 1), ("q2", "d1", 1), ("q3", "d9", 0)]);
    let r = run(&[("q1", "d1", 1.0), ("q3", "d9", 1.0), ("q4", "d1", 1.0)]);
    let eval = evaluate(
        &q,
        &r,
        &Metric::parse_list("p@1").unwrap(),
        &EvalOptions::default(),
    );
    // q1 scores 1, q3 (no relevant document) scores 0; q2 and q4 are not averaged.
    assert_eq!(eval.queries(), 2);
    close(&eval.means, &[0.5]);
    assert_eq!(
        (
            eval.run_queries_without_qrels,
            eval.qrels_queries_without_run
        ),
        (1, 1)
    );
    let c = EvalOptions {
        missing_as_zero: true,
        ..Default::default()
    };
    let eval = evaluate(&q, &r, &Metric::parse_list("p@1").unwrap(), &c);
    assert_eq!(eval.queries(), 3);
    close(&eval.means, &[1.0 / 3.0]);
}

#[test]
fn report_formats() {
    let q = qrels(&[("q1", "d1", 1)]);
    let r = run(&[("q1", "d1", 1.0)]);
    let eval = evaluate(
        &q,
        &r,
        &Metric::parse_list("ndcg@10,recall@100").unwrap(),
        &EvalOptions::default(),
    );
    let json = crate::json(&eval, false);
    assert_eq!(
        json.to_string(),
        r#"{"ndcg@10":1.0,"recall@100":1.0,"queries":1}"#
    );
    let table = crate::table(&eval);
    assert!(
        table.contains("nDCG    1.0000") && table.ends_with("queries: 1\n"),
        "{table}"
    );
}

proptest! {
    #[test]
    fn metrics_are_bounded_and_recall_grows_with_k(
        grades in prop::collection::vec(-1i32..4, 1..30),
        scores in prop::collection::vec(0u8..10, 1..40),
    ) {
        let mut q = Qrels::new();
        for (i, g) in grades.iter().enumerate() {
            q.insert("q", &format!("d{i}"), *g);
        }
        let mut r = Run::new();
        for (i, s) in scores.iter().enumerate() {
            r.push("q", &format!("d{i}"), *s as f64);
        }
        let metrics = Metric::parse_list("ndcg@1,ndcg@5,ndcg@100,recall@1,recall@5,recall@100,map@100,mrr@100,p@5").unwrap();
        let m = evaluate(&q, &r, &metrics, &EvalOptions::default()).means;
        for v in &m {
            prop_assert!((0.0..=1.0 + 1e-12).contains(v), "{m:?}");
        }
        prop_assert!(m[3] <= m[4] && m[4] <= m[5]);
    }
}
