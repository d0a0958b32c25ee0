//! The interface of a teacher: a model that scores (query, passage) pairs, used to
//! rescore mining candidates (`dredge mine --rescore`) and to rerank runs.

use crate::error::Result;

/// What kind of model a [`Teacher`] is; decides how scores compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeacherKind {
    /// A cross-encoder (sentence-transformers `CrossEncoder`): one score per pair,
    /// after the activation its folder records (sigmoid or identity).
    CrossEncoder,
    /// A bi-encoder (sentence-transformers `SentenceTransformer`): the cosine of the
    /// query's and the passage's embeddings.
    BiEncoder,
}

/// A model that scores (query, passage) pairs; higher means more relevant.
///
/// Implementations are shared across threads and are expected to use every thread
/// of the current rayon pool inside one call: callers hand large batches.
pub trait Teacher: Send + Sync {
    /// A short name for reports (the model folder's name).
    fn name(&self) -> &str;

    /// What kind of model this is.
    fn kind(&self) -> TeacherKind;

    /// The score of each `(query, passage)` pair, in order.
    fn score_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>>;
}
