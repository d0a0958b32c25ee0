//! The one interface every candidate source implements: BM25, dense, hybrid.

use crate::error::Result;
use crate::hit::{Hit, Score};
use crate::ids::DocId;

/// What a retriever is asked: the query text, and its vector when the caller
/// already has one (precomputed query embeddings). A lexical retriever reads the
/// text; a dense one uses the vector, or encodes the text with its own model.
#[derive(Clone, Copy, Debug)]
pub struct QueryInput<'a> {
    /// The query text.
    pub text: &'a str,
    /// A precomputed query vector, if any.
    pub vector: Option<&'a [f32]>,
}

impl<'a> QueryInput<'a> {
    /// A text-only query.
    pub fn text(text: &'a str) -> Self {
        QueryInput { text, vector: None }
    }
}

/// A source of ranked documents.
///
/// Implementations are shared across threads; `search_batch` lets one that works
/// better in batches (an encoder, a GEMM) do so.
pub trait Retriever: Send + Sync {
    /// A short name for reports and run tags (`bm25`, `dense`, `hybrid`).
    fn name(&self) -> &str;

    /// The best `k` documents for `query`, best first.
    fn search(&self, query: &QueryInput<'_>, k: usize) -> Result<Vec<Hit>>;

    /// [`Retriever::search`] for many queries, in query order. The default runs
    /// them in parallel on the current rayon pool; the miner and `dredge search`
    /// hand whole chunks of queries to this method and expect it to use every
    /// thread.
    fn search_batch(&self, queries: &[QueryInput<'_>], k: usize) -> Result<Vec<Vec<Hit>>> {
        use rayon::prelude::*;
        queries.par_iter().map(|q| self.search(q, k)).collect()
    }

    /// The score this retriever gives each of `docs` for `query`, whether or not
    /// they would be retrieved (a document sharing no term with a BM25 query scores
    /// 0). The miner uses it to score positives that are not among the candidates.
    fn score(&self, query: &QueryInput<'_>, docs: &[DocId]) -> Result<Vec<Score>>;

    /// [`Retriever::score`] for many queries, each with its documents, in request
    /// order. The default runs them in parallel; a retriever that pays a cost per
    /// call (a sharded index holding one shard at a time) does them together.
    fn score_many(&self, requests: &[(QueryInput<'_>, &[DocId])]) -> Result<Vec<Vec<Score>>> {
        use rayon::prelude::*;
        requests
            .par_iter()
            .map(|(q, docs)| self.score(q, docs))
            .collect()
    }

    /// How many queries this retriever wants per [`Retriever::search_batch`] call,
    /// when it pays a cost per call and runs a batch's queries in parallel itself
    /// (`None`: any batch; callers then hand small groups to many threads).
    fn preferred_batch(&self) -> Option<usize> {
        None
    }
}
