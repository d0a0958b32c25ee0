//! Errors of the encoder, each naming the file or the model folder it concerns.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model folder or encoding texts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the model folder must hold is not there.
    #[error("{}: missing {what}", path.display())]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
        /// What the file is for ("the model weights", ...).
        what: &'static str,
    },
    /// A JSON file of the model folder that cannot be read as expected.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The folder holds a model this encoder does not implement (an architecture
    /// other than BERT, a pooling mode or a module it does not know).
    #[error("{}: unsupported model: {message}", path.display())]
    Unsupported {
        /// The file that says so.
        path: PathBuf,
        /// What is not supported.
        message: String,
    },
    /// The weights file lacks a tensor or has one of the wrong shape.
    #[error("{}: {message}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The tensor and what is wrong with it.
        message: String,
    },
    /// The tokenizer could not be loaded or failed on a text.
    #[error("{}: tokenizer: {message}", path.display())]
    Tokenizer {
        /// The `tokenizer.json` in use.
        path: PathBuf,
        /// The tokenizer's message.
        message: String,
    },
    /// An option that contradicts the model (for example a maximum length beyond
    /// its position embeddings), or a description that does not match the model.
    #[error("{0}")]
    Invalid(String),
    /// A failure inside candle while running the model.
    #[error("running the model: {0}")]
    Candle(#[from] candle_core::Error),
    /// An I/O failure from `fs_err`, whose message names the file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
