//! The errors of the vector index: each names the file or folder it is about.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while building, opening or searching a dense index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from dredge-core (reading `.npy`/ids files, atomic writes).
    #[error(transparent)]
    Core(#[from] dredge_core::Error),
    /// An I/O failure from `fs_err`, whose message already names the file.
    #[error(transparent)]
    Fs(#[from] std::io::Error),
    /// A file of the index that is truncated, corrupted or of another version.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Vectors that do not fit the corpus or the index: unknown or missing ids, a
    /// wrong dimension, NaN/infinite or all-zero rows. The message names counts and
    /// a few examples.
    #[error("{}: {message}", path.display())]
    Vectors {
        /// The vectors (or ids) file the problem was found in.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A query vector that cannot be searched with (wrong dimension, NaN, zero).
    #[error("query vector: {0}")]
    Query(String),
    /// A parameter out of range (`M`, `ef_construction`, an empty matrix, ...).
    #[error("{0}")]
    Parameter(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn vectors(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Vectors {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
}
