//! Sharded indexes: SciFact split into 1, 3 and 4 shards and joined gives, byte for
//! byte, the outputs of one index of the whole corpus (search runs in the three
//! modes with exact dense, eval --dataset JSON, mined negatives), also holding one
//! shard at a time in memory; HNSW shards keep
//! the recall of one graph; the join refuses shards that do not belong together;
//! a joined set moves as a whole.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::support::{run_err, run_ok, shared_dataset};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Indexes SciFact (BM25 and the MiniLM vectors, `ann`, one thread) into `out`,
/// with extra flags (`--shard i/n`).
fn index_scifact(data: &Path, out: &Path, ann: &str, extra: &[&str]) {
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let (d, v, i, o) = (
        s(data),
        s(&emb.join("corpus.npy")),
        s(&emb.join("corpus.ids.txt")),
        s(out),
    );
    let mut args = vec![
        "index",
        "--corpus",
        &d,
        "--vectors",
        &v,
        "--vector-ids",
        &i,
        "--ann",
        ann,
        "--threads",
        "1",
        "--out",
        &o,
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

/// Builds shard i/n of SciFact ([`index_scifact`]) for each i and joins them
/// into `out`.
fn build_sharded(data: &Path, dir: &Path, n: u32, ann: &str, out: &Path) {
    let mut shards = Vec::new();
    for i in 0..n {
        let shard = dir.join(format!(
            "{}-shard{i}",
            out.file_name().unwrap().to_str().unwrap()
        ));
        index_scifact(data, &shard, ann, &["--shard", &format!("{i}/{n}")]);
        shards.push(s(&shard));
    }
    let mut args = vec!["shards".to_owned(), "join".into(), "--out".into(), s(out)];
    // Given in reverse: the join orders them by their recorded numbers.
    args.extend(shards.into_iter().rev());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&args);
}

/// Every output compared: (file name, command line after `--index INDEX`).
fn outputs(data: &Path) -> Vec<(&'static str, Vec<String>)> {
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let vectors = [
        "--query-vectors".to_owned(),
        s(&emb.join("queries.npy")),
        "--query-ids".into(),
        s(&emb.join("queries.ids.txt")),
    ];
    let d = s(data);
    let with = |base: &[&str], extra: &[&str], vecs: bool| {
        let mut v: Vec<String> = base.iter().map(|x| x.to_string()).collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        if vecs {
            v.extend(vectors.iter().cloned());
        }
        v
    };
    let search = ["search", "--queries", &d, "--split", "test"];
    let mine = ["mine", "--queries", &d, "--split", "train"];
    vec![
        ("bm25.trec", with(&search, &[], false)),
        (
            "bm25-es.trec",
            with(&search, &["--k1", "1.2", "--b", "0.75", "-k", "50"], false),
        ),
        (
            "dense.trec",
            with(&search, &["--mode", "dense", "--exact"], true),
        ),
        (
            "hybrid.trec",
            with(&search, &["--mode", "hybrid", "--exact"], true),
        ),
        (
            "hybrid-w.trec",
            with(
                &search,
                &[
                    "--mode",
                    "hybrid",
                    "--exact",
                    "--fusion",
                    "weighted",
                    "--alpha",
                    "0.3",
                    "--normalize",
                    "zscore",
                ],
                true,
            ),
        ),
        (
            "eval.json",
            with(
                &["eval", "--dataset", &d, "--exact", "--format", "json"],
                &[],
                true,
            ),
        ),
        (
            "mine-bm25.jsonl",
            with(&mine, &["--relative-margin", "0.05"], false),
        ),
        (
            "mine-dense.jsonl",
            with(
                &mine,
                &[
                    "--candidates",
                    "dense",
                    "--max-score",
                    "0.9",
                    "--margin",
                    "0.02",
                    "--sampling",
                    "random",
                    "--seed",
                    "3",
                ],
                true,
            ),
        ),
        (
            "mine-hybrid.jsonl",
            with(
                &mine,
                &[
                    "--candidates",
                    "hybrid",
                    "--range",
                    "5:50",
                    "--num-negatives",
                    "20",
                    "--on-short",
                    "pad",
                    "--format",
                    "triplet",
                ],
                true,
            ),
        ),
    ]
}

/// Runs every output of [`outputs`] against `index`, into `dir`; the bytes by name.
fn run_all(
    data: &Path,
    index: &Path,
    dir: &Path,
    extra: &[&str],
) -> HashMap<&'static str, Vec<u8>> {
    fs_err::create_dir_all(dir).unwrap();
    let mut bytes = HashMap::new();
    for (name, args) in outputs(data) {
        let out = dir.join(name);
        let mut full: Vec<String> = vec![args[0].clone(), "--index".into(), s(index)];
        full.extend(args[1..].iter().cloned());
        if name != "eval.json" {
            full.extend(["--out".into(), s(&out)]);
        }
        full.extend(extra.iter().map(|x| x.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let output = run_ok(&full);
        let written = if name == "eval.json" {
            output.stdout
        } else {
            fs_err::read(&out).unwrap()
        };
        assert!(!written.is_empty(), "{name} is empty");
        bytes.insert(name, written);
    }
    bytes
}

#[test]
fn shards_give_the_bytes_of_one_index() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    index_scifact(&data, &one, "flat", &[]);
    let whole = run_all(&data, &one, &dir.path().join("one-out"), &[]);
    for n in [1, 3, 4] {
        let sharded = dir.path().join(format!("sharded{n}"));
        build_sharded(&data, dir.path(), n, "flat", &sharded);
        let out = dir.path().join(format!("out{n}"));
        let got = run_all(&data, &sharded, &out, &[]);
        for (name, bytes) in &whole {
            assert!(
                got[name] == *bytes,
                "{name}: {n} shards wrote other bytes than one index"
            );
        }
        if n == 3 {
            // One shard in memory at a time: the same bytes.
            let out = dir.path().join("out3-one-at-a-time");
            let got = run_all(&data, &sharded, &out, &["--one-shard-at-a-time"]);
            for (name, bytes) in &whole {
                assert!(
                    got[name] == *bytes,
                    "{name}: 3 shards one at a time wrote other bytes than one index"
                );
            }
        }
    }
    // The set moves as a whole: the sharded folder and its shards copied elsewhere
    // still open (relative paths), with the same results.
    let moved = dir.path().join("moved");
    fs_err::create_dir(&moved).unwrap();
    for entry in fs_err::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("sharded3") {
            copy_dir(&dir.path().join(&name), &moved.join(&name));
        }
    }
    let run = moved.join("bm25.trec");
    run_ok(&[
        "search",
        "--index",
        &s(&moved.join("sharded3")),
        "--queries",
        &s(&data),
        "--split",
        "test",
        "--out",
        &s(&run),
    ]);
    assert!(fs_err::read(&run).unwrap() == whole["bm25.trec"]);
}

fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A TREC run's ranked document ids by query.
fn ranked(run: &Path) -> HashMap<String, Vec<String>> {
    let mut by_query: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    for line in fs_err::read_to_string(run).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        by_query
            .entry(f[0].to_owned())
            .or_default()
            .push((f[3].parse().unwrap(), f[2].to_owned()));
    }
    by_query
        .into_iter()
        .map(|(q, mut v)| {
            v.sort();
            (q, v.into_iter().map(|(_, d)| d).collect())
        })
        .collect()
}

/// Mean share of the exact top 10 that `run` finds in its top 10.
fn recall_at_10(run: &Path, exact: &Path) -> f64 {
    let (got, want) = (ranked(run), ranked(exact));
    let mut total = 0.0;
    for (q, truth) in &want {
        let truth: HashSet<&String> = truth.iter().take(10).collect();
        let found = got[q].iter().take(10).filter(|d| truth.contains(d)).count();
        total += found as f64 / truth.len() as f64;
    }
    total / want.len() as f64
}

#[test]
fn hnsw_shards_keep_the_recall_of_one_graph() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let one = dir.path().join("one");
    index_scifact(&data, &one, "hnsw", &[]);
    let sharded = dir.path().join("sharded");
    build_sharded(&data, dir.path(), 4, "hnsw", &sharded);
    let search = |index: &Path, name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "search".to_owned(),
            "--index".into(),
            s(index),
            "--mode".into(),
            "dense".into(),
            "--queries".into(),
            s(&data),
            "--query-vectors".into(),
            s(&emb.join("queries.npy")),
            "--query-ids".into(),
            s(&emb.join("queries.ids.txt")),
            "-k".into(),
            "10".into(),
            "--out".into(),
            s(&out),
        ];
        args.extend(extra.iter().map(|x| x.to_string()));
        run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        out
    };
    let exact = search(&one, "exact.trec", &["--exact"]);
    for ef in ["10", "40"] {
        let graph = recall_at_10(&search(&one, "one.trec", &["--ef", ef]), &exact);
        let shards = recall_at_10(&search(&sharded, "shards.trec", &["--ef", ef]), &exact);
        assert!(
            shards >= graph - 0.005,
            "ef {ef}: recall@10 {shards:.4} over 4 shards, {graph:.4} with one graph"
        );
    }
}

#[test]
fn the_join_refuses_shards_that_do_not_belong_together() {
    let data = crate::support::sample_dataset();
    let dir = tempfile::tempdir().unwrap();
    let d = s(&data);
    let shard = |name: &str, spec: &str, extra: &[&str]| {
        let out = s(&dir.path().join(name));
        let mut args = vec!["index", "--corpus", &d, "--shard", spec, "--out", &out];
        args.extend_from_slice(extra);
        run_ok(&args);
        out
    };
    let (a0, a1) = (shard("a0", "0/2", &[]), shard("a1", "1/2", &[]));
    let b1 = shard("b1", "1/2", &["--k1", "1.2"]);
    let c1 = shard("c1", "1/3", &[]);
    let out = s(&dir.path().join("joined"));
    let plain = s(&dir.path().join("plain"));
    run_ok(&["index", "--corpus", &d, "--out", &plain]);

    let err = run_err(&["shards", "join", "--out", &out, &a0, &b1]);
    assert!(err.contains("BM25") && err.contains("differs"), "{err}");
    let err = run_err(&["shards", "join", "--out", &out, &a0, &c1]);
    assert!(err.contains("number of shards"), "{err}");
    let err = run_err(&["shards", "join", "--out", &out, &a0]);
    assert!(err.contains("shard 1/2 is missing"), "{err}");
    let err = run_err(&["shards", "join", "--out", &out, &a0, &a0]);
    assert!(err.contains("given twice"), "{err}");
    let err = run_err(&["shards", "join", "--out", &out, &a0, &plain]);
    assert!(err.contains("built without --shard"), "{err}");
    let err = run_err(&["index", "--corpus", &d, "--shard", "2/2", "--out", &out]);
    assert!(err.contains("i/n"), "{err}");
    assert!(
        !dir.path().join("joined").exists(),
        "a refused join writes nothing"
    );

    run_ok(&["shards", "join", "--out", &out, &a1, &a0]);
    let search =
        |index: &str| run_ok(&["search", "--index", index, "--query", "sourdough starter"]).stdout;
    assert_eq!(search(&out), search(&plain));
    // A shard rebuilt after the join (here with other documents) is refused.
    fs_err::remove_dir_all(&a1).unwrap();
    let other = s(&dir.path().join("other.jsonl"));
    fs_err::write(&other, "{\"_id\": \"x\", \"text\": \"other text\"}\n").unwrap();
    run_ok(&["index", "--corpus", &other, "--shard", "0/1", "--out", &a1]);
    let err = run_err(&["search", "--index", &out, "--query", "starter"]);
    assert!(err.contains("changed after the join"), "{err}");
}

#[test]
fn embed_shards_hold_the_documents_of_index_shards() {
    let Some(model) = crate::support::minilm() else {
        return;
    };
    let data = crate::support::sample_dataset();
    let dir = tempfile::tempdir().unwrap();
    let (d, m) = (s(&data), s(&model));
    let whole = dir.path().join("whole.npy");
    run_ok(&["embed", "--model", &m, "--input", &d, "--out", &s(&whole)]);
    let (all_ids, all) =
        dredge_core::read_vectors(&whole, dir.path().join("whole.ids.txt")).unwrap();
    let mut seen = Vec::new();
    for i in 0..3 {
        let part = dir.path().join(format!("part{i}.npy"));
        let ids = dir.path().join(format!("part{i}.ids.txt"));
        run_ok(&[
            "embed",
            "--model",
            &m,
            "--input",
            &d,
            "--shard",
            &format!("{i}/3"),
            "--out",
            &s(&part),
        ]);
        let (names, rows) = dredge_core::read_vectors(&part, &ids).unwrap();
        // The shard's vectors are rows of the whole corpus's, in corpus order.
        for (r, name) in names.iter().enumerate() {
            let at = all_ids.iter().position(|x| x == name).unwrap();
            assert_eq!(at, seen.len() + r, "{name} out of order");
            assert_eq!(rows.row(r), all.row(at), "{name}: other vector");
        }
        seen.extend(names);
        // And exactly the documents of `dredge index --shard i/3`.
        let index = dir.path().join(format!("index{i}"));
        run_ok(&[
            "index",
            "--corpus",
            &d,
            "--shard",
            &format!("{i}/3"),
            "--vectors",
            &s(&part),
            "--vector-ids",
            &s(&ids),
            "--ann",
            "flat",
            "--out",
            &s(&index),
        ]);
    }
    assert_eq!(seen, all_ids, "the three shards cover the corpus once");
}
