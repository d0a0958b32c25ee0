//! Dense retrieval quality on SciFact with the shared all-MiniLM-L6-v2 embeddings,
//! through the dredge-ann library: exact inner-product search reproduces the
//! reference nDCG@10 0.6451 / Recall@100 0.9250 (test split), and HNSW (M=16,
//! ef_construction=200, ef=128) stays within 0.005 of exact.

use dredge_ann::{Ann, DenseIndex, HnswParams, Similarity, read_doc_vectors, read_query_vectors};
use dredge_core::{DocStore, Hit, Qrels, Run, dataset, read_corpus};
use dredge_eval::{EvalOptions, Metric, evaluate};

use crate::support::shared_dataset;

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
    let Some(data) = shared_dataset("scifact") else { return };
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let mut docs = DocStore::new();
    for doc in read_corpus(dataset::corpus_file(&data).unwrap()).unwrap() {
        docs.push(&doc.id, &doc.title, &doc.text);
    }
    let vectors = read_doc_vectors(&emb.join("corpus.npy"), &emb.join("corpus.ids.txt"), &docs).unwrap();
    assert_eq!((vectors.rows, vectors.cols), (5183, 384));
    let (qids, queries) = read_query_vectors(&emb.join("queries.npy"), &emb.join("queries.ids.txt"), 384).unwrap();
    let qrels = Qrels::read(dataset::qrels_file(&data, "test").unwrap()).unwrap();
    let metrics = Metric::parse_list("ndcg@10,recall@100").unwrap();
    let score = |results: &[Vec<Hit>]| {
        let eval = evaluate(&qrels, &run_of(&docs, &qids, results), &metrics, &EvalOptions::default());
        assert_eq!(eval.queries(), 300, "every test query is evaluated");
        (eval.means[0], eval.means[1])
    };

    let dir = tempfile::tempdir().unwrap();
    let hnsw = Ann::Hnsw(HnswParams { m: 16, ef_construction: 200, seed: 0 });
    let index = DenseIndex::build(dir.path(), &vectors, Similarity::InnerProduct, &hnsw).unwrap();
    let (ndcg, recall) = score(&index.search_exact_batch(&queries, 100).unwrap());
    eprintln!("SciFact test, exact inner product: nDCG@10 {ndcg:.4}, Recall@100 {recall:.4}");
    assert!((ndcg - 0.6451).abs() <= 0.001, "exact nDCG@10 {ndcg:.4}, expected 0.6451");
    assert!((recall - 0.9250).abs() <= 0.001, "exact Recall@100 {recall:.4}, expected 0.9250");

    let (h_ndcg, h_recall) = score(&index.search_batch(&queries, 100, 128).unwrap());
    eprintln!("SciFact test, HNSW (M=16, efC=200, ef=128): nDCG@10 {h_ndcg:.4}, Recall@100 {h_recall:.4}");
    assert!((h_ndcg - ndcg).abs() <= 0.005, "HNSW nDCG@10 {h_ndcg:.4} vs exact {ndcg:.4}");
    assert!((h_recall - recall).abs() <= 0.005, "HNSW Recall@100 {h_recall:.4} vs exact {recall:.4}");

    // Reopened from disk, the index answers the same.
    let reopened = DenseIndex::open(dir.path()).unwrap();
    assert_eq!(reopened.search_batch(&queries, 100, 128).unwrap(), index.search_batch(&queries, 100, 128).unwrap());
}
