//! Cross-encoders: sentence-transformers `CrossEncoder` folders of the BERT family
//! (`BertForSequenceClassification` with one label, as `cross-encoder/ms-marco-*`
//! rerankers are), scoring (query, passage) pairs.
//!
//! A pair is tokenized as the Hugging Face tokenizer does it for
//! `tokenizer(query, passage, truncation="longest_first")`: `[CLS] query [SEP]
//! passage [SEP]`, segment id 0 up to the first `[SEP]` and 1 after, and when the
//! pair is longer than the maximum length a token is removed from the longer side
//! until it fits. The encoder is the bi-encoder's BERT stack, run packed (no padding);
//! the `[CLS]` state then goes through BERT's pooler (`tanh(W x + b)`) and the
//! classifier (one logit), and the activation the folder records (sigmoid or
//! identity) gives the score.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};
use dredge_core::{Teacher, TeacherKind};
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::bert::{Bert, Packed, Products, Workspace};
use crate::config::{read_bert_config, read_json, required};
use crate::encoder::load_tokenizer;
use crate::error::{Error, Result};
use crate::kernels::Kernels;

/// Pairs tokenized at once; each such chunk is sorted by length and cut into batches.
const CHUNK: usize = 8192;

/// The function applied to a cross-encoder's logit to give its score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreActivation {
    /// `1 / (1 + e^-logit)`: scores in `(0, 1)`. What sentence-transformers uses for a
    /// one-label model whose folder records no activation.
    Sigmoid,
    /// The logit itself (`cross-encoder/ms-marco-*` record this).
    Identity,
}

impl ScoreActivation {
    /// `sigmoid` or `identity`.
    pub fn name(self) -> &'static str {
        match self {
            ScoreActivation::Sigmoid => "sigmoid",
            ScoreActivation::Identity => "identity",
        }
    }

    /// The score of `logit`.
    pub fn apply(self, logit: f32) -> f32 {
        match self {
            ScoreActivation::Sigmoid => 1.0 / (1.0 + (-logit).exp()),
            ScoreActivation::Identity => logit,
        }
    }
}

impl std::fmt::Display for ScoreActivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to load and run a cross-encoder. `Default` takes everything from the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossEncoderOptions {
    /// Cut pairs at this many tokens, special tokens included, instead of the
    /// folder's maximum length. At most the model's `max_position_embeddings`.
    pub max_length: Option<usize>,
    /// Pairs per forward pass (at least 1).
    pub batch_size: usize,
    /// Apply this activation instead of the one the folder records.
    pub activation: Option<ScoreActivation>,
}

impl Default for CrossEncoderOptions {
    fn default() -> Self {
        CrossEncoderOptions {
            max_length: None,
            batch_size: 32,
            activation: None,
        }
    }
}

/// What scoring a list of pairs did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoreStats {
    /// Pairs scored.
    pub pairs: usize,
    /// Pairs cut at the maximum length.
    pub truncated: usize,
    /// Tokens run through the model, special tokens included (no padding).
    pub tokens: u64,
    /// Forward passes.
    pub batches: usize,
    /// Wall-clock seconds, tokenization included.
    pub seconds: f64,
}

/// Where a scoring stands; passed to the progress callback after each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreProgress {
    /// Pairs scored so far.
    pub done: usize,
    /// Pairs in all.
    pub total: usize,
}

/// BERT's pooler and the classifier of `BertForSequenceClassification`.
struct Head {
    /// `(hidden, hidden)` row-major.
    pooler_weight: Vec<f32>,
    pooler_bias: Vec<f32>,
    /// `(hidden,)`: the one label's row.
    classifier_weight: Vec<f32>,
    classifier_bias: f32,
}

impl Head {
    /// The logit of a pair from its `[CLS]` state; `pooled` is scratch of `hidden`.
    fn logit(&self, cls: &[f32], pooled: &mut [f32]) -> f32 {
        let h = cls.len();
        for (j, p) in pooled.iter_mut().enumerate() {
            let row = &self.pooler_weight[j * h..(j + 1) * h];
            *p = (self.pooler_bias[j] + dot(row, cls)).tanh();
        }
        self.classifier_bias + dot(&self.classifier_weight, pooled)
    }
}

/// A dot product in 8 lanes, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[derive(Deserialize, Default)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
    transformer_task: Option<String>,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

/// A sentence-transformers cross-encoder of the BERT family, ready to score pairs.
///
/// Thread-safe (`Sync`); one call uses every core of the current rayon pool
/// (tokenizing, the gemm products, attention pair by pair).
pub struct CrossEncoder {
    dir: PathBuf,
    name: String,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    model: Bert,
    head: Head,
    activation: ScoreActivation,
    max_length: usize,
    batch_size: usize,
    do_lower_case: bool,
    kernels: Kernels,
}

impl CrossEncoder {
    /// Loads the cross-encoder folder `model_dir`: `config.json` (a
    /// `BertForSequenceClassification` with one label), `tokenizer.json` and
    /// `model.safetensors` are required. The activation is read where
    /// sentence-transformers records it: `activation_fn` of
    /// `config_sentence_transformers.json` (5.x), `sentence_transformers.activation_fn`
    /// of `config.json` (4.x), `sbert_ce_default_activation_function` of `config.json`
    /// (before 4.0); without one, sigmoid, as sentence-transformers does for one label.
    /// The maximum length is `max_seq_length` of `sentence_bert_config.json`, else
    /// `model_max_length` of `tokenizer_config.json`, else the model's positions, and
    /// never more than those.
    pub fn load(model_dir: impl AsRef<Path>, options: &CrossEncoderOptions) -> Result<Self> {
        let given = model_dir.as_ref();
        if !given.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: no such model folder",
                given.display()
            )));
        }
        let dir = std::path::absolute(given).unwrap_or_else(|_| given.to_owned());
        let config_path = required(&dir, "config.json", "the transformer configuration")?;
        let raw: serde_json::Value = read_json(&config_path)?;
        check_sequence_classification(&config_path, &raw)?;
        let bert = read_bert_config(&config_path)?;
        check_modules(&dir)?;
        let sbert_path = dir.join("sentence_bert_config.json");
        let sbert: SentenceBertConfig = if sbert_path.is_file() {
            read_json(&sbert_path)?
        } else {
            SentenceBertConfig::default()
        };
        if let Some(task) = &sbert.transformer_task
            && task != "sequence-classification"
        {
            return Err(Error::Unsupported {
                path: sbert_path,
                message: format!(
                    "transformer_task `{task}`: a cross-encoder is a sequence-classification model"
                ),
            });
        }
        let recorded = recorded_activation(&dir, &config_path, &raw)?;
        let activation = options
            .activation
            .or(recorded)
            .unwrap_or(ScoreActivation::Sigmoid);

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
        let model_max = bert.max_position_embeddings;
        let max_length = match options.max_length {
            Some(n) if n > model_max => {
                return Err(Error::Invalid(format!(
                    "maximum length {n} exceeds the {model_max} positions of {}",
                    config_path.display()
                )));
            }
            Some(n) => n,
            None => sbert
                .max_seq_length
                .or_else(|| tokenizer_max_length(&dir))
                .unwrap_or(model_max)
                .min(model_max),
        };
        if max_length < 3 {
            return Err(Error::Invalid(format!(
                "maximum length {max_length} leaves no room for a pair ([CLS] and two [SEP] take 3 tokens)"
            )));
        }
        if options.batch_size == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        let tokenizer = load_tokenizer(&tokenizer_path, max_length)?;
        let kernels = Kernels::detect()?;
        let model = Bert::load(&weights_path, &bert)?;
        let head = read_head(&weights_path, bert.hidden_size)?;
        Ok(CrossEncoder {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir,
            tokenizer,
            tokenizer_path,
            model,
            head,
            activation,
            max_length,
            batch_size: options.batch_size,
            do_lower_case: sbert.do_lower_case,
            kernels,
        })
    }

    /// The same cross-encoder on the `kernels` path; an error if this CPU cannot run it.
    pub fn with_kernels(mut self, kernels: Kernels) -> Result<Self> {
        self.kernels = kernels.check()?;
        Ok(self)
    }

    /// The instruction set the kernels run in.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The model folder, absolute.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder's name (`ms-marco-MiniLM-L6-v2`), for reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The activation applied to the logits.
    pub fn activation(&self) -> ScoreActivation {
        self.activation
    }

    /// Tokens per pair at most, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Pairs per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The scores of `(query, passage)` pairs, in order, as
    /// sentence-transformers' `CrossEncoder.predict` gives them.
    pub fn predict<Q: AsRef<str> + Sync, P: AsRef<str> + Sync>(
        &self,
        pairs: &[(Q, P)],
    ) -> Result<Vec<f32>> {
        Ok(self.score(pairs, &mut |_| {})?.0)
    }

    /// The scores of `(query, passage)` pairs, in order, calling `progress` after each
    /// batch. Pairs are sorted by length into batches (longest first), packed, and
    /// cut at the maximum length (counted in [`ScoreStats::truncated`]).
    pub fn score<Q: AsRef<str> + Sync, P: AsRef<str> + Sync>(
        &self,
        pairs: &[(Q, P)],
        progress: &mut dyn FnMut(&ScoreProgress),
    ) -> Result<(Vec<f32>, ScoreStats)> {
        let start = Instant::now();
        let h = self.model.hidden_size();
        let mut scores = vec![0f32; pairs.len()];
        let mut stats = ScoreStats {
            pairs: pairs.len(),
            ..ScoreStats::default()
        };
        // Every token through gemm, the [CLS] rows of the last layer on the panels:
        // a pair's score is the same bits whatever the pairs beside it.
        let mut workspace = Workspace::with_products(Products::Gemm);
        let mut pooled = vec![0f32; h];
        let (mut ids, mut type_ids, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
        let mut done = 0;
        for (chunk_no, chunk) in pairs.chunks(CHUNK).enumerate() {
            let first = chunk_no * CHUNK;
            let inputs: Vec<(String, String)> = chunk
                .iter()
                .map(|(q, p)| {
                    let (q, p) = (q.as_ref(), p.as_ref());
                    if self.do_lower_case {
                        (q.to_lowercase(), p.to_lowercase())
                    } else {
                        (q.to_owned(), p.to_owned())
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
                }
                if offsets.windows(2).any(|t| t[0] == t[1]) {
                    // Only a tokenizer without special tokens yields nothing.
                    return Err(Error::Invalid(format!(
                        "{}: the tokenizer gave no token for a pair (no [CLS] to score)",
                        self.tokenizer_path.display()
                    )));
                }
                // Only the [CLS] states are read: the last layer runs for them alone.
                self.model.forward_first_tokens(
                    self.kernels,
                    &Packed {
                        ids: &ids,
                        type_ids: &type_ids,
                        offsets: &offsets,
                    },
                    &mut workspace,
                )?;
                for (n, &i) in batch_rows.iter().enumerate() {
                    let cls = &workspace.hidden[n * h..(n + 1) * h];
                    scores[first + i] = self.activation.apply(self.head.logit(cls, &mut pooled));
                }
                stats.tokens += ids.len() as u64;
                stats.batches += 1;
                done += batch_rows.len();
                progress(&ScoreProgress {
                    done,
                    total: pairs.len(),
                });
            }
        }
        stats.seconds = start.elapsed().as_secs_f64();
        Ok((scores, stats))
    }
}

/// Refuses a `config.json` that is not a one-label sequence classifier.
fn check_sequence_classification(path: &Path, config: &serde_json::Value) -> Result<()> {
    let unsupported = |message: String| Error::Unsupported {
        path: path.to_owned(),
        message,
    };
    let architectures: Vec<&str> = config
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if !architectures.contains(&"BertForSequenceClassification") {
        let found = if architectures.is_empty() {
            "none".to_owned()
        } else {
            architectures.join(", ")
        };
        return Err(unsupported(format!(
            "architectures {found}: a cross-encoder is a BertForSequenceClassification \
             (a BertModel folder is a bi-encoder: give it where an embedding model is expected)"
        )));
    }
    // transformers: `num_labels` is the length of `id2label` when present, else 2.
    let labels = config
        .get("id2label")
        .and_then(|v| v.as_object())
        .map(|m| m.len() as u64)
        .or_else(|| config.get("num_labels").and_then(|v| v.as_u64()))
        .unwrap_or(2);
    if labels != 1 {
        return Err(unsupported(format!(
            "num_labels {labels}: only one-label cross-encoders (rerankers: one relevance score per pair) are supported"
        )));
    }
    Ok(())
}

/// Refuses a `modules.json` other than one Transformer module (sentence-transformers
/// 5.x writes that for a sequence-classification cross-encoder).
fn check_modules(dir: &Path) -> Result<()> {
    let path = dir.join("modules.json");
    if !path.is_file() {
        return Ok(());
    }
    let modules: Vec<Module> = read_json(&path)?;
    let kinds: Vec<&str> = modules
        .iter()
        .map(|m| m.kind.rsplit('.').next().unwrap_or(&m.kind))
        .collect();
    match kinds[..] {
        ["Transformer"] => Ok(()),
        _ => Err(Error::Unsupported {
            path,
            message: format!(
                "modules {}: a cross-encoder folder holds one Transformer module \
                 (a Pooling module makes it a bi-encoder)",
                kinds.join(", ")
            ),
        }),
    }
}

/// The activation the folder records, where sentence-transformers looks for it, in
/// its order; `None` when none is recorded (or the recorded one is not a `torch.`
/// class, which sentence-transformers ignores without `trust_remote_code`).
fn recorded_activation(
    dir: &Path,
    config_path: &Path,
    config: &serde_json::Value,
) -> Result<Option<ScoreActivation>> {
    let st_path = dir.join("config_sentence_transformers.json");
    let mut found: Option<(PathBuf, String)> = None;
    if st_path.is_file() {
        let st: serde_json::Value = read_json(&st_path)?;
        if let Some(name) = st.get("activation_fn").and_then(|v| v.as_str()) {
            found = Some((st_path, name.to_owned()));
        }
    }
    if found.is_none() {
        let name = config
            .get("sentence_transformers")
            .and_then(|v| v.get("activation_fn"))
            .or_else(|| config.get("sbert_ce_default_activation_function"))
            .and_then(|v| v.as_str());
        if let Some(name) = name {
            found = Some((config_path.to_owned(), name.to_owned()));
        }
    }
    let Some((path, name)) = found else {
        return Ok(None);
    };
    if !name.starts_with("torch.") {
        return Ok(None);
    }
    match name.rsplit('.').next().unwrap_or("") {
        "Sigmoid" => Ok(Some(ScoreActivation::Sigmoid)),
        "Identity" => Ok(Some(ScoreActivation::Identity)),
        _ => Err(Error::Unsupported {
            path,
            message: format!("activation `{name}` (supported: Sigmoid, Identity)"),
        }),
    }
}

/// The pooler and classifier tensors of a `BertForSequenceClassification`
/// checkpoint (`bert.pooler.dense.*`, `classifier.*`), read from the mapped file.
fn read_head(path: &Path, hidden: usize) -> Result<Head> {
    let error = |message: String| Error::Weights {
        path: path.to_owned(),
        message,
    };
    // Safety: the file is only read, and only while loading.
    let tensors = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }
        .map_err(|e| error(format!("cannot read safetensors: {e}")))?;
    let get = |names: &[&str], shape: &[usize]| -> Result<Vec<f32>> {
        let (name, tensor) = names
            .iter()
            .find_map(|n| tensors.load(n, &Device::Cpu).ok().map(|t| (*n, t)))
            .ok_or_else(|| {
                error(format!(
                    "missing tensor `{}`: not a BertForSequenceClassification checkpoint",
                    names[0]
                ))
            })?;
        if tensor.dims() != shape {
            return Err(error(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                tensor.dims()
            )));
        }
        tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| error(format!("tensor `{name}`: {e}")))
    };
    Ok(Head {
        pooler_weight: get(
            &["bert.pooler.dense.weight", "pooler.dense.weight"],
            &[hidden, hidden],
        )?,
        pooler_bias: get(&["bert.pooler.dense.bias", "pooler.dense.bias"], &[hidden])?,
        classifier_weight: get(&["classifier.weight"], &[1, hidden])?,
        classifier_bias: get(&["classifier.bias"], &[1])?[0],
    })
}

/// `model_max_length` of `tokenizer_config.json`, when it is a real limit (the
/// transformers library writes 1e30 for "none").
fn tokenizer_max_length(dir: &Path) -> Option<usize> {
    let text = fs_err::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let n = value.get("model_max_length")?.as_f64()?;
    (2.0..1e6).contains(&n).then_some(n as usize)
}

/// A cross-encoder scores a pair directly: [`CrossEncoder::predict`].
impl Teacher for CrossEncoder {
    fn name(&self) -> &str {
        CrossEncoder::name(self)
    }

    fn kind(&self) -> TeacherKind {
        TeacherKind::CrossEncoder
    }

    fn score_pairs(&self, pairs: &[(&str, &str)]) -> dredge_core::Result<Vec<f32>> {
        self.predict(pairs)
            .map_err(|e| dredge_core::Error::Retriever(Box::new(e)))
    }
}
