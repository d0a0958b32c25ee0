//! The miner's errors: every one names its place (file and line) or the setting at fault.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while mining.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading inputs, retrieving or writing, as reported by dredge-core.
    #[error(transparent)]
    Core(#[from] dredge_core::Error),
    /// An I/O failure from `fs_err`, whose message already names the file.
    #[error(transparent)]
    Fs(#[from] io::Error),
    /// An I/O failure on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line of an input file (training pairs) that cannot be understood.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong, in words a person can act on.
        message: String,
    },
    /// A setting that is out of range or contradicts another one.
    #[error("{0}")]
    Config(String),
}

/// `Result` with the miner's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A parse error at `path:line`.
    pub fn parse(path: impl AsRef<Path>, line: u64, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.as_ref().to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}
