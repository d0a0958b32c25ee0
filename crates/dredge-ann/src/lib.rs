//! Dense retrieval for dredge: a memory-mapped store of f32 vectors in
//! [`DocId`](dredge_core::DocId) order, exact (brute-force) search with blocked
//! SIMD kernels, and HNSW graphs (built and searched by dredge itself), all persisted
//! in one folder.
//!
//! - [`DenseIndex`] builds, opens and searches an index folder: `search` (HNSW when
//!   built with one, else exact), `search_exact` (always exact: the ground truth),
//!   batched variants over rayon, and `score` for given documents. It implements
//!   [`dredge_core::Retriever`] for queries that carry a vector.
//! - [`Similarity`]: cosine, inner product or L2; [`Ann`] and [`HnswParams`] say
//!   how neighbours are found.
//! - [`align_to_docs`], [`check_rows`], [`read_doc_vectors`],
//!   [`read_query_vectors`]: checks of user-supplied vectors against the corpus and
//!   the index, with errors naming counts and examples.
//! - [`VectorStore`]: the mapped rows themselves.
//!
//! Text encoding is not this crate's job: bring vectors (or use dredge-embed).
//!
//! ```
//! use dredge_ann::{Ann, DenseIndex, HnswParams, Similarity};
//! use dredge_core::{DocId, Matrix};
//! # fn main() -> dredge_ann::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let vectors = Matrix { rows: 3, cols: 2, data: vec![1.0, 0.0, 0.6, 0.8, 0.0, 1.0] };
//! let ann = Ann::Hnsw(HnswParams { m: 8, ef_construction: 32, seed: 1 });
//! DenseIndex::build(dir.path(), &vectors, Similarity::Cosine, &ann)?;
//!
//! let index = DenseIndex::open(dir.path())?;
//! let hits = index.search(&[0.0, 2.0], 2, 16)?;
//! assert_eq!((hits[0].doc, hits[1].doc), (DocId(2), DocId(1)));
//! assert_eq!(index.search_exact(&[0.0, 2.0], 2)?, hits);
//! assert_eq!(index.score(&[1.0, 0.0], &[DocId(1)])?, [0.6]);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod error;
mod exact;
mod hnsw;
mod index;
mod kernels;
mod similarity;
mod store;
mod validate;

pub use error::{Error, Result};
pub use hnsw::HnswParams;
pub use index::{
    Ann, DEFAULT_EF, DenseIndex, FORMAT_NAME, FORMAT_VERSION, GRAPH_FILE, MANIFEST_FILE, Manifest,
    VECTORS_FILE,
};
pub use similarity::Similarity;
pub use store::VectorStore;
pub use validate::{VectorSource, align_to_docs, check_rows, read_doc_vectors, read_query_vectors};

/// The name of the SIMD kernels chosen for this CPU (`avx2+fma` or `portable`), for
/// benchmark reports.
pub fn kernel_name() -> &'static str {
    kernels::kernels().name
}
