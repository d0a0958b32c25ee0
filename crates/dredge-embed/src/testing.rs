//! A tiny random BERT model folder, for tests and examples that must run without
//! downloading a real model. Not part of the stable API.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::json;

use crate::error::Result;

/// Shape of the tiny model.
#[derive(Clone, Debug)]
pub struct TinyModel {
    /// Size of the vectors.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Feed-forward size.
    pub intermediate: usize,
    /// `max_position_embeddings`.
    pub positions: usize,
    /// `max_seq_length` of `sentence_bert_config.json`.
    pub max_seq_length: usize,
    /// `"mean"` or `"cls"`.
    pub pooling: &'static str,
    /// Whether a Normalize module follows the pooling.
    pub normalize: bool,
    /// `hidden_act`.
    pub activation: &'static str,
    /// Prefix of the tensor names (`""` or `"bert."`).
    pub prefix: &'static str,
    /// Seed of the weights.
    pub seed: u64,
}

impl Default for TinyModel {
    fn default() -> Self {
        TinyModel {
            hidden: 16,
            heads: 4,
            layers: 2,
            intermediate: 32,
            positions: 24,
            max_seq_length: 20,
            pooling: "mean",
            normalize: true,
            activation: "gelu",
            prefix: "",
            seed: 7,
        }
    }
}

/// The vocabulary: special tokens, a few words, letters and `##` letters, so that
/// any ASCII word splits into known pieces.
pub fn vocabulary() -> Vec<String> {
    let mut vocab: Vec<String> = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat",
        "query", ":", ".", ",",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for c in 'a'..='z' {
        vocab.push(c.to_string());
    }
    for c in 'a'..='z' {
        vocab.push(format!("##{c}"));
    }
    vocab
}

impl TinyModel {
    /// Writes the folder: `config.json`, `tokenizer.json` (with padding and
    /// truncation fixed at 128, as shipped tokenizers often are), `model.safetensors`,
    /// `modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let vocab = vocabulary();
        fs_err::create_dir_all(dir.join("1_Pooling"))?;
        let write_json = |name: &str, value: serde_json::Value| -> Result<()> {
            fs_err::write(
                dir.join(name),
                serde_json::to_string_pretty(&value).expect("json"),
            )?;
            Ok(())
        };
        write_json(
            "config.json",
            json!({
                "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocab.len(),
                "hidden_size": self.hidden, "num_hidden_layers": self.layers,
                "num_attention_heads": self.heads, "intermediate_size": self.intermediate,
                "hidden_act": self.activation, "max_position_embeddings": self.positions,
                "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
                "position_embedding_type": "absolute"
            }),
        )?;
        let mut modules = vec![
            json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
            json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
        ];
        if self.normalize {
            modules.push(json!({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}));
        }
        write_json("modules.json", json!(modules))?;
        write_json(
            "1_Pooling/config.json",
            json!({
                "word_embedding_dimension": self.hidden,
                "pooling_mode_cls_token": self.pooling == "cls",
                "pooling_mode_mean_tokens": self.pooling == "mean",
                "pooling_mode_max_tokens": false,
                "pooling_mode_mean_sqrt_len_tokens": false
            }),
        )?;
        write_json(
            "sentence_bert_config.json",
            json!({"max_seq_length": self.max_seq_length, "do_lower_case": false}),
        )?;
        let special = |id: usize, content: &str| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        };
        let vocab_map: serde_json::Map<String, serde_json::Value> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        write_json(
            "tokenizer.json",
            json!({
                "version": "1.0",
                "truncation": {"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0},
                "padding": {"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null,
                            "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
                "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]"), special(4, "[MASK]")],
                "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                               "strip_accents": null, "lowercase": true},
                "pre_tokenizer": {"type": "BertPreTokenizer"},
                "post_processor": {
                    "type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                               {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                             {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                    "special_tokens": {
                        "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                        "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
                    }
                },
                "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
                "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                          "max_input_chars_per_word": 100, "vocab": vocab_map}
            }),
        )?;
        self.write_weights(&dir.join("model.safetensors"), vocab.len())
    }

    fn write_weights(&self, path: &Path, vocab: usize) -> Result<()> {
        let mut rng = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        let mut add = |name: String, shape: &[usize], center: f32, spread: f32| -> Result<()> {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| {
                    // xorshift64*: a fixed, seeded stream.
                    rng ^= rng >> 12;
                    rng ^= rng << 25;
                    rng ^= rng >> 27;
                    let u = (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32
                        / (1u64 << 24) as f32;
                    center + spread * (2.0 * u - 1.0)
                })
                .collect();
            tensors.insert(
                format!("{}{name}", self.prefix),
                Tensor::from_vec(values, shape, &Device::Cpu)?,
            );
            Ok(())
        };
        let (h, i) = (self.hidden, self.intermediate);
        add(
            "embeddings.word_embeddings.weight".into(),
            &[vocab, h],
            0.0,
            1.0,
        )?;
        add(
            "embeddings.position_embeddings.weight".into(),
            &[self.positions, h],
            0.0,
            0.5,
        )?;
        add(
            "embeddings.token_type_embeddings.weight".into(),
            &[2, h],
            0.0,
            0.1,
        )?;
        add("embeddings.LayerNorm.weight".into(), &[h], 1.0, 0.2)?;
        add("embeddings.LayerNorm.bias".into(), &[h], 0.0, 0.1)?;
        let spread = |fan_in: usize| 1.5 / (fan_in as f32).sqrt();
        for l in 0..self.layers {
            let p = format!("encoder.layer.{l}");
            for part in [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
            ] {
                add(format!("{p}.{part}.weight"), &[h, h], 0.0, spread(h))?;
                add(format!("{p}.{part}.bias"), &[h], 0.0, 0.1)?;
            }
            add(
                format!("{p}.attention.output.LayerNorm.weight"),
                &[h],
                1.0,
                0.2,
            )?;
            add(
                format!("{p}.attention.output.LayerNorm.bias"),
                &[h],
                0.0,
                0.1,
            )?;
            add(
                format!("{p}.intermediate.dense.weight"),
                &[i, h],
                0.0,
                spread(h),
            )?;
            add(format!("{p}.intermediate.dense.bias"), &[i], 0.0, 0.1)?;
            add(format!("{p}.output.dense.weight"), &[h, i], 0.0, spread(i))?;
            add(format!("{p}.output.dense.bias"), &[h], 0.0, 0.1)?;
            add(format!("{p}.output.LayerNorm.weight"), &[h], 1.0, 0.2)?;
            add(format!("{p}.output.LayerNorm.bias"), &[h], 0.0, 0.1)?;
        }
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }
}

/// A tiny random cross-encoder folder (`BertForSequenceClassification`, one label):
/// the [`TinyModel`] encoder under `bert.`, a random pooler and classifier, and the
/// folder layout sentence-transformers 5.x writes.
#[derive(Clone, Debug)]
pub struct TinyCrossEncoder {
    /// The encoder (its `prefix` and `normalize` are ignored).
    pub model: TinyModel,
    /// `activation_fn` written to `config_sentence_transformers.json`
    /// (`"torch.nn.modules.activation.Sigmoid"`, ...), or none.
    pub activation_fn: Option<&'static str>,
    /// `model_max_length` of `tokenizer_config.json`, or none.
    pub max_length: Option<usize>,
    /// The number of labels (rows of the classifier).
    pub labels: usize,
}

impl Default for TinyCrossEncoder {
    fn default() -> Self {
        TinyCrossEncoder {
            model: TinyModel {
                positions: 40,
                ..TinyModel::default()
            },
            activation_fn: Some("torch.nn.modules.linear.Identity"),
            max_length: Some(20),
            labels: 1,
        }
    }
}

impl TinyCrossEncoder {
    /// Writes the folder: `config.json`, `tokenizer.json`, `tokenizer_config.json`,
    /// `model.safetensors`, `modules.json`, `sentence_bert_config.json`,
    /// `config_sentence_transformers.json`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let model = TinyModel {
            prefix: "bert.",
            ..self.model.clone()
        };
        model.write(dir)?;
        fs_err::remove_dir_all(dir.join("1_Pooling"))?;
        let write_json = |name: &str, value: serde_json::Value| -> Result<()> {
            fs_err::write(
                dir.join(name),
                serde_json::to_string_pretty(&value).expect("json"),
            )?;
            Ok(())
        };
        let mut config: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(dir.join("config.json"))?).expect("json");
        config["architectures"] = json!(["BertForSequenceClassification"]);
        config["id2label"] = (0..self.labels)
            .map(|i| (i.to_string(), json!(format!("LABEL_{i}"))))
            .collect::<serde_json::Map<_, _>>()
            .into();
        write_json("config.json", config)?;
        write_json(
            "modules.json",
            json!([{"idx": 0, "name": "0", "path": "",
                    "type": "sentence_transformers.base.modules.transformer.Transformer"}]),
        )?;
        write_json(
            "sentence_bert_config.json",
            json!({"transformer_task": "sequence-classification", "module_output_name": "scores"}),
        )?;
        write_json(
            "config_sentence_transformers.json",
            match self.activation_fn {
                Some(a) => json!({"model_type": "CrossEncoder", "activation_fn": a, "prompts": {}}),
                None => json!({"model_type": "CrossEncoder", "prompts": {}}),
            },
        )?;
        let mut tokenizer_config =
            json!({"tokenizer_class": "BertTokenizer", "do_lower_case": true});
        if let Some(n) = self.max_length {
            tokenizer_config["model_max_length"] = json!(n);
        }
        write_json("tokenizer_config.json", tokenizer_config)?;

        let path = dir.join("model.safetensors");
        let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu)?;
        let h = model.hidden;
        let mut rng = model.seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1;
        let mut random = |n: usize, spread: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    rng ^= rng >> 12;
                    rng ^= rng << 25;
                    rng ^= rng >> 27;
                    let u = (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32
                        / (1u64 << 24) as f32;
                    spread * (2.0 * u - 1.0)
                })
                .collect()
        };
        let spread = 1.5 / (h as f32).sqrt();
        let mut add = |name: &str, values: Vec<f32>, shape: &[usize]| -> Result<()> {
            tensors.insert(
                name.to_owned(),
                Tensor::from_vec(values, shape, &Device::Cpu)?,
            );
            Ok(())
        };
        add("bert.pooler.dense.weight", random(h * h, spread), &[h, h])?;
        add("bert.pooler.dense.bias", random(h, 0.1), &[h])?;
        add(
            "classifier.weight",
            random(self.labels * h, 2.0 * spread),
            &[self.labels, h],
        )?;
        add("classifier.bias", random(self.labels, 0.3), &[self.labels])?;
        candle_core::safetensors::save(&tensors, &path)?;
        Ok(())
    }
}
