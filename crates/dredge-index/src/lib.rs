//! The layer every front end of dredge stands on: the index folder and its typed
//! manifest, building an index, one typed description of how to retrieve, query
//! vectors (given or encoded), batch search with TREC run output, and mining over an
//! index. The command line, the Python package and the shard driver are thin front
//! ends over this crate; the leaf crates (`dredge_bm25`, `dredge_ann`,
//! `dredge_embed`, `dredge_mine`) are composed here and nowhere else (evaluation,
//! `dredge_eval`, needs no index and is used by the front ends directly).
//!
//! Open an index and run a hybrid search (BM25 and a dense component fused by
//! reciprocal rank fusion) with a query vector the caller computed:
//!
//! ```
//! use dredge_core::QueryInput;
//! use dredge_index::{Index, Retrieval};
//! # use dredge_core::{Document, Matrix};
//! # use dredge_index::{DenseBuild, Documents, IndexBuilder, Vectors};
//! # fn main() -> dredge_index::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("index");
//! # let texts = ["honey bees dance", "bread needs a starter", "bees make honey from nectar"];
//! # let docs = texts.iter().enumerate().map(|(i, t)| Document {
//! #     id: format!("d{i}"), title: String::new(), text: t.to_string(), line: i as u64 + 1 }).collect();
//! # let vectors = Vectors::InMemory {
//! #     ids: vec!["d0".into(), "d1".into(), "d2".into()],
//! #     matrix: Matrix { rows: 3, cols: 2, data: vec![1.0, 0.0, 0.0, 1.0, 0.8, 0.6] },
//! # };
//! # IndexBuilder::new(&path).dense(DenseBuild::new(vectors)).build(Documents::from_vec(docs))?;
//! let index = Index::open(&path)?;
//! let retriever = index.retriever(&Retrieval::hybrid(), 10)?;
//! let query = QueryInput { text: "bees", vector: Some(&[0.9, 0.1]) };
//! let hits = retriever.search(&query, 10)?;
//! assert_eq!(index.docs().id(hits[0].doc), "d0");
//! # Ok(())
//! # }
//! ```
//!
//! [`IndexBuilder`] builds an index from a corpus file or documents in memory, with
//! dense vectors held in memory, read from a `.npy`, or encoded by a model;
//! [`Mining`] mines hard negatives over an index (both have examples).
//!
//! Cargo feature `encoder` (on by default): encoding with sentence-transformers
//! models (candle, tokenizers). Without it, dense components are built and searched
//! from vectors the caller gives.
#![warn(missing_docs)]

mod build;
mod dense;
mod error;
mod index;
mod manifest;
mod mine;
mod search;
mod shard;
mod spec;
mod vectors;
mod verify;

pub use build::{
    BuildSummary, DenseBuild, Documents, IndexBuilder, Progress, Vectors, check_target,
};
pub use dense::{DenseRetriever, EncoderSettings};
pub use error::{Error, Result};
pub use index::{Index, is_index};
pub use manifest::{
    BM25_DIR, Bm25Component, Components, CorpusFingerprint, CorpusInfo, DENSE_DIR, DOCS,
    DenseComponent, EncoderInfo, FIRST_FORMAT_VERSION, FORMAT, FORMAT_VERSION, MANIFEST, Manifest,
};
pub use mine::{MineInput, Mining};
pub use search::{
    BatchSearcher, LoadedQueries, SearchStats, hits_to_run, load_queries, worker_threads,
};
pub use shard::{
    SHARDED_FORMAT, SHARDED_FORMAT_VERSION, ShardEntry, ShardInfo, ShardSet, ShardSpec, TERMS_FILE,
    join_shards,
};
pub use spec::{Bm25Spec, DenseSearch, DenseSpec, HybridSpec, Mode, Retrieval};
pub use vectors::{ENCODE_BATCH, QueryVectors};
pub use verify::{CheckLine, CheckReport, FileProblem, FileSum, REBUILD, check_index, crc32_of};
