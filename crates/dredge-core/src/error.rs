//! Errors that name their place: the file and, for line-oriented formats, the line.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading or writing dredge's inputs and outputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure from `fs_err`, whose message already names the file.
    #[error(transparent)]
    Fs(#[from] io::Error),
    /// An I/O failure on a named file or folder.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line of a JSONL/TSV/TREC file that cannot be understood.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong, in words a person can act on.
        message: String,
    },
    /// The same id appears twice where ids must be unique.
    #[error("{}:{line}: duplicate {what} `{id}` (first seen on line {first_line})", path.display())]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// What kind of id ("document id", "query id", "judgment", ...).
        what: &'static str,
        /// The repeated id.
        id: String,
        /// Line of the first occurrence.
        first_line: u64,
        /// Line of the repeat.
        line: u64,
    },
    /// A file whose overall shape is wrong (a bad header, a truncated binary file, ...).
    #[error("{}: {message}", path.display())]
    Format {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Input that is wrong as a whole rather than at one line (for example ids that
    /// do not match between two files).
    #[error("{0}")]
    Invalid(String),
    /// A failure inside a retriever implementation (BM25, dense, ...).
    #[error(transparent)]
    Retriever(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// `Result` with dredge-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A parse error at `path:line`.
    pub fn parse(path: impl AsRef<Path>, line: u64, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.as_ref().to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// A whole-file format error.
    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// Wraps an error of another crate raised while retrieving.
    pub fn retriever(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Retriever(Box::new(err))
    }
}
