//! Errors of the BM25 index, each naming the folder or file it concerns.

use std::path::{Path, PathBuf};

/// What can go wrong while building, opening or searching a BM25 index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tantivy failed on the index folder.
    #[error("{}: {source}", path.display())]
    Tantivy {
        /// The `bm25/` folder.
        path: PathBuf,
        /// tantivy's error.
        source: tantivy::TantivyError,
    },
    /// An I/O failure (`fs_err` messages name the file).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A dredge-core reader or writer failed.
    #[error(transparent)]
    Core(#[from] dredge_core::Error),
    /// The folder is not a dredge BM25 index, or one this version cannot read.
    #[error("{}: {message}", path.display())]
    Format {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A wrong argument: parameters out of range, a document id out of range.
    #[error("{0}")]
    Invalid(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn tantivy(path: &Path, source: tantivy::TantivyError) -> Self {
        Error::Tantivy {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

impl From<Error> for dredge_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Core(e) => e,
            other => dredge_core::Error::retriever(other),
        }
    }
}
