//! `dredge mine` end to end: on the sample collection, and on SciFact train
//! (no negative is a known positive; a seed reproduces the same bytes).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::support::{minilm, rows, run_err, run_ok, s, sample_dataset, shared_dataset, strings};

fn build_index(corpus: &Path, dir: &Path) -> PathBuf {
    let index = dir.join("index");
    run_ok(&["index", "--corpus", s(corpus), "--out", s(&index)]);
    index
}

/// qid -> positives (grade > 0) of a BEIR qrels file.
fn positives(qrels: &Path) -> HashMap<String, HashSet<String>> {
    let mut map: HashMap<String, HashSet<String>> = HashMap::new();
    for line in fs_err::read_to_string(qrels).unwrap().lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() == 3 && cols[2].parse::<i32>().unwrap() > 0 {
            map.entry(cols[0].to_owned())
                .or_default()
                .insert(cols[1].to_owned());
        }
    }
    map
}

/// Every row's negatives avoid its query's positives; returns the number of rows.
fn assert_no_known_positive(out: &Path, known: &HashMap<String, HashSet<String>>) -> usize {
    let rows = rows(out);
    for row in &rows {
        let qid = row["qid"].as_str().unwrap();
        let pos = &known[qid];
        for neg in strings(&row["neg_ids"]) {
            assert!(
                !pos.contains(&neg),
                "query {qid}: negative {neg} is a known positive"
            );
        }
    }
    rows.len()
}

#[test]
fn sample_end_to_end_with_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_dataset();
    let index = build_index(&data, dir.path());
    let out = dir.path().join("negatives.jsonl");
    let report = dir.path().join("report.json");
    let svg = dir.path().join("scores.svg");
    let html = dir.path().join("report.html");
    let run = run_ok(&[
        "mine",
        "--index",
        s(&index),
        "--queries",
        s(&data),
        "--split",
        "train",
        "--out",
        s(&out),
        "-n",
        "5",
        "--margin",
        "0.5",
        "--report",
        s(&report),
        "--report-svg",
        s(&svg),
        "--report-html",
        s(&html),
    ]);
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(
        stderr.contains("dropped by filter:") && stderr.contains("known_positive"),
        "{stderr}"
    );
    let known = positives(&data.join("qrels/train.tsv"));
    assert_eq!(assert_no_known_positive(&out, &known), known.len());
    for row in rows(&out) {
        assert!(strings(&row["neg_ids"]).len() <= 5);
        let qid = row["qid"].as_str().unwrap();
        let pos: HashSet<String> = strings(&row["pos_ids"]).into_iter().collect();
        assert_eq!(&pos, &known[qid]);
        assert_eq!(
            row["neg"].as_array().unwrap().len(),
            row["neg_scores"].as_array().unwrap().len()
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["queries"]["mined"], known.len());
    assert_eq!(report["filter_order"], "sentence-transformers");
    assert_eq!(report["retriever"], "bm25");
    let drops = &report["drops"];
    let dropped: u64 = drops
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(drops["known_positive"].as_u64().unwrap() > 0);
    assert!(drops["margin"].as_u64().unwrap() > 0, "{drops}");
    let negatives: u64 = report["negatives"].as_u64().unwrap();
    assert_eq!(
        report["candidates"].as_u64().unwrap(),
        dropped + negatives + report["not_sampled"].as_u64().unwrap(),
        "every candidate is dropped, written or not sampled"
    );
    assert!(fs_err::read_to_string(&svg).unwrap().starts_with("<svg"));
    assert!(fs_err::read_to_string(&html).unwrap().contains("<svg"));
}

#[test]
fn pairs_input_matches_the_corpus_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_dataset();
    let index = build_index(&data, dir.path());
    // d001's title + text, re-spaced and upper-cased: found in the corpus by normalised text.
    let corpus = fs_err::read_to_string(data.join("corpus.jsonl")).unwrap();
    let d001: serde_json::Value = serde_json::from_str(corpus.lines().next().unwrap()).unwrap();
    let text = format!(
        "{}   {}",
        d001["title"].as_str().unwrap(),
        d001["text"].as_str().unwrap()
    )
    .to_uppercase();
    let pairs = dir.path().join("pairs.jsonl");
    let rows_in = [
        serde_json::json!({"query": "sourdough starter not rising", "pos": [text, "a passage that is nowhere in the corpus"]}),
        serde_json::json!({"query": "how long to proof bread dough", "pos": ["another outside passage"], "qid": "p2"}),
    ];
    fs_err::write(
        &pairs,
        rows_in
            .iter()
            .map(|r| r.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("negatives.jsonl");
    let run = run_ok(&[
        "mine",
        "--index",
        s(&index),
        "--pairs",
        s(&pairs),
        "--out",
        s(&out),
        "-n",
        "3",
    ]);
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(
        stderr.contains("1 positives found in the corpus by text, 2 kept as external positives"),
        "{stderr}"
    );
    let got = rows(&out);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["qid"], "1");
    assert_eq!(got[0]["pos_ids"], serde_json::json!(["d001", null]));
    assert!(!strings(&got[0]["neg_ids"]).contains(&"d001".to_owned()));
    assert_eq!(got[1]["qid"], "p2");
}

#[test]
fn malformed_pairs_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let index = build_index(&sample_dataset(), dir.path());
    let pairs = dir.path().join("pairs.jsonl");
    fs_err::write(
        &pairs,
        "{\"query\": \"q\", \"pos\": [\"p\"]}\n{\"query\": \"q\", \"pos\": 3}\n",
    )
    .unwrap();
    let out = dir.path().join("negatives.jsonl");
    let err = run_err(&[
        "mine",
        "--index",
        s(&index),
        "--pairs",
        s(&pairs),
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains(&format!(
            "{}:2: `pos` must be a list of strings, found a number",
            pairs.display()
        )),
        "{err}"
    );
    assert!(!out.exists(), "no partial output");
}

#[test]
fn bad_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample_dataset();
    let index = build_index(&data, dir.path());
    let out = dir.path().join("n.jsonl");
    let base = [
        "mine",
        "--index",
        s(&index),
        "--queries",
        s(&data),
        "--out",
        s(&out),
    ];
    let cases: [(&[&str], &str); 5] = [
        (&["--range", "5:5"], "rank range `5:5` is empty"),
        (
            &["--range", "300:", "--depth", "200"],
            "starts at or past the candidate depth",
        ),
        (
            &["--relative-margin", "2"],
            "--relative-margin must be in [0, 1]",
        ),
        (&["--candidates", "dense"], "dense"),
        (&["--split", "dev"], "no qrels for split `dev`"),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let err = run_err(&args);
        assert!(
            err.contains(expected),
            "{args:?}: {err:?} lacks {expected:?}"
        );
    }
}

/// SciFact train (shared data): every query mined, no negative is a known
/// positive, and a seed reproduces the bytes whatever the number of threads.
#[test]
fn scifact_train_no_known_positive_and_seeded_bytes() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let index = build_index(&data, dir.path());
    let known = positives(&data.join("qrels/train.tsv"));
    let mine = |out: &Path, threads: &str, extra: &[&str]| {
        let mut args = vec![
            "mine",
            "--index",
            s(&index),
            "--queries",
            s(&data),
            "--split",
            "train",
            "--out",
            s(out),
            "--threads",
            threads,
        ];
        args.extend_from_slice(extra);
        run_ok(&args)
    };
    let random = [
        "--sampling",
        "random",
        "--seed",
        "7",
        "--relative-margin",
        "0.05",
        "--range",
        "5:100",
    ];
    let (a, b, c) = (
        dir.path().join("a.jsonl"),
        dir.path().join("b.jsonl"),
        dir.path().join("c.jsonl"),
    );
    mine(&a, "1", &random);
    mine(&b, "2", &random);
    assert_eq!(assert_no_known_positive(&a, &known), known.len());
    assert!(
        fs_err::read(&a).unwrap() == fs_err::read(&b).unwrap(),
        "same seed, different bytes"
    );
    let other_seed: Vec<&str> = random
        .iter()
        .map(|&x| if x == "7" { "8" } else { x })
        .collect();
    mine(&c, "2", &other_seed);
    assert!(
        fs_err::read(&a).unwrap() != fs_err::read(&c).unwrap(),
        "a different seed drew the same negatives"
    );

    // The two filter orders, default settings otherwise: both avoid positives, and they differ.
    let (st, fe) = (dir.path().join("st.jsonl"), dir.path().join("fe.jsonl"));
    mine(&st, "2", &["--range", "10:60"]);
    mine(
        &fe,
        "2",
        &["--range", "10:60", "--filter-order", "flagembedding"],
    );
    assert_no_known_positive(&st, &known);
    assert_no_known_positive(&fe, &known);
    let negs = |p: &Path| {
        rows(p)
            .iter()
            .map(|r| strings(&r["neg_ids"]))
            .collect::<Vec<_>>()
    };
    let (st, fe) = (negs(&st), negs(&fe));
    let same = st.iter().zip(&fe).filter(|(a, b)| a == b).count();
    assert!(
        same < st.len(),
        "the filter orders gave identical negatives for every query"
    );

    // Dense and hybrid candidates from the shared MiniLM vectors.
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let (corpus_npy, queries_npy) = (emb.join("corpus.npy"), emb.join("queries.npy"));
    for cand in ["dense", "hybrid"] {
        let out = dir.path().join(format!("{cand}.jsonl"));
        let vectors = [
            "--candidates",
            cand,
            "--doc-vectors",
            s(&corpus_npy),
            "--query-vectors",
            s(&queries_npy),
        ];
        let extra: Vec<&str> = vectors
            .iter()
            .copied()
            .chain(["--relative-margin", "0.05"])
            .collect();
        mine(&out, "2", &extra);
        assert_eq!(
            assert_no_known_positive(&out, &known),
            known.len(),
            "{cand}"
        );
    }
}

/// The documents of a TREC run, in rank order, per query.
fn run_docs(path: &Path) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    for line in fs_err::read_to_string(path).unwrap().lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        map.entry(cols[0].to_owned())
            .or_default()
            .push((cols[3].parse().unwrap(), cols[2].to_owned()));
    }
    map.into_iter()
        .map(|(q, mut docs)| {
            docs.sort();
            (q, docs.into_iter().map(|(_, d)| d).collect())
        })
        .collect()
}

/// Mines `index` with `--candidates mode` and `flags` (5 negatives from the top 30, no
/// filter), searches it with the same flags, and checks that each query's negatives
/// are the first documents of the run that are not its positives. `search_only` are
/// flags whose default differs between the two (search's dense default is HNSW, the
/// miner's exact).
fn assert_mine_follows_search(
    index: &Path,
    data: &Path,
    split: &str,
    mode: &str,
    flags: &[&str],
    search_only: &[&str],
) {
    let known = positives(&data.join(format!("qrels/{split}.tsv")));
    let dir = tempfile::tempdir().unwrap();
    let (run, mined) = (dir.path().join("run.trec"), dir.path().join("neg.jsonl"));
    let depth = "30";
    let mut search = vec![
        "search",
        "--index",
        s(index),
        "--queries",
        s(data),
        "--split",
        split,
        "--mode",
        mode,
        "-k",
        depth,
        "--out",
        s(&run),
    ];
    if mode == "hybrid" {
        search.extend_from_slice(&["--depth", depth]);
    }
    search.extend_from_slice(search_only);
    search.extend_from_slice(flags);
    let mut mine = vec![
        "mine",
        "--index",
        s(index),
        "--queries",
        s(data),
        "--split",
        split,
        "--candidates",
        mode,
        "--depth",
        depth,
        "-n",
        "5",
        "--format",
        "ids",
        "--out",
        s(&mined),
    ];
    mine.extend_from_slice(flags);
    run_ok(&search);
    run_ok(&mine);
    let ranked = run_docs(&run);
    let rows = rows(&mined);
    assert_eq!(rows.len(), known.len(), "{flags:?}");
    for row in &rows {
        let qid = row["qid"].as_str().unwrap();
        let expected: Vec<String> = ranked[qid]
            .iter()
            .filter(|d| !known[qid].contains(*d))
            .take(5)
            .cloned()
            .collect();
        assert_eq!(strings(&row["neg_ids"]), expected, "{flags:?}, query {qid}");
    }
}

/// `mine` takes every flag `search` takes for its candidates, and they mean the same
/// (see [`assert_mine_follows_search`]). An index with a named dense component is
/// picked by --dense-name; a wrong name is an error that lists the components.
#[test]
fn mine_candidates_follow_the_search_flags() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    run_ok(&[
        "index",
        "--corpus",
        s(&data),
        "--vectors",
        s(&emb.join("corpus.npy")),
        "--vector-ids",
        s(&emb.join("corpus.ids.txt")),
        "--ann",
        "hnsw",
        "--dense-name",
        "minilm",
        "--threads",
        "1",
        "--out",
        s(&index),
    ]);
    let (qv, qi) = (emb.join("queries.npy"), emb.join("queries.ids.txt"));
    let vectors = ["--query-vectors", s(&qv), "--query-ids", s(&qi)];
    let with_vectors = |flags: &[&'static str]| -> Vec<String> {
        flags
            .iter()
            .map(|f| f.to_string())
            .chain(vectors.iter().map(|f| f.to_string()))
            .collect()
    };
    let check = |mode: &str, flags: Vec<String>, search_only: &[&str]| {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        assert_mine_follows_search(&index, &data, "test", mode, &flags, search_only);
    };
    check(
        "bm25",
        vec!["--k1".into(), "0.6".into(), "--b".into(), "0.5".into()],
        &[],
    );
    check(
        "dense",
        with_vectors(&["--dense-name", "minilm"]),
        &["--exact"],
    );
    check("dense", with_vectors(&["--ef", "8"]), &[]);
    check(
        "hybrid",
        with_vectors(&[
            "--fusion",
            "weighted",
            "--alpha",
            "0.3",
            "--normalize",
            "zscore",
        ]),
        &["--exact"],
    );
    check("hybrid", with_vectors(&["--rrf-k", "10"]), &["--exact"]);

    let never = dir.path().join("never.jsonl");
    let err = run_err(&[
        "mine",
        "--index",
        s(&index),
        "--queries",
        s(&data),
        "--split",
        "test",
        "--candidates",
        "dense",
        "--dense-name",
        "nope",
        "--query-vectors",
        s(&qv),
        "--query-ids",
        s(&qi),
        "--out",
        s(&never),
    ]);
    assert!(err.contains("nope") && err.contains("minilm"), "{err}");
    assert!(!err.contains("  "), "runs of spaces in: {err}");
    assert!(!never.exists());
}

/// Copies `from` into `to`, subfolders included.
fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), target).unwrap();
        }
    }
}

/// `mine --model DIR` encodes the queries with a moved copy of the model the index
/// records, as `search --model DIR` does.
#[test]
fn mine_encodes_queries_with_a_moved_model() {
    let Some(model) = minilm() else {
        return;
    };
    let data = sample_dataset();
    let dir = tempfile::tempdir().unwrap();
    // The index records a copy of the model, which then moves: only --model finds it.
    let (recorded, moved) = (dir.path().join("model"), dir.path().join("moved-model"));
    copy_dir(&model, &recorded);
    let index = dir.path().join("index");
    run_ok(&[
        "index",
        "--corpus",
        s(&data),
        "--model",
        s(&recorded),
        "--out",
        s(&index),
    ]);
    fs_err::rename(&recorded, &moved).unwrap();
    for mode in ["dense", "hybrid"] {
        assert_mine_follows_search(
            &index,
            &data,
            "train",
            mode,
            &["--model", s(&moved)],
            &["--exact"],
        );
    }
}
