//! Reading a sentence-transformers model folder: `config.json` (the transformer),
//! `modules.json` (the pipeline), `1_Pooling/config.json` (the pooling),
//! `sentence_bert_config.json` (maximum length, lower-casing) and
//! `config_sentence_transformers.json` (query and passage prompts).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How token vectors become one text vector (sentence-transformers' `Pooling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The vector of the first token (`[CLS]`), as BGE does.
    Cls,
    /// The mean of the token vectors, padding excluded, as MiniLM, E5 and GTE do.
    Mean,
    /// The element-wise maximum of the token vectors, padding excluded.
    Max,
    /// The sum of the token vectors over the square root of their number.
    MeanSqrtLen,
    /// The vector of the last token that is not padding.
    LastToken,
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean_sqrt_len",
            Pooling::LastToken => "last_token",
        })
    }
}

/// The activation of the feed-forward layers (`hidden_act`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// GELU with the exact error function (`gelu`).
    Gelu,
    /// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `relu`.
    Relu,
}

/// The subset of a Hugging Face BERT `config.json` the encoder needs.
#[derive(Clone, Debug)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub activation: Activation,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

#[derive(Deserialize)]
struct RawBertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".to_owned()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// Everything the folder says about how to encode, before any option overrides it.
#[derive(Clone, Debug)]
pub(crate) struct ModelConfig {
    pub bert: BertConfig,
    pub pooling: Pooling,
    pub normalize: bool,
    /// `max_seq_length` of `sentence_bert_config.json`, if any.
    pub max_seq_length: Option<usize>,
    pub do_lower_case: bool,
    /// The `query` prompt of `config_sentence_transformers.json`, if any.
    pub query_prompt: Option<String>,
    /// The `document`, `passage` or `corpus` prompt, if any.
    pub passage_prompt: Option<String>,
}

/// The path of a file the folder must hold, or an error naming it.
pub(crate) fn required(dir: &Path, name: &str, what: &'static str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingFile { path, what })
    }
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_owned(),
        message: format!("invalid JSON: {e}"),
    })
}

#[derive(Deserialize)]
struct Module {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
    #[serde(default = "yes")]
    include_prompt: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: std::collections::BTreeMap<String, String>,
}

impl ModelConfig {
    /// Reads the configuration files of `dir`. `config.json` is required; without
    /// `modules.json` the folder is read as a plain transformer with mean pooling and
    /// no normalisation (what sentence-transformers does with such a folder).
    pub fn read(dir: &Path) -> Result<Self> {
        let config_path = required(dir, "config.json", "the transformer configuration")?;
        let bert = read_bert_config(&config_path)?;

        let mut pooling = Pooling::Mean;
        let mut normalize = false;
        let modules_path = dir.join("modules.json");
        if modules_path.is_file() {
            let modules: Vec<Module> = read_json(&modules_path)?;
            let mut saw_pooling = false;
            for (i, module) in modules.iter().enumerate() {
                let kind = module.kind.rsplit('.').next().unwrap_or(&module.kind);
                match kind {
                    "Transformer" if i == 0 => {}
                    "Pooling" => {
                        let path = required(
                            &dir.join(&module.path),
                            "config.json",
                            "the pooling configuration",
                        )?;
                        pooling = read_pooling(&path)?;
                        saw_pooling = true;
                    }
                    "Normalize" => normalize = true,
                    _ => {
                        return Err(Error::Unsupported {
                            path: modules_path,
                            message: format!(
                                "module {} `{}` (supported: a Transformer, then Pooling and Normalize)",
                                i, module.kind
                            ),
                        });
                    }
                }
            }
            if !saw_pooling {
                return Err(Error::Unsupported {
                    path: modules_path,
                    message:
                        "no Pooling module: the token vectors would not become one vector per text"
                            .into(),
                });
            }
        }

        let mut max_seq_length = None;
        let mut do_lower_case = false;
        let sbert_path = dir.join("sentence_bert_config.json");
        if sbert_path.is_file() {
            let sbert: SentenceBertConfig = read_json(&sbert_path)?;
            max_seq_length = sbert.max_seq_length;
            do_lower_case = sbert.do_lower_case;
        }

        let mut query_prompt = None;
        let mut passage_prompt = None;
        let st_path = dir.join("config_sentence_transformers.json");
        if st_path.is_file() {
            let st: SentenceTransformersConfig = read_json(&st_path)?;
            query_prompt = st.prompts.get("query").cloned();
            passage_prompt = ["document", "passage", "corpus"]
                .iter()
                .find_map(|k| st.prompts.get(*k).cloned());
        }
        Ok(ModelConfig {
            bert,
            pooling,
            normalize,
            max_seq_length,
            do_lower_case,
            query_prompt,
            passage_prompt,
        })
    }
}

pub(crate) fn read_bert_config(path: &Path) -> Result<BertConfig> {
    let value: serde_json::Value = read_json(path)?;
    let model_type = value
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let architectures: Vec<&str> = value
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let is_bert = model_type == "bert"
        || (model_type.is_empty() && architectures.iter().any(|a| a.starts_with("Bert")));
    if !is_bert {
        let name = if model_type.is_empty() {
            architectures.join(", ")
        } else {
            model_type.to_owned()
        };
        return Err(Error::Unsupported {
            path: path.to_owned(),
            message: format!(
                "architecture `{name}`; only the BERT family (model_type \"bert\": MiniLM, BGE, E5, GTE) is implemented"
            ),
        });
    }
    let raw: RawBertConfig = serde_json::from_value(value).map_err(|e| Error::Config {
        path: path.to_owned(),
        message: format!("not a BERT configuration: {e}"),
    })?;
    let unsupported = |message: String| Error::Unsupported {
        path: path.to_owned(),
        message,
    };
    let activation = match raw.hidden_act.as_str() {
        "gelu" => Activation::Gelu,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        other => {
            return Err(unsupported(format!(
                "hidden_act `{other}` (supported: gelu, gelu_new, relu)"
            )));
        }
    };
    if let Some(kind) = raw.position_embedding_type.as_deref()
        && kind != "absolute"
    {
        return Err(unsupported(format!(
            "position_embedding_type `{kind}` (only absolute)"
        )));
    }
    if raw.num_attention_heads == 0 || !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
        return Err(Error::Config {
            path: path.to_owned(),
            message: format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                raw.hidden_size, raw.num_attention_heads
            ),
        });
    }
    Ok(BertConfig {
        vocab_size: raw.vocab_size,
        hidden_size: raw.hidden_size,
        num_hidden_layers: raw.num_hidden_layers,
        num_attention_heads: raw.num_attention_heads,
        intermediate_size: raw.intermediate_size,
        activation,
        max_position_embeddings: raw.max_position_embeddings,
        type_vocab_size: raw.type_vocab_size,
        layer_norm_eps: raw.layer_norm_eps,
    })
}

fn read_pooling(path: &Path) -> Result<Pooling> {
    let raw: PoolingConfig = read_json(path)?;
    let unsupported = |message: &str| Error::Unsupported {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    if raw.pooling_mode_weightedmean_tokens {
        return Err(unsupported("weighted-mean pooling"));
    }
    if !raw.include_prompt {
        return Err(unsupported(
            "include_prompt = false (pooling that skips the prompt tokens)",
        ));
    }
    let modes = [
        (raw.pooling_mode_cls_token, Pooling::Cls),
        (raw.pooling_mode_mean_tokens, Pooling::Mean),
        (raw.pooling_mode_max_tokens, Pooling::Max),
        (raw.pooling_mode_mean_sqrt_len_tokens, Pooling::MeanSqrtLen),
        (raw.pooling_mode_lasttoken, Pooling::LastToken),
    ];
    let on: Vec<Pooling> = modes
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, p)| *p)
        .collect();
    match on[..] {
        [one] => Ok(one),
        [] => Err(Error::Config {
            path: path.to_owned(),
            message: "no pooling mode is set".into(),
        }),
        _ => Err(unsupported(
            "several pooling modes at once (their concatenation)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, content).unwrap();
        }
        dir
    }

    const BERT: &str = r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu", "max_position_embeddings": 32}"#;
    const MODULES: &str = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
        {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
        {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#;

    #[test]
    fn reads_pooling_normalisation_length_and_prompts() {
        let dir = folder(&[
            ("config.json", BERT),
            ("modules.json", MODULES),
            (
                "1_Pooling/config.json",
                r#"{"word_embedding_dimension": 8, "pooling_mode_cls_token": true}"#,
            ),
            (
                "sentence_bert_config.json",
                r#"{"max_seq_length": 16, "do_lower_case": true}"#,
            ),
            (
                "config_sentence_transformers.json",
                r#"{"prompts": {"query": "query: ", "passage": "passage: "}}"#,
            ),
        ]);
        let config = ModelConfig::read(dir.path()).unwrap();
        assert_eq!(config.pooling, Pooling::Cls);
        assert!(config.normalize);
        assert_eq!(config.max_seq_length, Some(16));
        assert!(config.do_lower_case);
        assert_eq!(config.query_prompt.as_deref(), Some("query: "));
        assert_eq!(config.passage_prompt.as_deref(), Some("passage: "));
        assert_eq!(config.bert.hidden_size, 8);
    }

    #[test]
    fn a_plain_transformer_gets_mean_pooling_without_normalisation() {
        let dir = folder(&[("config.json", BERT)]);
        let config = ModelConfig::read(dir.path()).unwrap();
        assert_eq!(
            (config.pooling, config.normalize, config.max_seq_length),
            (Pooling::Mean, false, None)
        );
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], "config.json: missing the transformer configuration"),
            (vec![("config.json", "{")], "config.json: invalid JSON"),
            (
                vec![(
                    "config.json",
                    r#"{"model_type": "xlm-roberta", "architectures": ["XLMRobertaModel"]}"#,
                )],
                "config.json: unsupported model: architecture `xlm-roberta`",
            ),
            (
                vec![("config.json", BERT), ("modules.json", MODULES)],
                "1_Pooling/config.json: missing the pooling configuration",
            ),
            (
                vec![
                    ("config.json", BERT),
                    ("modules.json", MODULES),
                    (
                        "1_Pooling/config.json",
                        r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#,
                    ),
                ],
                "unsupported model: several pooling modes",
            ),
            (
                vec![
                    ("config.json", BERT),
                    (
                        "modules.json",
                        r#"[{"path":"","type":"sentence_transformers.models.Transformer"},{"path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
                    ),
                ],
                "modules.json: unsupported model: module 1 `sentence_transformers.models.Dense`",
            ),
        ];
        for (files, expected) in cases {
            let dir = folder(&files);
            let err = ModelConfig::read(dir.path()).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
            assert!(
                err.contains(&dir.path().display().to_string()),
                "{err:?} does not name the folder"
            );
        }
    }
}
