//! The shared words of dredge: ids, hits, the [`Retriever`] trait, and readers and
//! writers for the formats of the field (BEIR corpora, queries and qrels, TREC runs,
//! `.npy` vectors), with errors that name the file and line.
//!
//! Every other dredge crate depends on this one and on no other.
//!
//! ```
//! use dredge_core::{Qrels, Run};
//! # fn main() -> dredge_core::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let qrels_path = dir.path().join("test.tsv");
//! # fs_err::write(&qrels_path, "query-id\tcorpus-id\tscore\nq1\td1\t1\n").unwrap();
//! # let run_path = dir.path().join("run.trec");
//! # fs_err::write(&run_path, "q1 Q0 d1 1 12.5 bm25\nq1 Q0 d2 2 11.0 bm25\n").unwrap();
//! let qrels = Qrels::read(&qrels_path)?;
//! let run = Run::read(&run_path)?;
//! assert_eq!(qrels.get("q1").unwrap().relevant().count(), 1);
//! assert_eq!(run.get("q1").unwrap().entries.len(), 2);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod atomic;
mod corpus;
pub mod dataset;
mod docstore;
mod error;
mod fusion;
#[cfg(test)]
mod fuzz;
mod hash;
mod hit;
mod ids;
mod lines;
mod npy;
mod outputs;
mod qrels;
mod retriever;
mod run;
mod teacher;
mod text;

pub use atomic::{AtomicFile, StagingDir, write_file, write_json};
pub use corpus::{
    CorpusReader, Document, Query, QueryReader, id_problem, read_corpus, read_queries,
};
pub use docstore::DocStore;
pub use error::{Error, Result};
pub use fusion::{
    DEFAULT_RRF_K, Fusion, HybridRetriever, ScoreNorm, fuse, reciprocal_rank_fusion,
    weighted_fusion,
};
pub use hash::{FxBuildHasher, FxHasher};
pub use hit::{Hit, Score, TopK, best_of_keys, from_rank_key, keep_best_keys, rank_key, sort_hits};
pub use ids::{DocId, Id, IdTable, QueryId};
pub use lines::LineReader;
pub use npy::{Matrix, read_ids, read_npy, read_vectors, write_ids, write_npy};
pub use outputs::{Leftover, OutputPlan};
pub use qrels::{Judgment, Qrels, QrelsFormat, QrelsQuery};
pub use retriever::{QueryInput, Retriever};
pub use run::{Run, RunEntry, RunQuery, RunWriter};
pub use teacher::{Teacher, TeacherKind};
pub use text::{document_text, document_text_parts, normalize_text};
