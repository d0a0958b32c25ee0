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
