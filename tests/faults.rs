//! The fault catalogue (issue 16): every file of a BM25 + exact dense index and of a
//! BM25 + HNSW index truncated, emptied, deleted, and overwritten over a byte range
//! at its start, middle and end. Each case ends either in an error that names the
//! file and says to rebuild, or in the undamaged index's bytes: never a panic,
//! never other results with exit 0. `dredge check` names every damaged file and
//! passes the sound index.
//!
//! Each index is built once; a case damages one file in place, runs BM25 search,
//! dense search and hybrid mining (with passage texts) on 20 SciFact test queries,
//! then puts the file back.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{dredge, run_ok, shared_dataset};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A small BEIR dataset folder: the first `n` SciFact test queries with their qrels.
fn small_queries(data: &Path, out: &Path, n: usize) {
    let qrels = fs_err::read_to_string(data.join("qrels/test.tsv")).unwrap();
    let mut lines = qrels.lines();
    let header = lines.next().unwrap();
    let mut ids: Vec<&str> = Vec::new();
    let mut kept = vec![header.to_owned()];
    for line in lines {
        let qid = line.split('\t').next().unwrap();
        if !ids.contains(&qid) {
            if ids.len() == n {
                break;
            }
            ids.push(qid);
        }
        kept.push(line.to_owned());
    }
    let queries = fs_err::read_to_string(data.join("queries.jsonl")).unwrap();
    let wanted: String = queries
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            ids.contains(&v["_id"].as_str().unwrap())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    fs_err::create_dir_all(out.join("qrels")).unwrap();
    fs_err::write(out.join("queries.jsonl"), wanted).unwrap();
    fs_err::write(out.join("qrels/test.tsv"), kept.join("\n") + "\n").unwrap();
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs_err::read_dir(dir.join(rel))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                walk(dir, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Cut to half its length.
    Truncate,
    Empty,
    Delete,
    /// Up to 64 bytes inverted, at the start, middle or end.
    Start,
    Middle,
    End,
    /// `n` bytes 0xFF at `at` (the reported panics).
    Ff {
        at: usize,
        n: usize,
    },
}

/// Damages `path`; false when the damage would change nothing (an empty file).
fn damage(path: &Path, how: Damage) -> bool {
    let mut bytes = fs_err::read(path).unwrap();
    let len = bytes.len();
    let n = len.min(64);
    let range = match how {
        Damage::Delete => {
            fs_err::remove_file(path).unwrap();
            return true;
        }
        Damage::Truncate | Damage::Empty if len == 0 => return false,
        Damage::Truncate => {
            bytes.truncate(len / 2);
            fs_err::write(path, bytes).unwrap();
            return true;
        }
        Damage::Empty => {
            fs_err::write(path, b"").unwrap();
            return true;
        }
        _ if len == 0 => return false,
        Damage::Start => 0..n,
        Damage::Middle => len / 2 - n / 2..len / 2 - n / 2 + n,
        Damage::End => len - n..len,
        Damage::Ff { at, n } => {
            if at + n > len {
                return false;
            }
            let before = bytes[at..at + n].to_vec();
            bytes[at..at + n].fill(0xff);
            if before == bytes[at..at + n] {
                return false;
            }
            fs_err::write(path, bytes).unwrap();
            return true;
        }
    };
    for b in &mut bytes[range] {
        *b ^= 0xff;
    }
    fs_err::write(path, bytes).unwrap();
    true
}

/// The commands a case runs, each writing one output file.
struct Workload {
    index: PathBuf,
    queries: PathBuf,
    emb: PathBuf,
    out: PathBuf,
}

impl Workload {
    fn commands(&self) -> Vec<(&'static str, Vec<String>)> {
        let index = s(&self.index).to_owned();
        let queries = s(&self.queries).to_owned();
        let qv = s(&self.emb.join("queries.npy")).to_owned();
        let qi = s(&self.emb.join("queries.ids.txt")).to_owned();
        let out = |name: &str| s(&self.out.join(name)).to_owned();
        let search = |mode: &str, name: &str| {
            let mut args: Vec<String> = [
                "search",
                "--index",
                &index,
                "--queries",
                &queries,
                "--split",
                "test",
                "--mode",
                mode,
                "-k",
                "20",
            ]
            .map(String::from)
            .to_vec();
            if mode != "bm25" {
                args.extend(["--query-vectors", &qv, "--query-ids", &qi].map(String::from));
            }
            args.extend(["--out".to_owned(), out(name)]);
            args
        };
        let mine: Vec<String> = [
            "mine",
            "--index",
            &index,
            "--queries",
            &queries,
            "--split",
            "test",
            "--candidates",
            "hybrid",
            "--query-vectors",
            &qv,
            "--query-ids",
            &qi,
            "--depth",
            "20",
            "-n",
            "3",
            "--out",
            &out("mined.jsonl"),
        ]
        .map(String::from)
        .to_vec();
        vec![
            ("bm25.trec", search("bm25", "bm25.trec")),
            ("dense.trec", search("dense", "dense.trec")),
            ("mined.jsonl", mine),
        ]
    }

    /// Runs every command: (output name, process output, output bytes when it
    /// succeeded).
    fn run(&self) -> Vec<(&'static str, Output, Option<Vec<u8>>)> {
        self.commands()
            .into_iter()
            .map(|(name, args)| {
                let path = self.out.join(name);
                let _ = fs_err::remove_file(&path);
                let output = dredge().args(&args).output().expect("running dredge");
                let bytes = output
                    .status
                    .success()
                    .then(|| fs_err::read(&path).expect("output written"));
                (name, output, bytes)
            })
            .collect()
    }
}

/// Builds one index of SciFact with the dense component `ann`.
fn build(data: &Path, emb: &Path, out: &Path, ann: &str) {
    run_ok(&[
        "index",
        "--corpus",
        s(data),
        "--vectors",
        s(&emb.join("corpus.npy")),
        "--vector-ids",
        s(&emb.join("corpus.ids.txt")),
        "--ann",
        ann,
        "--threads",
        "1",
        "--out",
        s(out),
    ]);
}

/// Runs the catalogue over `index`, for the files `select` picks.
fn catalogue(work: &Workload, select: impl Fn(&str) -> bool) -> usize {
    let clean = work.run();
    let baseline: Vec<Vec<u8>> = clean
        .into_iter()
        .map(|(name, output, bytes)| {
            bytes.unwrap_or_else(|| {
                panic!(
                    "{name} failed on the undamaged index: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })
        })
        .collect();
    let check = dredge()
        .args(["check", "--index", s(&work.index)])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "dredge check fails on the sound index: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let mut cases = 0;
    for rel in files(&work.index).into_iter().filter(|r| select(r)) {
        let path = work.index.join(&rel);
        let original = fs_err::read(&path).unwrap();
        let mut damages = vec![
            Damage::Truncate,
            Damage::Empty,
            Damage::Delete,
            Damage::Start,
            Damage::Middle,
            Damage::End,
        ];
        if rel.ends_with(".idx") {
            damages.push(Damage::Ff { at: 16, n: 8 });
        }
        if rel.ends_with(".term") {
            damages.push(Damage::Ff {
                at: original.len() / 2,
                n: 64,
            });
        }
        let recorded = !rel.ends_with(".lock");
        for how in damages {
            if !damage(&path, how) {
                continue;
            }
            cases += 1;
            let what = format!("{rel} {how:?}");
            for ((name, output, bytes), expected) in work.run().into_iter().zip(&baseline) {
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert_ne!(
                    output.status.code(),
                    Some(101),
                    "{what}: {name} panicked: {stderr}"
                );
                assert!(
                    output.status.code().is_some(),
                    "{what}: {name} was killed by a signal: {stderr}"
                );
                assert!(!stderr.contains("panicked"), "{what}: {name}: {stderr}");
                match bytes {
                    Some(bytes) => assert!(
                        &bytes == expected,
                        "{what}: {name} exited 0 with other results than the undamaged index"
                    ),
                    None => assert!(
                        stderr.contains(&rel) && stderr.contains("rebuild"),
                        "{what}: {name} failed without naming the file and saying to rebuild: {stderr}"
                    ),
                }
            }
            let check = dredge()
                .args(["check", "--index", s(&work.index)])
                .output()
                .unwrap();
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            assert_ne!(check.status.code(), Some(101), "{what}: check panicked");
            if recorded {
                assert!(
                    !check.status.success()
                        && report
                            .lines()
                            .any(|l| l.starts_with("DAMAGED") && l.contains(&rel)),
                    "{what}: dredge check does not report it: {report}"
                );
            } else {
                assert!(check.status.success(), "{what}: {report}");
            }
            let _ = fs_err::remove_file(&path);
            fs_err::write(&path, &original).unwrap();
        }
    }
    cases
}

#[test]
fn every_damaged_file_is_an_error_naming_it_or_changes_nothing() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("queries");
    small_queries(&data, &queries, 20);
    let out = dir.path().join("out");
    fs_err::create_dir_all(&out).unwrap();
    let start = std::time::Instant::now();
    let mut cases = 0;
    for ann in ["flat", "hnsw"] {
        let index = dir.path().join(ann);
        build(&data, &emb, &index, ann);
        let work = Workload {
            index,
            queries: queries.clone(),
            emb: emb.clone(),
            out: out.clone(),
        };
        // BM25's files are the same in both: damaged in the first index only.
        cases += catalogue(&work, |rel| ann == "flat" || !rel.starts_with("bm25/"));
    }
    assert!(cases > 100, "{cases} cases");
    eprintln!(
        "fault catalogue: {cases} cases in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// Removes the checksums from an index's manifest, as the first release wrote it
/// (format version 1).
fn strip_checksums(index: &Path) {
    let path = index.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&path).unwrap()).unwrap();
    let map = m.as_object_mut().unwrap();
    map.remove("files").unwrap();
    map.remove("manifest_checksum").unwrap();
    map.insert("format_version".into(), 1.into());
    fs_err::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

#[test]
fn an_index_built_before_checksums_warns_and_tantivy_panics_become_errors() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    run_ok(&["index", "--corpus", s(&data), "--out", s(&index)]);
    let search = |out: &Path| {
        dredge()
            .args(["search", "--index", s(&index), "--queries", s(&data)])
            .args(["--split", "test", "--out", s(out)])
            .output()
            .unwrap()
    };
    let (before, after) = (
        dir.path().join("before.trec"),
        dir.path().join("after.trec"),
    );
    assert!(search(&before).status.success());
    strip_checksums(&index);
    let old = search(&after);
    let stderr = String::from_utf8_lossy(&old.stderr);
    assert!(old.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains("before dredge recorded checksums"),
        "{stderr}"
    );
    assert_eq!(
        fs_err::read(&before).unwrap(),
        fs_err::read(&after).unwrap()
    );
    let check = dredge()
        .args(["check", "--index", s(&index)])
        .output()
        .unwrap();
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("note: "));

    // The two damaged segment files the issue found panicking: errors now, and
    // `dredge check` names them through tantivy's own checksums.
    for (ext, at_middle, n) in [(".idx", false, 8), (".term", true, 64)] {
        let rel = files(&index)
            .into_iter()
            .find(|f| f.ends_with(ext))
            .unwrap();
        let path = index.join(&rel);
        let original = fs_err::read(&path).unwrap();
        let at = if at_middle { original.len() / 2 } else { 16 };
        assert!(damage(&path, Damage::Ff { at, n }));
        let out = search(&after);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                || fs_err::read(&after).unwrap() == fs_err::read(&before).unwrap(),
            "{rel}: other results with exit 0"
        );
        assert_ne!(out.status.code(), Some(101), "{rel}: {stderr}");
        if !out.status.success() {
            assert!(
                stderr.contains("bm25") && stderr.contains("rebuild"),
                "{stderr}"
            );
        }
        let check = dredge()
            .args(["check", "--index", s(&index)])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            !check.status.success()
                && report
                    .lines()
                    .any(|l| l.starts_with("DAMAGED") && l.contains(&rel)),
            "{rel}: {report}"
        );
        fs_err::write(&path, &original).unwrap();
    }
}

#[test]
fn damaged_shards_and_joins_are_errors_naming_the_file() {
    let sample = crate::support::sample_dataset();
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("s{i}"))).collect();
    for (i, shard) in shards.iter().enumerate() {
        let spec = format!("{i}/2");
        run_ok(&[
            "index",
            "--corpus",
            s(&sample),
            "--shard",
            &spec,
            "--out",
            s(shard),
        ]);
    }
    let joined = dir.path().join("joined");
    run_ok(&[
        "shards",
        "join",
        "--out",
        s(&joined),
        s(&shards[0]),
        s(&shards[1]),
    ]);
    let search = || {
        dredge()
            .args([
                "search",
                "--index",
                s(&joined),
                "--query",
                "sourdough starter",
            ])
            .output()
            .unwrap()
    };
    let clean = search();
    assert!(clean.status.success());
    let check_ok = dredge()
        .args(["check", "--index", s(&joined)])
        .output()
        .unwrap();
    assert!(
        check_ok.status.success(),
        "{}",
        String::from_utf8_lossy(&check_ok.stdout)
    );
    let targets = [
        joined.join("manifest.json"),
        joined.join("bm25-terms.fst"),
        shards[1].join("docs.bin"),
        shards[1].join("manifest.json"),
    ];
    for path in targets {
        let original = fs_err::read(&path).unwrap();
        for how in [Damage::Middle, Damage::Truncate, Damage::Delete] {
            assert!(damage(&path, how));
            let name = path.file_name().unwrap().to_str().unwrap();
            let out = search();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(101), "{name} {how:?}: {stderr}");
            if out.status.success() {
                assert_eq!(out.stdout, clean.stdout, "{name} {how:?}");
            } else {
                assert!(
                    stderr.contains(name)
                        && (stderr.contains("rebuild") || stderr.contains("join")),
                    "{name} {how:?}: {stderr}"
                );
            }
            let check = dredge()
                .args(["check", "--index", s(&joined)])
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&check.stdout);
            assert!(
                !check.status.success()
                    && report
                        .lines()
                        .any(|l| l.starts_with("DAMAGED") && l.contains(name)),
                "{name} {how:?}: {report}"
            );
            let _ = fs_err::remove_file(&path);
            fs_err::write(&path, &original).unwrap();
        }
    }
}
