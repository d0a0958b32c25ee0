//! Dense retrieval: quality on SciFact with the shared all-MiniLM-L6-v2 embeddings
//! through the dredge-ann library (exact inner-product search reproduces the
//! reference nDCG@10 0.6451 / Recall@100 0.9250 on the test split, HNSW with M=16,
//! ef_construction=200, ef=128 stays within 0.005), and `dredge index --vectors` /
//! `dredge search --mode dense` end to end, with their errors.

use std::path::Path;

use dredge_ann::{Ann, DenseIndex, HnswParams, Similarity, read_doc_vectors, read_query_vectors};
use dredge_core::{DocStore, Hit, Matrix, Qrels, Run, dataset, read_corpus, write_ids, write_npy};
use dredge_eval::{EvalOptions, Metric, evaluate};

use crate::support::{run_err, run_ok, sample_dataset, shared_dataset};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn run_of(docs: &DocStore, qids: &[String], results: &[Vec<Hit>]) -> Run {
    let mut run = Run::new();
    for (qid, hits) in qids.iter().zip(results) {
        for hit in hits {
            run.push(qid, docs.id(hit.doc), f64::from(hit.score));
        }
    }
    run
}

#[test]
fn scifact_minilm_exact_and_hnsw_quality() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let mut docs = DocStore::new();
    for doc in read_corpus(dataset::corpus_file(&data).unwrap()).unwrap() {
        docs.push(&doc.id, &doc.title, &doc.text);
    }
    let vectors =
        read_doc_vectors(&emb.join("corpus.npy"), &emb.join("corpus.ids.txt"), &docs).unwrap();
    assert_eq!((vectors.rows, vectors.cols), (5183, 384));
    let (qids, queries) =
        read_query_vectors(&emb.join("queries.npy"), &emb.join("queries.ids.txt"), 384).unwrap();
    let qrels = Qrels::read(dataset::qrels_file(&data, "test").unwrap()).unwrap();
    let metrics = Metric::parse_list("ndcg@10,recall@100").unwrap();
    let score = |results: &[Vec<Hit>]| {
        let eval = evaluate(
            &qrels,
            &run_of(&docs, &qids, results),
            &metrics,
            &EvalOptions::default(),
        );
        assert_eq!(eval.queries(), 300, "every test query is evaluated");
        (eval.means[0], eval.means[1])
    };

    let dir = tempfile::tempdir().unwrap();
    let hnsw = Ann::Hnsw(HnswParams {
        m: 16,
        ef_construction: 200,
        seed: 0,
    });
    let index = DenseIndex::build(dir.path(), &vectors, Similarity::InnerProduct, &hnsw).unwrap();
    let (ndcg, recall) = score(&index.search_exact_batch(&queries, 100).unwrap());
    eprintln!("SciFact test, exact inner product: nDCG@10 {ndcg:.4}, Recall@100 {recall:.4}");
    assert!(
        (ndcg - 0.6451).abs() <= 0.001,
        "exact nDCG@10 {ndcg:.4}, expected 0.6451"
    );
    assert!(
        (recall - 0.9250).abs() <= 0.001,
        "exact Recall@100 {recall:.4}, expected 0.9250"
    );

    let (h_ndcg, h_recall) = score(&index.search_batch(&queries, 100, 128).unwrap());
    eprintln!(
        "SciFact test, HNSW (M=16, efC=200, ef=128): nDCG@10 {h_ndcg:.4}, Recall@100 {h_recall:.4}"
    );
    assert!(
        (h_ndcg - ndcg).abs() <= 0.005,
        "HNSW nDCG@10 {h_ndcg:.4} vs exact {ndcg:.4}"
    );
    assert!(
        (h_recall - recall).abs() <= 0.005,
        "HNSW Recall@100 {h_recall:.4} vs exact {recall:.4}"
    );

    // Reopened from disk, the index answers the same.
    let reopened = DenseIndex::open(dir.path()).unwrap();
    assert_eq!(
        reopened.search_batch(&queries, 100, 128).unwrap(),
        index.search_batch(&queries, 100, 128).unwrap()
    );
}

/// Seeded vectors for the sample corpus's documents (ids in corpus order), written
/// as `.npy` + ids in reverse order (alignment must put them back).
fn sample_vectors(dir: &Path, dim: usize) -> (Vec<String>, Matrix) {
    let ids: Vec<String> = read_corpus(sample_dataset().join("corpus.jsonl"))
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    let mut state = 12345u64;
    let data: Vec<f32> = (0..ids.len() * dim)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    let matrix = Matrix {
        rows: ids.len(),
        cols: dim,
        data,
    };
    let reversed: Vec<String> = ids.iter().rev().cloned().collect();
    let rev_data: Vec<f32> = (0..ids.len())
        .rev()
        .flat_map(|i| matrix.row(i).to_vec())
        .collect();
    write_npy(
        dir.join("docs.npy"),
        &Matrix {
            rows: ids.len(),
            cols: dim,
            data: rev_data,
        },
    )
    .unwrap();
    write_ids(dir.join("docs.ids.txt"), &reversed).unwrap();
    (ids, matrix)
}

#[test]
fn cli_indexes_vectors_and_searches_dense() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ids, vectors) = sample_vectors(d, 16);
    let index = d.join("index");
    let (npy, npy_ids) = (d.join("docs.npy"), d.join("docs.ids.txt"));
    let out = run_ok(&[
        "index",
        "--corpus",
        s(&sample_dataset()),
        "--vectors",
        s(&npy),
        "--vector-ids",
        s(&npy_ids),
        "--hnsw-m",
        "8",
        "--hnsw-ef-construction",
        "64",
        "--out",
        s(&index),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dense `default`: 101 x 16, cosine, hnsw"),
        "{stderr}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(index.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["components"]["dense"]["default"]["path"],
        "dense/default"
    );
    assert!(
        manifest["components"]["bm25"].is_object(),
        "BM25 is built beside the vectors"
    );

    // Queries that are documents' own vectors find those documents first.
    let picks = [0usize, 17, 58, 100];
    let queries = Matrix {
        rows: picks.len(),
        cols: 16,
        data: picks
            .iter()
            .flat_map(|&i| vectors.row(i).to_vec())
            .collect(),
    };
    let qids: Vec<String> = picks.iter().map(|i| format!("q{i}")).collect();
    write_npy(d.join("q.npy"), &queries).unwrap();
    write_ids(d.join("q.ids.txt"), &qids).unwrap();
    let (q, q_ids) = (d.join("q.npy"), d.join("q.ids.txt"));
    for extra in [&[][..], &["--exact"][..]] {
        let run = d.join("run.trec");
        let mut args = vec![
            "search",
            "--index",
            s(&index),
            "--mode",
            "dense",
            "--query-vectors",
            s(&q),
            "--query-ids",
            s(&q_ids),
        ];
        args.extend_from_slice(&["-k", "5", "--out", s(&run)]);
        args.extend_from_slice(extra);
        run_ok(&args);
        let text = fs_err::read_to_string(&run).unwrap();
        for (qid, &doc) in qids.iter().zip(&picks) {
            let first = text
                .lines()
                .find(|l| l.starts_with(&format!("{qid} ")))
                .unwrap();
            let cols: Vec<&str> = first.split_whitespace().collect();
            assert_eq!(
                (cols[2], cols[3], cols[5]),
                (ids[doc].as_str(), "1", "dredge-dense"),
                "{first}"
            );
            assert!(
                (cols[4].parse::<f32>().unwrap() - 1.0).abs() < 1e-5,
                "cosine with itself: {first}"
            );
        }
        assert_eq!(text.lines().count(), 4 * 5);
    }

    // Errors name the problem, counts and examples.
    let err = run_err(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "dense",
        "--queries",
        s(&sample_dataset()),
    ]);
    assert!(
        err.contains("cannot encode query text") && err.contains("--query-vectors"),
        "{err}"
    );
    write_npy(
        d.join("q8.npy"),
        &Matrix {
            rows: 1,
            cols: 8,
            data: vec![1.0; 8],
        },
    )
    .unwrap();
    write_ids(d.join("q8.ids.txt"), &["q"]).unwrap();
    let err = run_err(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "dense",
        "--query-vectors",
        s(&d.join("q8.npy")),
        "--query-ids",
        s(&d.join("q8.ids.txt")),
    ]);
    assert!(
        err.contains("vectors have dimension 8, expected 16"),
        "{err}"
    );
    write_ids(
        &npy_ids,
        &ids.iter()
            .rev()
            .take(100)
            .chain(std::iter::once(&"ghost".to_owned()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let err = run_err(&[
        "index",
        "--corpus",
        s(&sample_dataset()),
        "--vectors",
        s(&npy),
        "--vector-ids",
        s(&npy_ids),
        "--out",
        s(&d.join("bad")),
    ]);
    assert!(
        err.contains("1 of 101 ids are not documents of the corpus: `ghost` (line 101)"),
        "{err}"
    );
    assert!(!d.join("bad").exists(), "a failed build leaves no index");
    let err = run_err(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "dense",
        "--dense-name",
        "other",
        "--query-vectors",
        s(&q),
        "--query-ids",
        s(&q_ids),
    ]);
    assert!(
        err.contains("no dense component `other` (it has: default)"),
        "{err}"
    );
}

#[test]
fn cli_dense_only_flat_index_on_scifact_matches_the_reference() {
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
        "--no-bm25",
        "--ann",
        "flat",
        "--similarity",
        "ip",
        "--out",
        s(&index),
    ]);
    assert!(!index.join("bm25").exists());
    let run = dir.path().join("run.trec");
    run_ok(&[
        "search",
        "--index",
        s(&index),
        "--mode",
        "dense",
        "--query-vectors",
        s(&emb.join("queries.npy")),
        "--query-ids",
        s(&emb.join("queries.ids.txt")),
        "-k",
        "100",
        "--out",
        s(&run),
    ]);
    let out = run_ok(&[
        "eval",
        "--qrels",
        s(&data),
        "--split",
        "test",
        "--run",
        s(&run),
        "--metrics",
        "ndcg@10,recall@100",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (ndcg, recall) = (
        report["ndcg@10"].as_f64().unwrap(),
        report["recall@100"].as_f64().unwrap(),
    );
    assert!(
        (ndcg - 0.6451).abs() <= 0.001 && (recall - 0.9250).abs() <= 0.001,
        "{report}"
    );
    let err = run_err(&["search", "--index", s(&index), "--query", "protein"]);
    assert!(err.contains("no BM25 component"), "{err}");
}
