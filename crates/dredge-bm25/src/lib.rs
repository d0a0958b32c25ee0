//! BM25 search as Pyserini (Lucene) does it, on tantivy: the same English
//! analysis, the same formula with configurable `k1`/`b`, the same float operations
//! per term (a document's per-term scores are summed in `f32`, where Lucene sums in
//! `f64`, so a total can differ from Lucene's in its last bit).
//!
//! - [`EnglishAnalyzer`]: Lucene's `EnglishAnalyzer` (UAX #29 words, possessive
//!   removal, lowercase, 33 stop words, the original Porter stemmer).
//! - [`Bm25Builder`]: indexes title and text as one field into a tantivy folder.
//! - [`Bm25Index`]: opens the folder and scores with our own Lucene-exact BM25 over
//!   tantivy's postings and fieldnorms (tantivy's own scorer fixes `k1 = 1.2`,
//!   `b = 0.75`); it is the `bm25` [`dredge_core::Retriever`].
//! - [`length_to_norm`] / [`norm_to_length`]: Lucene's one-byte document lengths.
//!
//! ```
//! use dredge_bm25::{Bm25Builder, Bm25Index, BuildOptions};
//! # fn main() -> dredge_bm25::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("bm25");
//! let mut builder = Bm25Builder::create(&path, &BuildOptions::default())?;
//! builder.add("Sourdough starter", "Feed the starter flour and water every day.")?;
//! builder.add("Baguettes", "Shape the dough into long loaves.")?;
//! builder.finish()?;
//!
//! let index = Bm25Index::open(&path)?;
//! let hits = index.search_text("how often should I feed a starter?", 10)?;
//! assert_eq!(hits.len(), 1);
//! assert_eq!(hits[0].doc.0, 0);
//! assert!(index.search_text("the and of", 10)?.is_empty());
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod analyzer;
mod cache;
mod collection;
mod error;
mod index;
mod lucene;
mod porter;
mod read_only;
mod tokenizer;
mod words;

pub use analyzer::{AnalyzerInfo, EnglishAnalyzer, MAX_WORD_CHARS, STOP_WORDS, is_stop_word};
pub use collection::{CollectionStats, CollectionSummary};
pub use error::{Error, Result};
pub use index::{
    Bm25Builder, Bm25Index, Bm25Info, BuildOptions, DEFAULT_CACHE_BYTES, FORMAT_NAME,
    FORMAT_VERSION, INFO_FILE,
};
pub use lucene::{Bm25Params, length_to_norm, norm_to_length};
