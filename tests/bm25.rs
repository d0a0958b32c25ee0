//! `dredge index` / `dredge search` / `dredge quickstart` end to end: retrieval
//! quality against Pyserini's published BM25 numbers on the real collections, and
//! the behaviour on bad or odd input.

use std::path::{Path, PathBuf};

use dredge_core::{Qrels, Run};
use dredge_eval::{EvalOptions, Metric, evaluate};

use crate::support::{run_err, run_ok, sample_dataset, shared_dataset};

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Builds an index of `dataset` (k1 = 0.9, b = 0.4), searches its test queries
/// for the top 1000 and returns nDCG@10 and Recall@100, printing what it got.
fn bm25_quality(name: &str, dataset: &Path) -> (f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let run_path = tmp.path().join("run.trec");
    run_ok(&[
        "index",
        "--corpus",
        path_str(dataset),
        "--out",
        path_str(&index),
        "--k1",
        "0.9",
        "--b",
        "0.4",
    ]);
    let out = run_ok(&[
        "search",
        "--index",
        path_str(&index),
        "--queries",
        path_str(dataset),
        "--split",
        "test",
        "-k",
        "1000",
        "--out",
        path_str(&run_path),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("queries/s"),
        "throughput is reported: {stderr}"
    );
    let qrels = Qrels::read(dataset.join("qrels/test.tsv")).unwrap();
    let run = Run::read(&run_path).unwrap();
    assert!(run.queries().iter().all(|q| q.entries.len() <= 1000));
    let metrics = Metric::parse_list("ndcg@10,recall@100").unwrap();
    let eval = evaluate(&qrels, &run, &metrics, &EvalOptions::default());
    let (ndcg, recall) = (eval.means[0], eval.means[1]);
    eprintln!(
        "{name}: BM25 k1=0.9 b=0.4 nDCG@10 {ndcg:.4} Recall@100 {recall:.4} over {} queries",
        eval.queries()
    );
    (ndcg, recall)
}

#[test]
fn scifact_matches_pyserini() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let (ndcg, recall) = bm25_quality("scifact", &data);
    // Pyserini (Lucene, flat index, k1=0.9, b=0.4): 0.6789 / 0.9253.
    assert!(ndcg >= 0.674, "SciFact nDCG@10 {ndcg:.4} < 0.674");
    assert!(recall >= 0.915, "SciFact Recall@100 {recall:.4} < 0.915");
}

#[test]
fn cranfield_matches_pyserini() {
    let Some(data) = shared_dataset("cranfield") else {
        return;
    };
    let (ndcg, _) = bm25_quality("cranfield", &data);
    // Pyserini: 0.3506.
    assert!(ndcg >= 0.345, "Cranfield nDCG@10 {ndcg:.4} < 0.345");
}

#[test]
fn med_matches_pyserini() {
    let Some(data) = shared_dataset("med") else {
        return;
    };
    let (ndcg, _) = bm25_quality("med", &data);
    // Pyserini: 0.6652.
    assert!(ndcg >= 0.660, "MED nDCG@10 {ndcg:.4} < 0.660");
}

/// A small corpus written into a temp folder.
struct Corpus {
    dir: tempfile::TempDir,
}

impl Corpus {
    fn new(lines: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("corpus.jsonl"), lines.join("\n") + "\n").unwrap();
        Corpus { dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("corpus.jsonl")
    }

    fn index(&self) -> PathBuf {
        let index = self.dir.path().join("index");
        run_ok(&[
            "index",
            "--corpus",
            path_str(&self.file()),
            "--out",
            path_str(&index),
        ]);
        index
    }
}

const SMALL: [&str; 4] = [
    r#"{"_id": "bees", "title": "Honeybees", "text": "Worker bees dance to show where the flowers are."}"#,
    r#"{"_id": "bread", "title": "Sourdough", "text": "Feed the starter flour and water every day."}"#,
    r#"{"_id": "empty", "title": "Volcanic ash"}"#,
    r#"{"_id": "rust", "title": "Rust", "text": "Ownership and borrowing keep Rust programs memory safe."}"#,
];

fn manifest(index: &Path) -> serde_json::Value {
    serde_json::from_str(&fs_err::read_to_string(index.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn index_folder_has_manifest_docs_and_bm25() {
    let corpus = Corpus::new(&SMALL);
    let index = corpus.index();
    let m = manifest(&index);
    assert_eq!(m["format"], "dredge-index");
    assert_eq!(m["format_version"], 2);
    assert_eq!(m["dredge_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["corpus"]["documents"], 4);
    assert!(
        m["corpus"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("fnv1a64:")
    );
    let bm25 = &m["components"]["bm25"];
    assert_eq!(
        (
            bm25["path"].as_str(),
            bm25["k1"].as_f64(),
            bm25["b"].as_f64()
        ),
        (Some("bm25"), Some(0.9), Some(0.4))
    );
    assert_eq!(bm25["analyzer"]["name"], "lucene-english-porter");
    assert!(index.join("docs.bin").is_file() && index.join("bm25/dredge-bm25.json").is_file());
    // Nothing but the index is left beside it (no temporary folders).
    let names: Vec<String> = fs_err::read_dir(corpus.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // The same corpus gives the same fingerprint.
    let again = corpus.dir.path().join("again");
    run_ok(&[
        "index",
        "--corpus",
        path_str(&corpus.file()),
        "--out",
        path_str(&again),
        "--k1",
        "1.2",
        "--b",
        "0.75",
    ]);
    assert_eq!(
        manifest(&again)["corpus"]["fingerprint"],
        m["corpus"]["fingerprint"]
    );
    assert_eq!(
        manifest(&again)["components"]["bm25"]["k1"].as_f64(),
        Some(1.2)
    );
}

#[test]
fn document_without_text_is_indexed_and_counted() {
    let corpus = Corpus::new(&SMALL);
    let index = corpus.index();
    assert_eq!(manifest(&index)["corpus"]["empty_texts"], 1);
    let out = run_ok(&[
        "search",
        "--index",
        path_str(&index),
        "--query",
        "volcanic ash",
        "--format",
        "json",
    ]);
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits["hits"][0]["id"], "empty", "found by its title: {hits}");
    assert_eq!(hits["hits"][0]["text"], "");
}

#[test]
fn single_query_prints_rank_id_score_and_text() {
    let corpus = Corpus::new(&SMALL);
    let index = corpus.index();
    let out = run_ok(&[
        "search",
        "--index",
        path_str(&index),
        "--query",
        "where do bees find flowers?",
        "-k",
        "3",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("rank") && lines[0].contains("score"),
        "{stdout}"
    );
    assert_eq!(
        lines.len(),
        2,
        "one header and one hit (only one document matches): {stdout}"
    );
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cols[..2], ["1", "bees"]);
    assert!(cols[2].parse::<f32>().unwrap() > 0.0);
    assert!(
        lines[1].contains("Honeybees — Worker bees dance"),
        "{stdout}"
    );
}

#[test]
fn empty_and_stop_word_queries_find_nothing() {
    let corpus = Corpus::new(&SMALL);
    let index = corpus.index();
    for query in ["", "the and of", "To be or not to be, that is"] {
        let out = run_ok(&["search", "--index", path_str(&index), "--query", query]);
        assert!(
            out.stdout.is_empty(),
            "{query:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("no document matches"));
    }
    let queries = corpus.dir.path().join("queries.jsonl");
    fs_err::write(
        &queries,
        "{\"_id\": \"q1\", \"text\": \"the\"}\n{\"_id\": \"q2\", \"text\": \"sourdough\"}\n",
    )
    .unwrap();
    let run_path = corpus.dir.path().join("run.trec");
    run_ok(&[
        "search",
        "--index",
        path_str(&index),
        "--queries",
        path_str(&queries),
        "--out",
        path_str(&run_path),
    ]);
    let run = fs_err::read_to_string(&run_path).unwrap();
    assert_eq!(run.lines().count(), 1, "{run}");
    assert!(run.starts_with("q2 Q0 bread 1 "), "{run}");
    assert!(run.trim_end().ends_with(" dredge-bm25"), "{run}");
}

#[test]
fn duplicate_document_id_names_both_lines() {
    let corpus = Corpus::new(&[SMALL[0], SMALL[1], r#"{"_id": "bees", "text": "again"}"#]);
    let out = corpus.dir.path().join("index");
    let err = run_err(&[
        "index",
        "--corpus",
        path_str(&corpus.file()),
        "--out",
        path_str(&out),
    ]);
    assert!(
        err.contains("corpus.jsonl:3: duplicate document id `bees` (first seen on line 1)"),
        "{err}"
    );
    assert!(!out.exists(), "a failed build leaves no index");
    assert_eq!(
        fs_err::read_dir(corpus.dir.path()).unwrap().count(),
        1,
        "and no temporary folder"
    );
}

#[test]
fn not_an_index_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_err(&["search", "--index", path_str(dir.path()), "--query", "bees"]);
    assert!(
        err.contains("not a dredge index: it has no manifest.json"),
        "{err}"
    );
    let err = run_err(&[
        "search",
        "--index",
        path_str(&dir.path().join("missing")),
        "--query",
        "bees",
    ]);
    assert!(err.contains("no such index"), "{err}");

    let corpus = Corpus::new(&SMALL);
    let index = corpus.index();
    let manifest_path = index.join("manifest.json");
    let text = fs_err::read_to_string(&manifest_path).unwrap();
    fs_err::write(
        &manifest_path,
        text.replace("\"format_version\": 2", "\"format_version\": 42"),
    )
    .unwrap();
    let err = run_err(&["search", "--index", path_str(&index), "--query", "bees"]);
    assert!(
        err.contains("index format version 42, but this dredge"),
        "{err}"
    );
    fs_err::write(&manifest_path, "{\"hello\": 1}").unwrap();
    let err = run_err(&["search", "--index", path_str(&index), "--query", "bees"]);
    assert!(err.contains("not a dredge index manifest"), "{err}");
}

#[test]
fn existing_output_needs_overwrite_and_must_be_an_index() {
    let corpus = Corpus::new(&SMALL);
    let index = corpus.index();
    let err = run_err(&[
        "index",
        "--corpus",
        path_str(&corpus.file()),
        "--out",
        path_str(&index),
    ]);
    assert!(
        err.contains("already exists (pass --overwrite to replace it)"),
        "{err}"
    );
    run_ok(&[
        "index",
        "--corpus",
        path_str(&corpus.file()),
        "--out",
        path_str(&index),
        "--overwrite",
    ]);
    // --overwrite never deletes a folder that is not an index.
    let precious = corpus.dir.path().join("precious");
    fs_err::create_dir(&precious).unwrap();
    fs_err::write(precious.join("notes.txt"), "keep me").unwrap();
    let err = run_err(&[
        "index",
        "--corpus",
        path_str(&corpus.file()),
        "--out",
        path_str(&precious),
        "--overwrite",
    ]);
    assert!(
        err.contains("is not a dredge index; --overwrite only replaces an index"),
        "{err}"
    );
    assert!(precious.join("notes.txt").is_file());
}

#[test]
fn queries_of_a_beir_folder_follow_the_split() {
    let data = sample_dataset();
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    run_ok(&[
        "index",
        "--corpus",
        path_str(&data),
        "--out",
        path_str(&index),
    ]);
    let count = |split: &str| {
        let run_path = tmp.path().join(format!("{split}.trec"));
        run_ok(&[
            "search",
            "--index",
            path_str(&index),
            "--queries",
            path_str(&data),
            "--split",
            split,
            "-k",
            "5",
            "--out",
            path_str(&run_path),
        ]);
        Run::read(&run_path).unwrap().len()
    };
    assert_eq!(count("test"), 10);
    assert_eq!(count("train"), 20);
    assert_eq!(count("all"), 30);
    let err = run_err(&[
        "search",
        "--index",
        path_str(&index),
        "--queries",
        path_str(&data),
        "--split",
        "dev",
    ]);
    assert!(err.contains("no qrels for split `dev`"), "{err}");
    let err = run_err(&[
        "search",
        "--index",
        path_str(&index),
        "--queries",
        path_str(&data.join("queries.jsonl")),
        "--split",
        "test",
    ]);
    assert!(
        err.contains("--split picks queries of a BEIR folder"),
        "{err}"
    );
}

#[test]
fn search_parameters_can_be_overridden() {
    let data = sample_dataset();
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    run_ok(&[
        "index",
        "--corpus",
        path_str(&data),
        "--out",
        path_str(&index),
    ]);
    let top = |extra: &[&str]| {
        let out = run_ok(
            &[
                &[
                    "search",
                    "--index",
                    path_str(&index),
                    "--query",
                    "solar battery storage",
                    "--format",
                    "json",
                ],
                extra,
            ]
            .concat(),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["hits"][0]["score"].as_f64().unwrap()
    };
    assert_ne!(top(&[]), top(&["--k1", "1.2", "--b", "0.75"]));
    assert_eq!(top(&[]), top(&["--k1", "0.9", "--b", "0.4"]));
    let err = run_err(&[
        "search",
        "--index",
        path_str(&index),
        "--query",
        "x",
        "--b",
        "2",
    ]);
    assert!(err.contains("b must be between 0 and 1"), "{err}");
}

#[test]
fn quickstart_runs_anywhere_and_prints_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("qs");
    let out = crate::support::dredge()
        .args(["quickstart", "--dir", path_str(&dir)])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The table: a header and a BM25 row over the 10 test queries.
    let bm25_row = stdout
        .lines()
        .find(|l| l.starts_with("bm25 "))
        .unwrap_or_else(|| panic!("no bm25 row in {stdout}"));
    assert!(stdout.contains("nDCG@10"), "{stdout}");
    assert!(bm25_row.trim_end().ends_with(" 10"), "{bm25_row}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no --model"), "{stderr}");
    assert!(dir.join("index/manifest.json").is_file() && dir.join("runs/bm25.trec").is_file());
    // Negatives mined from the train split: one JSON line per train query with negatives.
    let negatives = std::fs::read_to_string(dir.join("negatives.jsonl")).unwrap();
    assert!(negatives.lines().count() >= 15, "{negatives}");
    assert!(dir.join("mine-report.html").is_file());
    // A second run replaces its own index.
    let again = crate::support::dredge()
        .args(["quickstart", "--dir", path_str(&dir)])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        stdout,
        "same numbers on a rebuild"
    );
}

/// Threads asked beyond the cores are capped (100,000 once started 100,000 threads),
/// for `search` and `mine` alike.
#[test]
fn threads_beyond_the_cores_are_capped() {
    let data = sample_dataset();
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    run_ok(&[
        "index",
        "--corpus",
        path_str(&data),
        "--out",
        path_str(&index),
    ]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = run_ok(&[
        "search",
        "--index",
        path_str(&index),
        "--queries",
        path_str(&data),
        "--threads",
        "100000",
        "--out",
        path_str(&dir.path().join("run.trec")),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let threads = format!(" on {cores} thread{}", if cores == 1 { "" } else { "s" });
    assert!(stderr.contains(&threads), "{stderr}");
    run_ok(&[
        "mine",
        "--index",
        path_str(&index),
        "--queries",
        path_str(&data),
        "--threads",
        "100000",
        "--out",
        path_str(&dir.path().join("neg.jsonl")),
    ]);
}
