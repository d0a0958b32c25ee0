//! `dredge rerank` and `dredge eval --rerank` end to end, with the tiny
//! cross-encoder sentence-transformers made (tests/fixtures/cross-encoder) on the
//! bundled sample: scores are the library's, order and depth as documented, bad
//! inputs named.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dredge_core::{CorpusReader, Run};
use dredge_embed::{CrossEncoder, CrossEncoderOptions};

use crate::support::{run_err, run_ok, sample_dataset};

fn fixture_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cross-encoder")
}

/// The sample's index and a BM25 run of its test queries, 20 deep, in `dir`.
fn index_and_run(dir: &Path) -> (PathBuf, PathBuf) {
    let index = dir.join("index");
    let run = dir.join("bm25.trec");
    let data = sample_dataset();
    run_ok(&[
        "index",
        "--corpus",
        data.to_str().unwrap(),
        "--out",
        index.to_str().unwrap(),
    ]);
    run_ok(&[
        "search",
        "--index",
        index.to_str().unwrap(),
        "--queries",
        data.to_str().unwrap(),
        "-k",
        "20",
        "--out",
        run.to_str().unwrap(),
    ]);
    (index, run)
}

fn rerank(index: &Path, run: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let data = sample_dataset();
    run_ok(
        &[
            &[
                "rerank",
                "--index",
                index.to_str().unwrap(),
                "--queries",
                data.to_str().unwrap(),
                "--run",
                run.to_str().unwrap(),
                "--model",
                fixture_model().to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            extra,
        ]
        .concat(),
    )
}

/// Query texts and document texts (title + text, as the index joins them).
fn texts() -> (HashMap<String, String>, HashMap<String, String>) {
    let data = sample_dataset();
    let queries = dredge_index::load_queries(&data, Some("all"))
        .unwrap()
        .queries
        .into_iter()
        .map(|q| (q.id, q.text))
        .collect();
    let docs = CorpusReader::open(data.join("corpus.jsonl"))
        .unwrap()
        .map(|d| {
            let d = d.unwrap();
            let text = dredge_core::document_text(&d.title, &d.text);
            (d.id, text)
        })
        .collect();
    (queries, docs)
}

/// `(doc, score)` of each query, ranked as written.
fn ranked(run: &Run, qid: &str) -> Vec<(String, f64)> {
    run.get(qid)
        .unwrap()
        .iter()
        .map(|(d, e)| (d.to_owned(), e.score))
        .collect()
}

#[test]
fn rerank_scores_the_top_k_with_the_cross_encoder_and_ranks_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let (index, run_path) = index_and_run(dir.path());
    let out = dir.path().join("reranked.trec");
    let output = rerank(&index, &run_path, &out, &["-k", "5", "--batch-size", "3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reranked the top 5 of"), "{stderr}");

    let before = Run::read(&run_path).unwrap();
    let after = Run::read(&out).unwrap();
    assert_eq!(after.len(), before.len());
    let model = CrossEncoder::load(fixture_model(), &CrossEncoderOptions::default()).unwrap();
    let (queries, docs) = texts();
    for query in before.queries() {
        let original = ranked(&before, &query.qid);
        let top: Vec<&str> = original.iter().take(5).map(|(d, _)| d.as_str()).collect();
        let got = ranked(&after, &query.qid);
        assert_eq!(got.len(), top.len().min(5), "the rest is dropped");
        // The same five documents, scored by the library, best first.
        let mut got_docs: Vec<&str> = got.iter().map(|(d, _)| d.as_str()).collect();
        got_docs.sort();
        let mut want_docs = top.clone();
        want_docs.sort();
        assert_eq!(got_docs, want_docs);
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|(d, _)| (queries[&query.qid].as_str(), docs[d].as_str()))
            .collect();
        let scores = model.predict(&pairs).unwrap();
        for ((doc, score), want) in got.iter().zip(&scores) {
            assert!(
                (score - f64::from(*want)).abs() < 1e-5,
                "{doc}: {score} vs {want}"
            );
        }
        assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "ranked by score");
    }
    let text = fs_err::read_to_string(&out).unwrap();
    let first: Vec<&str> = text.lines().next().unwrap().split(' ').collect();
    assert_eq!(
        (first.len(), first[1], first[3], first[5]),
        (6, "Q0", "1", "dredge-rerank")
    );

    // --keep-rest: the same head (the same batches: the same bits), then the
    // documents below 5 in their order.
    let kept = dir.path().join("kept.trec");
    rerank(
        &index,
        &run_path,
        &kept,
        &["-k", "5", "--batch-size", "3", "--keep-rest"],
    );
    let kept = Run::read(&kept).unwrap();
    for query in before.queries() {
        let original = ranked(&before, &query.qid);
        let all = ranked(&kept, &query.qid);
        assert_eq!(all.len(), original.len());
        assert_eq!(all[..5.min(all.len())], ranked(&after, &query.qid)[..]);
        let rest: Vec<&str> = all.iter().skip(5).map(|(d, _)| d.as_str()).collect();
        let want: Vec<&str> = original.iter().skip(5).map(|(d, _)| d.as_str()).collect();
        assert_eq!(rest, want);
        if all.len() > 5 {
            // Below the last reranked score, and strictly falling: ranking by score
            // keeps them where they are.
            assert!(all[4..].windows(2).all(|w| w[0].1 > w[1].1), "{all:?}");
        }
    }
}

#[test]
fn eval_rerank_adds_a_row_per_mode_equal_to_dredge_rerank_keep_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = index_and_run(dir.path());
    let runs = dir.path().join("runs");
    let data = sample_dataset();
    let out = run_ok(&[
        "eval",
        "--dataset",
        data.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "-k",
        "30",
        "--rerank",
        fixture_model().to_str().unwrap(),
        "--rerank-depth",
        "7",
        "--save-runs",
        runs.to_str().unwrap(),
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[1].starts_with("bm25 "), "{table}");
    assert!(lines[2].starts_with("bm25+rerank "), "{table}");
    // The saved reranked run is what `dredge rerank --keep-rest` makes of the BM25 run.
    let by_command = dir.path().join("by-command.trec");
    rerank(
        &index,
        &runs.join("bm25.trec"),
        &by_command,
        &["-k", "7", "--keep-rest"],
    );
    let a = Run::read(runs.join("bm25+rerank.trec")).unwrap();
    let b = Run::read(&by_command).unwrap();
    assert_eq!(a.len(), b.len());
    for query in a.queries() {
        assert_eq!(ranked(&a, &query.qid), ranked(&b, &query.qid));
    }
    // JSON has one object per row.
    let json = run_ok(&[
        "eval",
        "--dataset",
        data.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--rerank",
        fixture_model().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        value.get("bm25").is_some() && value.get("bm25+rerank").is_some(),
        "{value}"
    );
}

#[test]
fn bad_models_runs_and_queries_are_named_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let (index, run_path) = index_and_run(dir.path());
    let data = sample_dataset();
    let out = dir.path().join("out.trec");
    let try_rerank = |model: &Path, run: &Path| {
        let err = run_err(&[
            "rerank",
            "--index",
            index.to_str().unwrap(),
            "--queries",
            data.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!out.exists(), "no output after: {err}");
        err
    };
    let copy = |name: &str| {
        let to = dir.path().join(name);
        fs_err::create_dir_all(&to).unwrap();
        for entry in fs_err::read_dir(fixture_model()).unwrap() {
            let entry = entry.unwrap();
            fs_err::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        to
    };

    // Model files missing.
    let no_weights = copy("no-weights");
    fs_err::remove_file(no_weights.join("model.safetensors")).unwrap();
    let err = try_rerank(&no_weights, &run_path);
    assert!(
        err.contains("no-weights/model.safetensors: missing the model weights"),
        "{err}"
    );
    let no_tokenizer = copy("no-tokenizer");
    fs_err::remove_file(no_tokenizer.join("tokenizer.json")).unwrap();
    let err = try_rerank(&no_tokenizer, &run_path);
    assert!(
        err.contains("no-tokenizer/tokenizer.json: missing the tokenizer"),
        "{err}"
    );

    // Two labels: a classifier, not a reranker.
    let two = copy("two-labels");
    let config = fs_err::read_to_string(two.join("config.json"))
        .unwrap()
        .replace(r#""LABEL_0": 0"#, r#""LABEL_0": 0, "LABEL_1": 1"#)
        .replace(r#""0": "LABEL_0""#, r#""0": "LABEL_0", "1": "LABEL_1""#);
    fs_err::write(two.join("config.json"), config).unwrap();
    let err = try_rerank(&two, &run_path);
    assert!(
        err.contains("two-labels/config.json: unsupported model: num_labels 2"),
        "{err}"
    );

    // A bi-encoder folder given as the cross-encoder.
    let err = try_rerank(&dir.path().join("index"), &run_path);
    assert!(
        err.contains("config.json: missing the transformer configuration"),
        "{err}"
    );

    // A run naming a document the index lacks, a query the queries lack, a bad line.
    let text = fs_err::read_to_string(&run_path).unwrap();
    let first_qid = text.split_whitespace().next().unwrap().to_owned();
    let bad_doc = dir.path().join("bad-doc.trec");
    fs_err::write(
        &bad_doc,
        format!("{text}{first_qid} Q0 no-such-doc 21 -5 x\n"),
    )
    .unwrap();
    let line = text.lines().count() + 1;
    let err = try_rerank(&fixture_model(), &bad_doc);
    assert!(
        err.contains(&format!(
            "bad-doc.trec:{line}: document `no-such-doc` is not in the index"
        )),
        "{err}"
    );
    let bad_query = dir.path().join("bad-query.trec");
    fs_err::write(&bad_query, format!("{text}ghost Q0 d1 1 3.5 x\n")).unwrap();
    let err = try_rerank(&fixture_model(), &bad_query);
    assert!(
        err.contains(&format!("bad-query.trec:{line}: query `ghost` is not in")),
        "{err}"
    );
    let bad_line = dir.path().join("bad-line.trec");
    fs_err::write(&bad_line, format!("{text}{first_qid} Q0 d1 1\n")).unwrap();
    let err = try_rerank(&fixture_model(), &bad_line);
    assert!(err.contains(&format!("bad-line.trec:{line}:")), "{err}");

    // eval --rerank with a bad model fails before searching.
    let err = run_err(&[
        "eval",
        "--dataset",
        data.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--rerank",
        two.to_str().unwrap(),
    ]);
    assert!(err.contains("num_labels 2"), "{err}");
}
