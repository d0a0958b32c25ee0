//! Hybrid retrieval, `dredge eval --dataset`, and the built-in encoder behind
//! `dredge index --model` / `dredge search --mode dense|hybrid`.

use std::path::Path;

use serde_json::Value;

use crate::support::{minilm, run_err, run_ok, sample_dataset, shared_dataset};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn metric(report: &Value, mode: &str, name: &str) -> f64 {
    report[mode][name]
        .as_f64()
        .unwrap_or_else(|| panic!("no {mode}.{name} in {report}"))
}

/// The acceptance: on SciFact test with all-MiniLM-L6-v2 (the shared
/// vectors), reciprocal rank fusion beats the better of BM25 and dense by at least
/// 0.01 nDCG@10; and the runs `--save-runs` keeps evaluate to the same numbers.
#[test]
fn scifact_hybrid_beats_bm25_and_dense() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let (vectors, ids) = (emb.join("corpus.npy"), emb.join("corpus.ids.txt"));
    let (qvectors, qids) = (emb.join("queries.npy"), emb.join("queries.ids.txt"));
    run_ok(&[
        "index",
        "--corpus",
        s(&data),
        "--out",
        s(&index),
        "--vectors",
        s(&vectors),
        "--vector-ids",
        s(&ids),
        "--ann",
        "flat",
    ]);
    let runs = tmp.path().join("runs");
    let out = run_ok(&[
        "eval",
        "--dataset",
        s(&data),
        "--index",
        s(&index),
        "--query-vectors",
        s(&qvectors),
        "--query-ids",
        s(&qids),
        "--save-runs",
        s(&runs),
        "--format",
        "json",
        "--metrics",
        "ndcg@10,recall@100",
    ]);
    let report = json(&out);
    let (bm25, dense, hybrid) = (
        metric(&report, "bm25", "ndcg@10"),
        metric(&report, "dense", "ndcg@10"),
        metric(&report, "hybrid", "ndcg@10"),
    );
    eprintln!("SciFact nDCG@10: bm25 {bm25:.4}, dense {dense:.4}, hybrid {hybrid:.4}");
    assert!(bm25 >= 0.674, "bm25 {bm25}");
    assert!((dense - 0.6451).abs() < 0.001, "dense {dense}");
    assert!(hybrid >= bm25.max(dense) + 0.01, "hybrid {hybrid}");
    assert_eq!(report["hybrid"]["queries"], 300);

    // The saved runs are the ones evaluated.
    for mode in ["bm25", "dense", "hybrid"] {
        let run = runs.join(format!("{mode}.trec"));
        let again = json(&run_ok(&[
            "eval",
            "--qrels",
            s(&data),
            "--run",
            s(&run),
            "--format",
            "json",
            "--metrics",
            "ndcg@10,recall@100",
        ]));
        for name in ["ndcg@10", "recall@100"] {
            assert_eq!(again[name], report[mode][name], "{mode} {name}");
        }
    }

    // Weighted fusion runs and is a different ranking.
    let weighted = json(&run_ok(&[
        "eval",
        "--dataset",
        s(&data),
        "--index",
        s(&index),
        "--query-vectors",
        s(&qvectors),
        "--query-ids",
        s(&qids),
        "--mode",
        "hybrid",
        "--fusion",
        "weighted",
        "--alpha",
        "0.3",
        "--normalize",
        "zscore",
        "--format",
        "json",
        "--metrics",
        "ndcg@10",
    ]));
    let w = metric(&weighted, "hybrid", "ndcg@10");
    assert!(w > bm25.max(dense), "weighted {w}");
    assert!(weighted.get("bm25").is_none(), "{weighted}");

    // A search --mode hybrid run file equals the saved hybrid run.
    let run = tmp.path().join("hybrid.trec");
    run_ok(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "hybrid",
        "--queries",
        s(&data),
        "--query-vectors",
        s(&qvectors),
        "--query-ids",
        s(&qids),
        "--out",
        s(&run),
    ]);
    assert_eq!(
        std::fs::read_to_string(&run).unwrap(),
        std::fs::read_to_string(runs.join("hybrid.trec")).unwrap()
    );

    // Text queries cannot be encoded for an index built from given vectors.
    let err = run_err(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "dense",
        "--query",
        "vitamin D",
    ]);
    assert!(
        err.contains("--query-vectors") && err.contains("--model"),
        "{err}"
    );
    let err = run_err(&[
        "eval",
        "--dataset",
        s(&data),
        "--index",
        s(&index),
        "--query-vectors",
        s(&qvectors),
        "--query-ids",
        s(&qids),
        "--mode",
        "hybrid",
        "--fusion",
        "weighted",
        "--alpha",
        "1.5",
    ]);
    assert!(err.contains("alpha"), "{err}");
}

/// `dredge index --model` encodes the corpus and records the encoder; `search
/// --mode dense|hybrid` and `eval --dataset` encode queries with it, the same way
/// `dredge embed --kind query` does.
#[test]
fn model_index_encodes_queries_like_embed() {
    let Some(model) = minilm() else {
        return;
    };
    let data = sample_dataset();
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let out = run_ok(&[
        "index",
        "--corpus",
        s(&data),
        "--out",
        s(&index),
        "--model",
        s(&model),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("encoded 101 documents"), "{stderr}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(index.join("manifest.json")).unwrap())
            .unwrap();
    let encoder = &manifest["components"]["dense"]["default"]["encoder"];
    assert_eq!(encoder["model_name"], "all-MiniLM-L6-v2", "{manifest}");
    assert_eq!(encoder["dimension"], 384);
    assert_eq!(encoder["max_length"], 256);

    // One query from the terminal, dense and hybrid.
    for mode in ["dense", "hybrid"] {
        let out = run_ok(&[
            "search",
            "--index",
            s(&index),
            "--mode",
            mode,
            "--query",
            "my sourdough starter does not rise",
            "--format",
            "json",
        ]);
        let hits = json(&out)["hits"].as_array().unwrap().clone();
        assert_eq!(hits.len(), 10, "{mode}");
        let top = format!("{} {}", hits[0]["title"], hits[0]["text"]).to_lowercase();
        assert!(
            top.contains("starter") || top.contains("sourdough"),
            "{mode}: {top}"
        );
    }

    // Queries encoded by the index's model give the run that vectors from
    // `dredge embed --kind query` give.
    let qv = tmp.path().join("q.npy");
    run_ok(&[
        "embed",
        "--model",
        s(&model),
        "--input",
        s(&data),
        "--kind",
        "query",
        "--out",
        s(&qv),
    ]);
    let (a, b) = (tmp.path().join("a.trec"), tmp.path().join("b.trec"));
    run_ok(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "dense",
        "--queries",
        s(&data),
        "--exact",
        "--out",
        s(&a),
    ]);
    run_ok(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "dense",
        "--queries",
        s(&data),
        "--exact",
        "--query-vectors",
        s(&qv),
        "--query-ids",
        s(&tmp.path().join("q.ids.txt")),
        "--out",
        s(&b),
    ]);
    let (a, b) = (
        std::fs::read_to_string(&a).unwrap(),
        std::fs::read_to_string(&b).unwrap(),
    );
    assert_eq!(
        a.lines().count(),
        10 * 101,
        "10 test queries, every document"
    );
    assert_eq!(a, b);

    // Mining with dense candidates from the index, queries encoded by its model.
    let negatives = tmp.path().join("neg.jsonl");
    run_ok(&[
        "mine",
        "--index",
        s(&index),
        "--queries",
        s(&data),
        "--split",
        "train",
        "--candidates",
        "dense",
        "--num-negatives",
        "3",
        "--out",
        s(&negatives),
    ]);
    let rows: Vec<Value> = std::fs::read_to_string(&negatives)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 20, "one row per train query");
    for row in &rows {
        let (pos, neg) = (
            row["pos_ids"].as_array().unwrap(),
            row["neg_ids"].as_array().unwrap(),
        );
        assert_eq!(neg.len(), 3, "{row}");
        assert!(neg.iter().all(|n| !pos.contains(n)), "{row}");
    }

    // One table row per mode.
    let report = json(&run_ok(&[
        "eval",
        "--dataset",
        s(&data),
        "--index",
        s(&index),
        "--format",
        "json",
    ]));
    for mode in ["bm25", "dense", "hybrid"] {
        let ndcg = metric(&report, mode, "ndcg@10");
        assert!(ndcg > 0.5, "{mode} nDCG@10 {ndcg} on the sample");
        assert_eq!(report[mode]["queries"], 10);
    }
}

#[test]
fn hybrid_needs_both_components() {
    let data = sample_dataset();
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    run_ok(&["index", "--corpus", s(&data), "--out", s(&index)]);
    let err = run_err(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "hybrid",
        "--query",
        "bread",
    ]);
    assert!(err.contains("no dense component"), "{err}");
    let err = run_err(&[
        "eval",
        "--dataset",
        s(&data),
        "--index",
        s(&index),
        "--mode",
        "dense",
    ]);
    assert!(err.contains("no dense component"), "{err}");
    // `all` on a BM25-only index evaluates BM25 and says why.
    let out = run_ok(&["eval", "--dataset", s(&data), "--index", s(&index)]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.lines().any(|l| l.starts_with("bm25 ")), "{stdout}");
    assert!(!stdout.contains("dense"), "{stdout}");
    assert!(stderr.contains("no dense component"), "{stderr}");
    let err = run_err(&["eval", "--dataset", s(&data)]);
    assert!(err.contains("--index"), "{err}");
    let err = run_err(&[
        "index",
        "--corpus",
        s(&data),
        "--out",
        s(&tmp.path().join("x")),
        "--no-bm25",
    ]);
    assert!(err.contains("--no-bm25"), "{err}");
}
