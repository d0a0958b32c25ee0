//! The encoder: prefixes, tokenization, length-sorted batches, the model, pooling
//! and normalisation.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dredge_core::Matrix;
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::bert::{Bert, Packed, Products, Workspace};
use crate::config::{ModelConfig, Pooling, required};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::quant::Precision;

/// Texts tokenized at once; each such chunk is sorted by length and cut into batches.
/// Large enough that sorting leaves little padding, small enough that the token ids of
/// a big corpus are never all in memory.
const CHUNK: usize = 8192;

/// How to load and run an encoder. `Default` takes everything from the model folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderOptions {
    /// Cut texts at this many tokens, special tokens included, instead of the
    /// model's `max_seq_length`. At most the model's `max_position_embeddings`.
    pub max_length: Option<usize>,
    /// Texts per forward pass (at least 1).
    pub batch_size: usize,
    /// Put before every query (E5: `"query: "`, BGE: `"Represent this sentence for
    /// searching relevant passages: "`). `None`: the model's `query` prompt from
    /// `config_sentence_transformers.json`, else nothing.
    pub query_prefix: Option<String>,
    /// Put before every passage (E5: `"passage: "`). `None`: the model's `document`,
    /// `passage` or `corpus` prompt, else nothing.
    pub passage_prefix: Option<String>,
    /// The arithmetic of the linear layers: float32, or int8 with the weights
    /// quantized when the model is loaded ([`Precision`]).
    pub precision: Precision,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            max_length: None,
            batch_size: 32,
            query_prefix: None,
            passage_prefix: None,
            precision: Precision::Fp32,
        }
    }
}

/// Whether texts are queries or passages: it picks the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    /// Search queries: the query prefix.
    Query,
    /// Documents: the passage prefix.
    Passage,
}

/// What encoding a list of texts did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EncodeStats {
    /// Texts encoded.
    pub texts: usize,
    /// Texts that were empty or only whitespace (they still get a vector: that of
    /// the prefix and the special tokens).
    pub empty: usize,
    /// Texts cut at the maximum length.
    pub truncated: usize,
    /// Tokens run through the model, special tokens included. Batches are packed
    /// (texts end to end), so no padding is ever computed.
    pub tokens: u64,
    /// Floating-point operations of the model's matrix products (linear layers and
    /// attention): `2 * multiply-adds`, for rating the speed against the machine.
    pub flops: u64,
    /// Forward passes.
    pub batches: usize,
    /// Wall-clock seconds, tokenization included.
    pub seconds: f64,
}

/// Where an encoding stands; passed to the progress callback after each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeProgress {
    /// Texts encoded so far.
    pub done: usize,
    /// Texts in all.
    pub total: usize,
    /// Tokens run through the model so far (padding excluded).
    pub tokens: u64,
}

/// What an index must remember to encode queries the way its documents were: stored
/// in the index manifest, and turned back into the same encoder by
/// [`Encoder::from_description`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderDescription {
    /// The model folder, absolute.
    pub model: PathBuf,
    /// The folder's name (`all-MiniLM-L6-v2`), for reports.
    pub model_name: String,
    /// The transformer architecture (`bert`).
    pub architecture: String,
    /// Size of the vectors.
    pub dimension: usize,
    /// How token vectors are pooled.
    pub pooling: Pooling,
    /// Whether vectors are L2-normalised (then inner product is cosine).
    pub normalize: bool,
    /// Tokens per text at most, special tokens included.
    pub max_length: usize,
    /// Put before every query.
    pub query_prefix: String,
    /// Put before every passage.
    pub passage_prefix: String,
    /// FNV-1a hash of `config.json`, `tokenizer.json` and the size of the weights,
    /// to notice a model folder that changed since.
    pub fingerprint: String,
    /// The arithmetic of the linear layers (`fp32` when absent: descriptions
    /// written before int8 existed).
    #[serde(default)]
    pub precision: Precision,
}

/// A sentence-transformers model of the BERT family, ready to encode.
///
/// Thread-safe (`Sync`); one call uses every core through rayon (tokenizing, the
/// gemm products and attention text by text; `RAYON_NUM_THREADS` caps them). The
/// kernels run in the widest instruction set the CPU has ([`Kernels::detect`]).
pub struct Encoder {
    dir: PathBuf,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    model: Bert,
    config: ModelConfig,
    max_length: usize,
    batch_size: usize,
    query_prefix: String,
    passage_prefix: String,
    fingerprint: String,
    kernels: Kernels,
    precision: Precision,
}

impl Encoder {
    /// Loads the sentence-transformers folder `model_dir`: `config.json`,
    /// `tokenizer.json` and `model.safetensors` are required; `modules.json`,
    /// `1_Pooling/config.json`, `sentence_bert_config.json` and
    /// `config_sentence_transformers.json` give pooling, normalisation, maximum length
    /// and prompts. The padding and truncation written in `tokenizer.json` are
    /// replaced: each batch is padded to its longest text, texts are cut at
    /// the maximum length. The kernels are the widest the CPU has, or those named by
    /// `DREDGE_KERNELS` (`portable`, `avx2`, `avx512`; an error if the CPU lacks them).
    pub fn load(model_dir: impl AsRef<Path>, options: &EncoderOptions) -> Result<Self> {
        let given = model_dir.as_ref();
        if !given.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: no such model folder",
                given.display()
            )));
        }
        let dir = std::path::absolute(given).unwrap_or_else(|_| given.to_owned());
        let config = ModelConfig::read(&dir)?;
        let tokenizer_path = required(&dir, "tokenizer.json", "the tokenizer (tokenizer.json)")?;
        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() {
            let what = if dir.join("pytorch_model.bin").is_file() {
                "the model weights (only pytorch_model.bin is there: convert it to safetensors)"
            } else {
                "the model weights (model.safetensors)"
            };
            return Err(Error::MissingFile {
                path: weights_path,
                what,
            });
        }

        let model_max = config.bert.max_position_embeddings;
        let max_length = match options.max_length {
            Some(n) if n > model_max => {
                return Err(Error::Invalid(format!(
                    "maximum length {n} exceeds the {model_max} positions of {}",
                    dir.join("config.json").display()
                )));
            }
            Some(n) => n,
            None => config
                .max_seq_length
                .unwrap_or_else(|| tokenizer_max_length(&dir).unwrap_or(model_max))
                .min(model_max),
        };
        if max_length < 2 {
            return Err(Error::Invalid(format!(
                "maximum length {max_length} leaves no room for a token"
            )));
        }
        if options.batch_size == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }

        let tokenizer = load_tokenizer(&tokenizer_path, max_length)?;

        let kernels = Kernels::detect()?;
        let mut model = Bert::load(&weights_path, &config.bert)?;
        match options.precision {
            Precision::Fp32 => {}
            Precision::Int8 => model.quantize(),
            Precision::Bf16 => model.round_to_bf16(),
        }
        let fingerprint = fingerprint(&dir, &tokenizer_path, &weights_path)?;
        Ok(Encoder {
            query_prefix: options
                .query_prefix
                .clone()
                .or_else(|| config.query_prompt.clone())
                .unwrap_or_default(),
            passage_prefix: options
                .passage_prefix
                .clone()
                .or_else(|| config.passage_prompt.clone())
                .unwrap_or_default(),
            dir,
            tokenizer,
            tokenizer_path,
            model,
            config,
            max_length,
            batch_size: options.batch_size,
            fingerprint,
            kernels,
            precision: options.precision,
        })
    }

    /// The same encoder on the `kernels` path; an error if this CPU cannot run it.
    pub fn with_kernels(mut self, kernels: Kernels) -> Result<Self> {
        self.kernels = kernels.check()?;
        Ok(self)
    }

    /// The instruction set the encoder's kernels run in.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The arithmetic of the linear layers.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Loads the encoder an index was built with, from its description: the same
    /// maximum length, prefixes and precision. `model_dir` replaces the recorded folder (for an
    /// index moved to another machine). Fails if the folder's model differs from the
    /// described one (dimension, pooling, normalisation or fingerprint).
    pub fn from_description(
        description: &EncoderDescription,
        model_dir: Option<&Path>,
        batch_size: usize,
    ) -> Result<Self> {
        let dir = model_dir.unwrap_or(&description.model);
        let encoder = Encoder::load(
            dir,
            &EncoderOptions {
                max_length: Some(description.max_length),
                batch_size,
                query_prefix: Some(description.query_prefix.clone()),
                passage_prefix: Some(description.passage_prefix.clone()),
                precision: description.precision,
            },
        )?;
        let found = encoder.description();
        let differs = |what: &str, was: String, now: String| {
            Error::Invalid(format!(
                "{}: the model differs from the one described ({what} was {was}, is {now})",
                encoder.dir.display()
            ))
        };
        if found.dimension != description.dimension {
            return Err(differs(
                "dimension",
                description.dimension.to_string(),
                found.dimension.to_string(),
            ));
        }
        if found.pooling != description.pooling {
            return Err(differs(
                "pooling",
                description.pooling.to_string(),
                found.pooling.to_string(),
            ));
        }
        if found.normalize != description.normalize {
            return Err(differs(
                "normalize",
                description.normalize.to_string(),
                found.normalize.to_string(),
            ));
        }
        if found.fingerprint != description.fingerprint {
            return Err(differs(
                "fingerprint",
                description.fingerprint.clone(),
                found.fingerprint,
            ));
        }
        Ok(encoder)
    }

    /// What to store in an index to reload this encoder with
    /// [`Encoder::from_description`].
    pub fn description(&self) -> EncoderDescription {
        EncoderDescription {
            model: self.dir.clone(),
            model_name: self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            architecture: "bert".to_owned(),
            dimension: self.dimension(),
            pooling: self.config.pooling,
            normalize: self.config.normalize,
            max_length: self.max_length,
            query_prefix: self.query_prefix.clone(),
            passage_prefix: self.passage_prefix.clone(),
            fingerprint: self.fingerprint.clone(),
            precision: self.precision,
        }
    }

    /// The model folder, absolute.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Size of the vectors.
    pub fn dimension(&self) -> usize {
        self.model.hidden_size()
    }

    /// Tokens per text at most, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Texts per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Pooling of the model.
    pub fn pooling(&self) -> Pooling {
        self.config.pooling
    }

    /// Whether vectors are L2-normalised.
    pub fn normalize(&self) -> bool {
        self.config.normalize
    }

    /// The prefix put before texts of `kind`.
    pub fn prefix(&self, kind: TextKind) -> &str {
        match kind {
            TextKind::Query => &self.query_prefix,
            TextKind::Passage => &self.passage_prefix,
        }
    }

    /// Encodes queries (with the query prefix): one row per query, in order.
    pub fn encode_queries<S: AsRef<str>>(&self, queries: &[S]) -> Result<Matrix> {
        Ok(self.encode(queries, TextKind::Query, &mut |_| {})?.0)
    }

    /// Encodes passages (with the passage prefix): one row per passage, in order,
    /// calling `progress` after each batch.
    pub fn encode_passages<S: AsRef<str>>(
        &self,
        passages: &[S],
        progress: &mut dyn FnMut(&EncodeProgress),
    ) -> Result<(Matrix, EncodeStats)> {
        self.encode(passages, TextKind::Passage, progress)
    }

    /// Encodes `texts` as `kind`: one row per text, in order, calling `progress` after
    /// each batch.
    pub fn encode<S: AsRef<str>>(
        &self,
        texts: &[S],
        kind: TextKind,
        progress: &mut dyn FnMut(&EncodeProgress),
    ) -> Result<(Matrix, EncodeStats)> {
        let start = Instant::now();
        let dim = self.dimension();
        let mut data = vec![0f32; texts.len() * dim];
        let mut stats = EncodeStats {
            texts: texts.len(),
            ..EncodeStats::default()
        };
        let prefix = self.prefix(kind);
        let mut done = 0;
        let mut workspace = Workspace::with_products(match kind {
            TextKind::Query => Products::Panels,
            TextKind::Passage => Products::Gemm,
        });
        let (mut ids, mut type_ids, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
        for (chunk_no, chunk) in texts.chunks(CHUNK).enumerate() {
            let offset = chunk_no * CHUNK;
            let inputs: Vec<String> = chunk
                .iter()
                .map(|t| {
                    let t = t.as_ref();
                    if t.trim().is_empty() {
                        stats.empty += 1;
                    }
                    let text = format!("{prefix}{t}");
                    if self.config.do_lower_case {
                        text.to_lowercase()
                    } else {
                        text
                    }
                })
                .collect();
            let encodings =
                self.tokenizer
                    .encode_batch(inputs, true)
                    .map_err(|e| Error::Tokenizer {
                        path: self.tokenizer_path.clone(),
                        message: e.to_string(),
                    })?;
            stats.truncated += encodings
                .iter()
                .filter(|e| !e.get_overflowing().is_empty())
                .count();
            let mut order: Vec<usize> = (0..encodings.len()).collect();
            // Longest first, as sentence-transformers does: the slowest batches come
            // first, so the time estimate only improves; texts of a batch have about
            // the same length, so attention splits evenly over the cores.
            order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
            for batch_rows in order.chunks(self.batch_size) {
                ids.clear();
                type_ids.clear();
                offsets.clear();
                offsets.push(0);
                for &i in batch_rows {
                    let e = &encodings[i];
                    ids.extend_from_slice(e.get_ids());
                    type_ids.extend_from_slice(e.get_type_ids());
                    offsets.push(ids.len());
                    stats.flops += 2 * e.len() as u64 * self.model.multiply_adds_per_token(e.len());
                }
                self.model.forward(
                    self.kernels,
                    &Packed {
                        ids: &ids,
                        type_ids: &type_ids,
                        offsets: &offsets,
                    },
                    &mut workspace,
                )?;
                for (text, &i) in offsets.windows(2).zip(batch_rows) {
                    let out = &mut data[(offset + i) * dim..(offset + i + 1) * dim];
                    pool(
                        self.config.pooling,
                        &workspace.hidden[text[0] * dim..text[1] * dim],
                        out,
                    );
                    if self.config.normalize {
                        l2_normalize(out);
                    }
                }
                stats.tokens += ids.len() as u64;
                stats.batches += 1;
                done += batch_rows.len();
                progress(&EncodeProgress {
                    done,
                    total: texts.len(),
                    tokens: stats.tokens,
                });
            }
        }
        stats.seconds = start.elapsed().as_secs_f64();
        Ok((
            Matrix {
                rows: texts.len(),
                cols: dim,
                data,
            },
            stats,
        ))
    }
}

/// Pools the token vectors of one text (`tokens`, `len * dim`) into `out`.
fn pool(pooling: Pooling, tokens: &[f32], out: &mut [f32]) {
    let dim = out.len();
    let len = tokens.len() / dim;
    if len == 0 {
        // Only a tokenizer without special tokens yields no token at all.
        out.fill(0.0);
        return;
    }
    let token = |t: usize| &tokens[t * dim..(t + 1) * dim];
    match pooling {
        Pooling::Cls => out.copy_from_slice(token(0)),
        Pooling::LastToken => out.copy_from_slice(token(len - 1)),
        Pooling::Max => {
            out.copy_from_slice(token(0));
            for t in 1..len {
                for (o, v) in out.iter_mut().zip(token(t)) {
                    *o = o.max(*v);
                }
            }
        }
        Pooling::Mean | Pooling::MeanSqrtLen => {
            out.fill(0.0);
            for t in 0..len {
                for (o, v) in out.iter_mut().zip(token(t)) {
                    *o += v;
                }
            }
            let divisor = if pooling == Pooling::Mean {
                len as f32
            } else {
                (len as f32).sqrt()
            };
            out.iter_mut().for_each(|o| *o /= divisor);
        }
    }
}

/// Scales `v` to unit length (left as is when it is zero).
fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// `model_max_length` of `tokenizer_config.json`, when it is a real limit (the
/// transformers library writes 1e30 for "none").
fn tokenizer_max_length(dir: &Path) -> Option<usize> {
    let text = fs_err::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let n = value.get("model_max_length")?.as_f64()?;
    (2.0..1e6).contains(&n).then_some(n as usize)
}

/// FNV-1a over `config.json`, `tokenizer.json` and the size of the weights file.
fn fingerprint(dir: &Path, tokenizer: &Path, weights: &Path) -> Result<String> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&fs_err::read(dir.join("config.json"))?);
    feed(&fs_err::read(tokenizer)?);
    feed(&fs_err::metadata(weights)?.len().to_le_bytes());
    Ok(format!("{hash:016x}"))
}

/// The tokenizer of a model folder as both encoders run it: no padding (texts are
/// packed), truncation on the right at `max_length` tokens, `longest_first` for pairs.
pub(crate) fn load_tokenizer(tokenizer_path: &Path, max_length: usize) -> Result<Tokenizer> {
    let tokenizer_error = |e: tokenizers::Error| Error::Tokenizer {
        path: tokenizer_path.to_path_buf(),
        message: e.to_string(),
    };
    let mut tokenizer = Tokenizer::from_file(tokenizer_path).map_err(tokenizer_error)?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(tokenizer_error)?;
    Ok(tokenizer)
}
