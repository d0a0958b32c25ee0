//! Text encoders for dredge: sentence-transformers models of the BERT family
//! (all-MiniLM, BGE, E5, GTE, ...) on the CPU, with the tokenizer of the model folder
//! and no Python. The weights are read with candle's safetensors loader; the forward
//! pass is dredge's own, on reused buffers: the matrix products on the gemm crate,
//! the elementwise steps (bias + GELU, residual + layer norm, softmax) in loops the
//! compiler vectorises. Both run in the widest instruction set the CPU has, picked at
//! run time ([`Kernels`]: AVX-512F, AVX2 + FMA, or a portable path);
//! `DREDGE_KERNELS=portable|avx2|avx512` forces one.
//!
//! [`Encoder::load`] reads a sentence-transformers folder (`config.json`,
//! `tokenizer.json`, `model.safetensors`, and `modules.json`,
//! `1_Pooling/config.json`, `sentence_bert_config.json` for pooling, normalisation
//! and maximum length). [`Encoder::encode_passages`] and [`Encoder::encode_queries`]
//! turn texts into a [`dredge_core::Matrix`], one row per text; texts are sorted by
//! length into batches and cut at the maximum length (counted in [`EncodeStats`]). A
//! batch is packed: its tokens lie end to end, the linear layers run over exactly the
//! real tokens and attention runs text by text, so no padding is computed and no mask
//! is needed. [`EncoderDescription`] is what an index
//! stores to encode its queries the way its documents were.
//!
//! ```
//! use dredge_embed::{Encoder, EncoderOptions};
//! # fn main() -> dredge_embed::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # dredge_embed::testing::TinyModel::default().write(dir.path())?;
//! # let model_dir = dir.path();
//! let encoder = Encoder::load(model_dir, &EncoderOptions::default())?;
//! let (passages, stats) = encoder.encode_passages(&["the cat sat on the mat", ""], &mut |_| {})?;
//! let queries = encoder.encode_queries(&["cat"])?;
//! assert_eq!((passages.rows, passages.cols), (2, encoder.dimension()));
//! assert_eq!(stats.empty, 1);
//! let cosine: f32 = passages.row(0).iter().zip(queries.row(0)).map(|(a, b)| a * b).sum();
//! assert!(cosine.abs() <= 1.0 + 1e-5);
//!
//! // Stored in an index manifest, the description reloads the same encoder.
//! let description = encoder.description();
//! let again = Encoder::from_description(&description, None, 32)?;
//! assert_eq!(again.encode_queries(&["cat"])?, queries);
//! # Ok(())
//! # }
//! ```
//!
//! [`CrossEncoder::load`] reads a sentence-transformers `CrossEncoder` folder of the
//! same family (`BertForSequenceClassification`, one label, as the
//! `cross-encoder/ms-marco-*` rerankers) and scores (query, passage) pairs the way
//! `CrossEncoder.predict` does: `[CLS] query [SEP] passage [SEP]` with segment ids,
//! the longer side cut first (`longest_first`), the same packed BERT, then the
//! pooler, the classifier and the activation the folder records
//! ([`ScoreActivation`]: sigmoid or identity). Both models are a
//! [`dredge_core::Teacher`]: the cross-encoder scores pairs, the bi-encoder
//! ([`Encoder`]) by the cosine of the two embeddings.
//!
//! ```
//! use dredge_core::Teacher;
//! use dredge_embed::{CrossEncoder, CrossEncoderOptions};
//! # fn main() -> dredge_embed::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # dredge_embed::testing::TinyCrossEncoder::default().write(dir.path())?;
//! # let model_dir = dir.path();
//! let reranker = CrossEncoder::load(model_dir, &CrossEncoderOptions::default())?;
//! let pairs = [("what do cats sit on", "the cat sat on the mat"), ("what do cats sit on", "a dog")];
//! let scores = reranker.predict(&pairs)?;
//! assert_eq!(scores.len(), 2);
//! // The same scores through the Teacher trait that mining and reranking share.
//! assert_eq!(reranker.score_pairs(&pairs).unwrap(), scores);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

/// `$f::<N>(args)` with `N` = `$rows`, 1 to 24: the AVX-512 kernels of a few rows
/// (`panels.rs`, `bf16.rs`) are compiled once per row count, so that their
/// accumulators, a register per row, stay in registers.
#[cfg(target_arch = "x86_64")]
macro_rules! with_rows {
    ($rows:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $rows {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            7 => $f::<7>($($arg),*),
            8 => $f::<8>($($arg),*),
            9 => $f::<9>($($arg),*),
            10 => $f::<10>($($arg),*),
            11 => $f::<11>($($arg),*),
            12 => $f::<12>($($arg),*),
            13 => $f::<13>($($arg),*),
            14 => $f::<14>($($arg),*),
            15 => $f::<15>($($arg),*),
            16 => $f::<16>($($arg),*),
            17 => $f::<17>($($arg),*),
            18 => $f::<18>($($arg),*),
            19 => $f::<19>($($arg),*),
            20 => $f::<20>($($arg),*),
            21 => $f::<21>($($arg),*),
            22 => $f::<22>($($arg),*),
            23 => $f::<23>($($arg),*),
            24 => $f::<24>($($arg),*),
            n => unreachable!("1 to 24 rows at once, not {n}"),
        }
    };
}

mod bert;
mod bf16;
mod config;
mod cross;
mod encoder;
mod error;
mod kernels;
mod panels;
mod quant;
#[cfg(test)]
mod reference;
mod teacher;
#[doc(hidden)]
pub mod testing;

pub use config::Pooling;
pub use cross::{CrossEncoder, CrossEncoderOptions, ScoreActivation, ScoreProgress, ScoreStats};
pub use encoder::{
    EncodeProgress, EncodeStats, Encoder, EncoderDescription, EncoderOptions, TextKind,
};
pub use error::{Error, Result};
pub use kernels::{KERNELS_ENV, Kernels};
pub use teacher::{BiEncoderTeacher, cross_encoder_teacher, is_cross_encoder, load_teacher};
#[cfg(test)]
mod cross_tests;
pub use quant::Precision;
#[cfg(test)]
mod tests;
