//! The outputs of every command on SciFact, pinned byte for byte: search runs in the
//! three modes (HNSW and exact dense, RRF and weighted hybrid), `eval --dataset` JSON,
//! and `mine` with BM25, dense and hybrid candidates in the three formats. The
//! hashes were taken with the binary of b868f05, before the index layer moved into
//! dredge-index, and the binary after the move wrote the same bytes. A change here
//! must come with a reason (a deliberate change of output) in its commit. The BM25
//! pins (bm25, hybrid and mine outputs) were retaken when the analyzer became
//! Lucene's StandardTokenizer exactly (analyzer version 2: `©`, `®`, `™`, `↔` are
//! terms, `²`, `₂`, `¼` are not), which changes SciFact's total length and so
//! every BM25 score in its last digits.

use std::path::Path;

use crate::support::{run_ok, shared_dataset};

/// FNV-1a (64 bits) of the file's bytes: a pin, not a cryptographic hash.
fn fnv1a(path: &Path) -> u64 {
    let bytes = fs_err::read(path).unwrap();
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const PINNED: [(&str, u64); 11] = [
    ("bm25.trec", 0x9d0364d0003bf2f2),
    ("dense-exact.trec", 0x40828819af81d931),
    ("dense.trec", 0x94bb50461d4c3ce8),
    ("eval.json", 0x49de26dd263325d7),
    ("hybrid-w.trec", 0x647fff8f450825d2),
    ("hybrid.trec", 0xbb9206a533c81a06),
    ("mine-bm25.jsonl", 0x74f6060a05993dec),
    ("mine-dense.jsonl", 0x6af18214e8a1a031),
    ("mine-flag.jsonl", 0x654e531285a4365b),
    ("mine-ids.jsonl", 0xf304010520265607),
    ("mine-triplet.jsonl", 0x8566a301c63258d8),
];

#[test]
fn scifact_outputs_keep_their_bytes() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| s(&dir.path().join(name));
    let (data_s, index) = (s(&data), out("index"));
    // One thread: the HNSW graph is the same at every build.
    run_ok(&[
        "index",
        "--corpus",
        &data_s,
        "--vectors",
        &s(&emb.join("corpus.npy")),
        "--vector-ids",
        &s(&emb.join("corpus.ids.txt")),
        "--ann",
        "hnsw",
        "--threads",
        "1",
        "--out",
        &index,
    ]);
    let (qv, qi) = (s(&emb.join("queries.npy")), s(&emb.join("queries.ids.txt")));
    let vectors = ["--query-vectors", qv.as_str(), "--query-ids", qi.as_str()];
    let search = |name: &str, extra: &[&str], with_vectors: bool| {
        let o = out(name);
        let mut args = vec![
            "search",
            "--index",
            &index,
            "--queries",
            &data_s,
            "--out",
            &o,
        ];
        args.extend_from_slice(extra);
        if with_vectors {
            args.extend_from_slice(&vectors);
        }
        run_ok(&args);
    };
    search("bm25.trec", &["--mode", "bm25"], false);
    search("dense.trec", &["--mode", "dense"], true);
    search("dense-exact.trec", &["--mode", "dense", "--exact"], true);
    search("hybrid.trec", &["--mode", "hybrid"], true);
    search(
        "hybrid-w.trec",
        &["--mode", "hybrid", "--fusion", "weighted", "--alpha", "0.3"],
        true,
    );
    let mut eval = vec![
        "eval",
        "--dataset",
        &data_s,
        "--index",
        &index,
        "--format",
        "json",
    ];
    eval.extend_from_slice(&vectors);
    let json = run_ok(&eval).stdout;
    fs_err::write(dir.path().join("eval.json"), json).unwrap();
    let mine = |name: &str, candidates: &str, format: &str| {
        let o = out(name);
        let mut args = vec![
            "mine",
            "--index",
            &index,
            "--queries",
            &data_s,
            "--candidates",
            candidates,
            "--format",
            format,
            "--out",
            &o,
        ];
        if candidates != "bm25" {
            args.extend_from_slice(&vectors);
        }
        run_ok(&args);
    };
    mine("mine-bm25.jsonl", "bm25", "flag");
    mine("mine-dense.jsonl", "dense", "flag");
    for format in ["flag", "ids", "triplet"] {
        mine(&format!("mine-{format}.jsonl"), "hybrid", format);
    }
    let changed: Vec<String> = PINNED
        .iter()
        .filter(|(name, hash)| fnv1a(&dir.path().join(name)) != *hash)
        .map(|(name, _)| name.to_string())
        .collect();
    assert!(changed.is_empty(), "outputs changed: {changed:?}");
}
