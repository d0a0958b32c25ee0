//! The error of the composition layer: the leaf crates' errors, problems of an index
//! folder as a whole, and settings that do not fit the index.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while building, opening, searching or mining an
/// index. Messages name the file (and line) where there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a format of the field (corpus, queries, qrels, runs,
    /// `.npy`, the document table).
    #[error(transparent)]
    Core(#[from] dredge_core::Error),
    /// The BM25 component.
    #[error(transparent)]
    Bm25(#[from] dredge_bm25::Error),
    /// A dense component.
    #[error(transparent)]
    Ann(#[from] dredge_ann::Error),
    /// The encoder.
    #[cfg(feature = "encoder")]
    #[error(transparent)]
    Encoder(#[from] dredge_embed::Error),
    /// The miner.
    #[error(transparent)]
    Mine(#[from] dredge_mine::Error),
    /// Writing an output (a run, mined rows) failed; the front end names the file.
    #[error("writing the output failed")]
    Write(#[from] std::io::Error),
    /// An index folder that is missing, damaged or of another version.
    #[error("{}: {message}", path.display())]
    Index {
        /// The index folder or the file in it.
        path: PathBuf,
        /// What is wrong and what to do about it.
        message: String,
    },
    /// Query text to encode for a dense component that records no encoder.
    #[error(
        "{component}: the dense component was built from vectors given to dredge, so dredge cannot encode query text for it: give query vectors made with the same model, or rebuild the component from the model"
    )]
    NoEncoder {
        /// The index folder and component (`INDEX` dense component `NAME`).
        component: String,
    },
    /// Settings that do not fit (a mode the index cannot serve, a missing vector).
    #[error("{0}")]
    Invalid(String),
    /// `source`, with what was being done when it happened.
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A problem of the index folder (or a file in it) at `path`.
    pub fn index(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Index {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
}

/// Adds what was being done to an error, keeping it as the source.
pub(crate) trait Context<T> {
    /// Wraps the error with `context()`.
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context(),
            source: Box::new(e.into()),
        })
    }
}

impl From<Error> for dredge_core::Error {
    /// For errors raised inside a [`dredge_core::Retriever`] implementation.
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            other => dredge_core::Error::retriever(other),
        }
    }
}
