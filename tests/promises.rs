//! What dredge promises (README, "What dredge promises"), each driven through the
//! binary: an output is never an input or another output, nothing is written when
//! an output is refused, leftovers of killed runs are removed, and inputs that
//! would be misread are refused with their file and line.

use std::path::{Path, PathBuf};

use crate::support::{run_err, run_ok, sample_dataset};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A copy of the sample collection and its BM25 index in a fresh folder.
struct Fixture {
    dir: tempfile::TempDir,
    data: PathBuf,
    index: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("sample");
        fs_err::create_dir_all(data.join("qrels")).unwrap();
        for file in [
            "corpus.jsonl",
            "queries.jsonl",
            "qrels/test.tsv",
            "qrels/train.tsv",
        ] {
            fs_err::copy(sample_dataset().join(file), data.join(file)).unwrap();
        }
        let index = dir.path().join("index");
        run_ok(&["index", "--corpus", s(&data), "--out", s(&index)]);
        Fixture { dir, data, index }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The names in the fixture's folder, hidden ones included.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs_err::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

/// Runs `args`, expecting a refusal; checks that `kept` still holds `before`,
/// that no hidden file appeared in the fixture's folder, and returns stderr.
fn refused(f: &Fixture, args: &[&str], kept: &Path) -> String {
    let before = fs_err::read(kept).unwrap();
    let listing = f.listing();
    let err = run_err(args);
    assert_eq!(
        fs_err::read(kept).unwrap(),
        before,
        "{} changed",
        kept.display()
    );
    assert_eq!(f.listing(), listing, "files appeared or vanished: {err}");
    err
}

#[test]
fn search_out_naming_its_queries_is_refused() {
    let f = Fixture::new();
    let queries = f.data.join("queries.jsonl");
    let err = refused(
        &f,
        &[
            "search",
            "--index",
            s(&f.index),
            "--queries",
            s(&queries),
            "--out",
            s(&queries),
        ],
        &queries,
    );
    assert!(err.contains("--out is also the input --queries"), "{err}");
    assert!(err.contains(s(&queries)), "{err}");
    // Through the dataset folder, a symbolic link and a hard link too.
    let qrels = f.data.join("qrels/test.tsv");
    let err = refused(
        &f,
        &[
            "search",
            "--index",
            s(&f.index),
            "--queries",
            s(&f.data),
            "--out",
            s(&qrels),
        ],
        &qrels,
    );
    assert!(err.contains("--out is also the input --queries"), "{err}");
    #[cfg(unix)]
    {
        let soft = f.path("soft.jsonl");
        std::os::unix::fs::symlink(&queries, &soft).unwrap();
        let hard = f.path("hard.jsonl");
        fs_err::hard_link(&queries, &hard).unwrap();
        for link in [&soft, &hard] {
            let err = refused(
                &f,
                &[
                    "search",
                    "--index",
                    s(&f.index),
                    "--queries",
                    s(&queries),
                    "--out",
                    s(link),
                ],
                &queries,
            );
            assert!(err.contains("--out is also the input --queries"), "{err}");
        }
    }
    // An output inside the index folder that is one of its files.
    let manifest = f.index.join("manifest.json");
    let err = refused(
        &f,
        &[
            "search",
            "--index",
            s(&f.index),
            "--queries",
            s(&queries),
            "--out",
            s(&manifest),
        ],
        &manifest,
    );
    assert!(err.contains("--out is also the input --index"), "{err}");
}

#[test]
fn mine_outputs_are_never_its_inputs_or_each_other() {
    let f = Fixture::new();
    let qrels = f.data.join("qrels/test.tsv");
    let queries = f.data.join("queries.jsonl");
    let base = [
        "mine",
        "--index",
        s(&f.index),
        "--queries",
        s(&queries),
        "--qrels",
        s(&qrels),
    ];
    let err = refused(&f, &[&base[..], &["--out", s(&qrels)]].concat(), &qrels);
    assert!(err.contains("--out is also the input --qrels"), "{err}");
    let out = f.path("neg.jsonl");
    fs_err::write(&out, "old negatives\n").unwrap();
    let err = refused(
        &f,
        &[&base[..], &["--out", s(&out), "--report", s(&out)]].concat(),
        &out,
    );
    assert!(
        err.contains("--report and --out are the same file"),
        "{err}"
    );
    // A good run still works.
    fs_err::remove_file(&out).unwrap();
    run_ok(
        &[
            &base[..],
            &["--out", s(&out), "--report", s(&f.path("r.json"))],
        ]
        .concat(),
    );
    assert!(fs_err::read_to_string(&out).unwrap().lines().count() > 0);
}

#[test]
fn embed_outputs_are_never_its_inputs() {
    let f = Fixture::new();
    let corpus = f.data.join("corpus.jsonl");
    // The paths are checked before the model is loaded: no model is needed.
    let model = f.path("no-model");
    let out = f.path("v.npy");
    let err = refused(
        &f,
        &[
            "embed",
            "--model",
            s(&model),
            "--input",
            s(&f.data),
            "--out",
            s(&out),
            "--ids-out",
            s(&corpus),
        ],
        &corpus,
    );
    assert!(err.contains("--ids-out is also the input --input"), "{err}");
    let dir = f.path("folder");
    fs_err::create_dir(&dir).unwrap();
    let err = run_err(&[
        "embed",
        "--model",
        s(&model),
        "--input",
        s(&corpus),
        "--out",
        s(&out),
        "--ids-out",
        s(&dir),
    ]);
    assert!(err.contains("--ids-out is an existing folder"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_existing_folder_as_output_is_refused_before_any_work() {
    let f = Fixture::new();
    let dir = f.path("taken");
    fs_err::create_dir(&dir).unwrap();
    let queries = f.data.join("queries.jsonl");
    let qrels = f.data.join("qrels/test.tsv");
    let (neg, npy) = (f.path("neg.jsonl"), f.path("taken.npy"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "search",
                "--index",
                s(&f.index),
                "--queries",
                s(&queries),
                "--out",
                s(&dir),
            ],
            "--out",
        ),
        (
            vec![
                "mine",
                "--index",
                s(&f.index),
                "--queries",
                s(&queries),
                "--qrels",
                s(&qrels),
                "--out",
                s(&dir),
            ],
            "--out",
        ),
        (
            vec![
                "mine",
                "--index",
                s(&f.index),
                "--queries",
                s(&queries),
                "--qrels",
                s(&qrels),
                "--out",
                s(&neg),
                "--report",
                s(&dir),
            ],
            "--report",
        ),
        (
            vec![
                "embed",
                "--model",
                "m",
                "--input",
                s(&queries),
                "--out",
                s(&npy),
                "--ids-out",
                s(&dir),
            ],
            "--ids-out",
        ),
    ];
    for (args, flag) in cases {
        let listing = f.listing();
        let err = run_err(&args);
        assert!(
            err.contains(&format!("{flag} is an existing folder")),
            "{err}"
        );
        // Nothing written: not the main output, no hidden temporary file.
        assert_eq!(f.listing(), listing, "{}", args.join(" "));
        assert_eq!(fs_err::read_dir(&dir).unwrap().count(), 0);
    }
}

#[test]
fn an_output_in_a_missing_folder_is_refused_before_any_work() {
    let f = Fixture::new();
    let queries = f.data.join("queries.jsonl");
    let out = f.path("missing/run.trec");
    let err = run_err(&[
        "search",
        "--index",
        s(&f.index),
        "--queries",
        s(&queries),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains(s(&out)), "{err}");
}

#[test]
fn an_index_never_replaces_a_folder_holding_its_inputs() {
    let f = Fixture::new();
    let before = fs_err::read(f.data.join("corpus.jsonl")).unwrap();
    let err = run_err(&[
        "index",
        "--corpus",
        s(&f.data.join("corpus.jsonl")),
        "--out",
        s(&f.data),
        "--overwrite",
    ]);
    assert!(
        err.contains("--out would replace a folder holding the input --corpus"),
        "{err}"
    );
    assert_eq!(fs_err::read(f.data.join("corpus.jsonl")).unwrap(), before);
}

/// A process id above Linux's maximum (2^22): never a running process.
const DEAD_PID: u32 = 4_194_304 + 11;

#[test]
fn leftovers_of_killed_runs_are_removed_by_the_next_run_which_says_so() {
    if !Path::new("/proc/self").exists() {
        eprintln!("SKIP: no /proc: leftovers are only removed where process ids can be checked");
        return;
    }
    let f = Fixture::new();
    let queries = f.data.join("queries.jsonl");
    let run = f.path("run.trec");
    let tmp = f.path(&format!(".run.trec.tmp-{DEAD_PID}"));
    fs_err::write(&tmp, "half a run").unwrap();
    // Another output's leftover, and one of a running process (this test), stay.
    let other = f.path(&format!(".other.trec.tmp-{DEAD_PID}"));
    fs_err::write(&other, "not this output's").unwrap();
    let alive = f.path(&format!(".run.trec.tmp-{}", std::process::id()));
    fs_err::write(&alive, "still being written").unwrap();
    let out = run_ok(&[
        "search",
        "--index",
        s(&f.index),
        "--queries",
        s(&queries),
        "--out",
        s(&run),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!tmp.exists());
    assert!(
        stderr.contains(&format!("removed {}", tmp.display())),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("process {DEAD_PID}")), "{stderr}");
    assert!(other.exists() && alive.exists() && run.exists());

    // A killed index build leaves a `.NAME.partial-PID` folder.
    let index = f.path("index2");
    let partial = f.path(&format!(".index2.partial-{DEAD_PID}"));
    fs_err::create_dir_all(partial.join("bm25")).unwrap();
    fs_err::write(partial.join("docs.bin"), vec![0u8; 4096]).unwrap();
    let out = run_ok(&["index", "--corpus", s(&f.data), "--out", s(&index)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!partial.exists(), "{stderr}");
    assert!(
        stderr.contains(&format!("removed {}", partial.display())),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn index_files_are_readable_as_other_new_files_are() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    // The mode of a new file under this process's umask (the binary inherits it).
    let probe = f.path("probe");
    fs_err::write(&probe, "").unwrap();
    let expected = fs_err::metadata(&probe).unwrap().permissions().mode() & 0o777;
    let mut files = 0;
    let mut stack = vec![f.index.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs_err::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, expected, "{} has mode {mode:o}", path.display());
            }
        }
    }
    assert!(files > 5, "{files} files");
    // The run dredge writes too.
    let run = f.path("run.trec");
    run_ok(&[
        "search",
        "--index",
        s(&f.index),
        "--queries",
        s(&f.data),
        "--out",
        s(&run),
    ]);
    assert_eq!(
        fs_err::metadata(&run).unwrap().permissions().mode() & 0o777,
        expected
    );
}

/// Writes `content` to `name` in `dir` and returns the path.
fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs_err::write(&path, content).unwrap();
    path
}

#[test]
fn corpus_lines_that_are_not_objects_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "corpus.jsonl",
        "{\"_id\": \"d1\", \"text\": \"a\"}\n[\"d2\", \"a title\"]\n",
    );
    let err = run_err(&[
        "index",
        "--corpus",
        s(&corpus),
        "--out",
        s(&dir.path().join("i")),
    ]);
    assert!(
        err.contains(&format!("{}:2: expected a JSON object", corpus.display())),
        "{err}"
    );
    assert!(err.contains("found an array"), "{err}");
    assert!(!dir.path().join("i").exists());
}

#[test]
fn ids_that_would_break_trec_files_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (id, what) in [
        ("d 2", "a space"),
        ("d\\t2", "a tab"),
        ("d\\n2", "a line break"),
    ] {
        let corpus = write(
            dir.path(),
            "corpus.jsonl",
            &format!(
                "{{\"_id\": \"d1\", \"text\": \"a\"}}\n{{\"_id\": \"{id}\", \"text\": \"b\"}}\n"
            ),
        );
        let err = run_err(&[
            "index",
            "--corpus",
            s(&corpus),
            "--out",
            s(&dir.path().join("i")),
        ]);
        assert!(
            err.contains(&format!("{}:2: `_id`", corpus.display())),
            "{err}"
        );
        assert!(err.contains(what), "{err}");
    }
    // Queries too: a run line `q 1 Q0 d1 ...` would have seven columns.
    let f = Fixture::new();
    let queries = write(
        f.dir.path(),
        "q.jsonl",
        "{\"_id\": \"q 1\", \"text\": \"starter\"}\n",
    );
    let err = run_err(&["search", "--index", s(&f.index), "--queries", s(&queries)]);
    assert!(
        err.contains(&format!(
            "{}:1: `_id`: id \"q 1\" contains a space",
            queries.display()
        )),
        "{err}"
    );
    // And ids files (here the ids of --vectors).
    let ids = write(f.dir.path(), "v.ids.txt", "d001\nd 2\n");
    let npy = f.path("v.npy");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }}{:54}\n",
        ""
    );
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0, 0, 128, 63, 0, 0, 128, 63]);
    fs_err::write(&npy, bytes).unwrap();
    let err = run_err(&[
        "index",
        "--corpus",
        s(&f.data),
        "--out",
        s(&f.path("i")),
        "--vectors",
        s(&npy),
        "--vector-ids",
        s(&ids),
    ]);
    assert!(
        err.contains(&format!("{}:2: id \"d 2\" contains a space", ids.display())),
        "{err}"
    );
}

#[test]
fn messages_use_words_not_type_names() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "corpus.jsonl",
        "{\"_id\": [1], \"text\": \"a\"}\n",
    );
    let err = run_err(&[
        "index",
        "--corpus",
        s(&corpus),
        "--out",
        s(&dir.path().join("i")),
    ]);
    assert!(err.contains(":1: invalid JSON"), "{err}");
    assert!(err.contains("`_id` as a string or a whole number"), "{err}");
    assert!(!err.contains("untagged") && !err.contains("RawId"), "{err}");
}

#[test]
fn a_headerless_qrels_line_with_a_bad_grade_is_an_error_not_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let run = write(
        dir.path(),
        "run.trec",
        "q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\n",
    );
    let qrels = write(dir.path(), "qrels.tsv", "q1\td1\t0.5\nq1\td2\t1\n");
    let err = run_err(&["eval", "--qrels", s(&qrels), "--run", s(&run)]);
    assert!(
        err.contains(&format!(
            "{}:1: relevance grade `0.5` is not an integer",
            qrels.display()
        )),
        "{err}"
    );
    // BEIR's header (any case, `-` or `_`) is still a header.
    let qrels = write(dir.path(), "qrels.tsv", "Query_ID\tdoc\tScore\nq1\td1\t1\n");
    let out = run_ok(&[
        "eval",
        "--qrels",
        s(&qrels),
        "--run",
        s(&run),
        "--metrics",
        "p@1",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["p@1"], 1.0);
}

#[test]
fn a_byte_order_mark_is_skipped_in_every_input() {
    let dir = tempfile::tempdir().unwrap();
    let bom = "\u{feff}";
    let run = "q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\n";
    let qrels = "q1\td2\t1\n";
    let plain = run_ok(&[
        "eval",
        "--qrels",
        s(&write(dir.path(), "a.tsv", qrels)),
        "--run",
        s(&write(dir.path(), "a.trec", run)),
        "--format",
        "json",
    ]);
    let marked = run_ok(&[
        "eval",
        "--qrels",
        s(&write(dir.path(), "b.tsv", &format!("{bom}{qrels}"))),
        "--run",
        s(&write(dir.path(), "b.trec", &format!("{bom}{run}"))),
        "--format",
        "json",
    ]);
    assert_eq!(plain.stdout, marked.stdout);
    let json: serde_json::Value = serde_json::from_slice(&marked.stdout).unwrap();
    assert_eq!(json["queries"], 1, "{json}");
    assert_eq!(json["mrr@10"], 0.5, "{json}");
    // A corpus with a BOM indexes its first id unchanged.
    let corpus = write(
        dir.path(),
        "c.jsonl",
        &format!("{bom}{{\"_id\": \"d1\", \"text\": \"sourdough\"}}\n"),
    );
    let index = dir.path().join("i");
    run_ok(&["index", "--corpus", s(&corpus), "--out", s(&index)]);
    let out = run_ok(&[
        "search",
        "--index",
        s(&index),
        "--query",
        "sourdough",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hits"][0]["id"], "d1", "{json}");
}

#[test]
fn eval_dataset_refuses_an_index_of_another_corpus() {
    let f = Fixture::new();
    // Another corpus: the sample with one document's text changed.
    let other = f.path("other");
    fs_err::create_dir_all(other.join("qrels")).unwrap();
    let corpus = fs_err::read_to_string(f.data.join("corpus.jsonl")).unwrap();
    fs_err::write(
        other.join("corpus.jsonl"),
        corpus.replacen("sourdough", "rye", 1),
    )
    .unwrap();
    for file in ["queries.jsonl", "qrels/test.tsv"] {
        fs_err::copy(f.data.join(file), other.join(file)).unwrap();
    }
    let err = run_err(&["eval", "--dataset", s(&other), "--index", s(&f.index)]);
    assert!(err.contains("was built from another corpus"), "{err}");
    assert!(err.contains(s(&f.data.join("corpus.jsonl"))), "{err}");
    // The index's own dataset evaluates.
    let out = run_ok(&[
        "eval",
        "--dataset",
        s(&f.data),
        "--index",
        s(&f.index),
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["bm25"]["ndcg@10"].as_f64().unwrap() > 0.3, "{json}");
}

#[test]
fn zero_metrics_are_printed_as_zero_not_minus_zero() {
    let dir = tempfile::tempdir().unwrap();
    let qrels = write(dir.path(), "q.tsv", "q1\td9\t1\n");
    let run = write(dir.path(), "r.trec", "q1 Q0 d1 1 2.0 t\n");
    let out = run_ok(&[
        "eval",
        "--qrels",
        s(&qrels),
        "--run",
        s(&run),
        "--metrics",
        "ndcg@10,map@10",
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("0.0000") && !table.contains("-0."),
        "{table}"
    );
    let out = run_ok(&[
        "eval",
        "--qrels",
        s(&qrels),
        "--run",
        s(&run),
        "--metrics",
        "ndcg@10",
        "--format",
        "json",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\"ndcg@10\":0.0") && !text.contains("-0"),
        "{text}"
    );
}

#[test]
fn empty_inputs_are_errors_or_warnings() {
    let f = Fixture::new();
    let empty = write(f.dir.path(), "empty.jsonl", "\n\n");
    let err = run_err(&["index", "--corpus", s(&empty), "--out", s(&f.path("i"))]);
    assert!(err.contains("no documents"), "{err}");
    assert!(!f.path("i").exists());
    let err = run_err(&[
        "search",
        "--index",
        s(&f.index),
        "--queries",
        s(&empty),
        "--out",
        s(&f.path("r.trec")),
    ]);
    assert!(err.contains("no query to search"), "{err}");
    assert!(!f.path("r.trec").exists());
    let run = write(f.dir.path(), "r.trec", "q1 Q0 d1 1 2.0 t\n");
    let qrels = write(f.dir.path(), "q.tsv", "query-id\tcorpus-id\tscore\n");
    let err = run_err(&["eval", "--qrels", s(&qrels), "--run", s(&run)]);
    assert!(err.contains("no judgments"), "{err}");
    let qrels = write(f.dir.path(), "q.tsv", "q1\td1\t1\n");
    let empty_run = write(f.dir.path(), "empty.trec", "");
    let out = run_ok(&["eval", "--qrels", s(&qrels), "--run", s(&empty_run)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("holds no retrieved document"),
        "{stderr}"
    );
}

#[test]
fn a_negative_rank_range_is_read_as_a_value() {
    let f = Fixture::new();
    let err = run_err(&[
        "mine",
        "--index",
        s(&f.index),
        "--queries",
        s(&f.data),
        "--split",
        "test",
        "--out",
        s(&f.path("n.jsonl")),
        "--range",
        "-5:10",
    ]);
    assert!(err.contains("rank range `-5:10`"), "{err}");
    assert!(!err.contains("unexpected argument"), "{err}");
}

#[test]
fn embed_refuses_a_model_that_gives_nan() {
    let f = Fixture::new();
    let model = f.path("tiny");
    dredge_embed::testing::TinyModel::default()
        .write(&model)
        .unwrap();
    // Damage the weights: every byte after the safetensors header becomes 0xFF
    // (a float32 NaN).
    let weights = model.join("model.safetensors");
    let mut bytes = fs_err::read(&weights).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for b in &mut bytes[8 + header..] {
        *b = 0xFF;
    }
    fs_err::write(&weights, bytes).unwrap();
    let out = f.path("v.npy");
    let err = run_err(&[
        "embed",
        "--model",
        s(&model),
        "--input",
        s(&f.data),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("NaN or infinite values"), "{err}");
    assert!(err.contains(s(&model)), "{err}");
    assert!(!out.exists() && !f.path("v.ids.txt").exists());
}

#[test]
fn an_index_whose_lock_file_cannot_be_written_is_still_searched() {
    // On a read-only filesystem, or in another user's folder, tantivy's lock file
    // cannot be opened for writing; a folder in its place fails the same way (and
    // does so even for root, who may write anywhere).
    let f = Fixture::new();
    let expected = run_ok(&[
        "search",
        "--index",
        s(&f.index),
        "--query",
        "sourdough starter",
        "--format",
        "json",
    ]);
    let lock = f.index.join("bm25/.tantivy-meta.lock");
    if lock.exists() {
        fs_err::remove_file(&lock).unwrap();
    }
    fs_err::create_dir(&lock).unwrap();
    let out = run_ok(&[
        "search",
        "--index",
        s(&f.index),
        "--query",
        "sourdough starter",
        "--format",
        "json",
    ]);
    assert_eq!(out.stdout, expected.stdout);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!json["hits"].as_array().unwrap().is_empty(), "{json}");
}

#[test]
fn mining_empty_inputs_is_refused_before_any_work() {
    let f = Fixture::new();
    let empty = write(f.dir.path(), "empty.jsonl", "\n");
    let header = write(f.dir.path(), "header.tsv", "query-id\tcorpus-id\tscore\n");
    let queries = f.data.join("queries.jsonl");
    let qrels = f.data.join("qrels/test.tsv");
    let out = f.path("n.jsonl");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--queries", s(&empty), "--qrels", s(&qrels)],
            "no queries",
        ),
        (
            &["--queries", s(&queries), "--qrels", s(&header)],
            "no judgments",
        ),
        (&["--pairs", s(&empty)], "no training pairs"),
    ];
    for (input, expected) in cases {
        let err = run_err(&[&["mine", "--index", s(&f.index), "--out", s(&out)], input].concat());
        assert!(err.contains(expected), "{err}");
        assert!(!out.exists());
    }
}

/// `embed` where the disk is full, as a file-size limit makes it: the write fails
/// (EFBIG, the signal ignored), the hidden file is removed and the error names the
/// output.
#[cfg(unix)]
#[test]
fn embed_on_a_full_disk_leaves_no_temporary_file() {
    let f = Fixture::new();
    let model = f.path("tiny");
    dredge_embed::testing::TinyModel::default()
        .write(&model)
        .unwrap();
    let out_dir = f.path("vectors");
    fs_err::create_dir(&out_dir).unwrap();
    let out = out_dir.join("v.npy");
    let script = format!(
        "trap '' XFSZ; ulimit -f 2; exec '{}' embed --model '{}' --input '{}' --out '{}'",
        env!("CARGO_BIN_EXE_dredge"),
        s(&model),
        s(&f.data),
        s(&out)
    );
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {}", out.display())),
        "{stderr}"
    );
    assert!(!stderr.contains(".tmp-"), "{stderr}");
    let left: Vec<_> = fs_err::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn eval_save_runs_never_overwrites_its_qrels() {
    let f = Fixture::new();
    let runs = f.path("runs");
    fs_err::create_dir(&runs).unwrap();
    // Qrels kept where the BM25 run would be saved.
    let qrels = runs.join("bm25.trec");
    fs_err::copy(f.data.join("qrels/test.tsv"), &qrels).unwrap();
    let before = fs_err::read(&qrels).unwrap();
    let err = run_err(&[
        "eval",
        "--dataset",
        s(&f.data),
        "--index",
        s(&f.index),
        "--qrels",
        s(&qrels),
        "--save-runs",
        s(&runs),
    ]);
    assert!(
        err.contains("--save-runs is also the input --qrels"),
        "{err}"
    );
    assert_eq!(fs_err::read(&qrels).unwrap(), before);
    // Saved where nothing is in the way, the run is written.
    fs_err::remove_file(&qrels).unwrap();
    run_ok(&[
        "eval",
        "--dataset",
        s(&f.data),
        "--index",
        s(&f.index),
        "--save-runs",
        s(&runs),
    ]);
    assert!(
        fs_err::read_to_string(runs.join("bm25.trec"))
            .unwrap()
            .lines()
            .count()
            > 10
    );
}
