//! The BERT encoder stack on candle, laid out for CPU inference: every linear layer
//! runs as one matrix product over all the tokens of a batch, the query, key and
//! value projections are fused into one product, and the attention scale is folded
//! into the query weights at load time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::{Activation, BertConfig};
use crate::error::{Error, Result};

/// A padded batch of token ids, row-major `(batch, seq_len)`.
pub(crate) struct Batch<'a> {
    pub ids: &'a [u32],
    pub type_ids: &'a [u32],
    /// Real (non-padding) tokens of each row; the rest of the row is padding.
    pub lengths: &'a [usize],
    pub seq_len: usize,
}

struct Linear {
    /// `(out, in)`, as stored by PyTorch.
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `x (tokens, in) -> (tokens, out)`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    /// Query, key and value stacked: `(3 * hidden, hidden)`, the query rows scaled
    /// by `1 / sqrt(head_dim)`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A loaded BERT model (no pooling head).
pub(crate) struct Bert {
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    activation: Activation,
}

/// The tensors of a safetensors file, looked up by name with the prefixes the
/// checkpoints of the BERT family use (`bert.`, `model.`, none).
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn open(path: &Path) -> Result<Self> {
        let tensors =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| Error::Weights {
                path: path.to_owned(),
                message: format!("cannot read safetensors: {e}"),
            })?;
        let prefix = ["", "bert.", "model."]
            .into_iter()
            .find(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or_else(|| Error::Weights {
                path: path.to_owned(),
                message: "no tensor `embeddings.word_embeddings.weight` (with or without a `bert.` prefix): not BERT weights"
                    .into(),
            })?;
        Ok(Weights {
            path: path.to_owned(),
            tensors,
            prefix,
        })
    }

    fn error(&self, message: String) -> Error {
        Error::Weights {
            path: self.path.clone(),
            message,
        }
    }

    /// The tensor `name` (or the first of `alternatives` present), as f32 of `shape`.
    fn get(&self, names: &[&str], shape: &[usize]) -> Result<Tensor> {
        let full = |n: &str| format!("{}{n}", self.prefix);
        let tensor = names
            .iter()
            .find_map(|n| self.tensors.get(&full(n)))
            .ok_or_else(|| self.error(format!("missing tensor `{}`", full(names[0]))))?;
        if tensor.dims() != shape {
            return Err(self.error(format!(
                "tensor `{}` has shape {:?}, expected {shape:?}",
                full(names[0]),
                tensor.dims()
            )));
        }
        Ok(tensor.to_dtype(DType::F32)?.contiguous()?)
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear> {
        Ok(Linear {
            weight: self.get(&[&format!("{name}.weight")], &[out, inp])?,
            bias: self.get(&[&format!("{name}.bias")], &[out])?,
        })
    }

    fn layer_norm(&self, name: &str, size: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.get(
                &[&format!("{name}.weight"), &format!("{name}.gamma")],
                &[size],
            )?,
            bias: self.get(&[&format!("{name}.bias"), &format!("{name}.beta")], &[size])?,
            eps: eps as f32,
        })
    }
}

impl Bert {
    /// Loads the weights of `path` for `config`, checking every shape.
    pub fn load(path: &Path, config: &BertConfig) -> Result<Self> {
        let w = Weights::open(path)?;
        let h = config.hidden_size;
        let heads = config.num_attention_heads;
        let head_dim = h / heads;
        let eps = config.layer_norm_eps;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        let scale = 1.0 / (head_dim as f64).sqrt();
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = w.linear(&format!("{p}.attention.self.query"), h, h)?;
            let k = w.linear(&format!("{p}.attention.self.key"), h, h)?;
            let v = w.linear(&format!("{p}.attention.self.value"), h, h)?;
            let qkv = Linear {
                weight: Tensor::cat(&[&(q.weight * scale)?, &k.weight, &v.weight], 0)?,
                bias: Tensor::cat(&[&(q.bias * scale)?, &k.bias, &v.bias], 0)?,
            };
            layers.push(Layer {
                qkv,
                attention_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: w.linear(
                    &format!("{p}.intermediate.dense"),
                    config.intermediate_size,
                    h,
                )?,
                output: w.linear(&format!("{p}.output.dense"), h, config.intermediate_size)?,
                output_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert {
            word_embeddings: w.get(
                &["embeddings.word_embeddings.weight"],
                &[config.vocab_size, h],
            )?,
            position_embeddings: w.get(
                &["embeddings.position_embeddings.weight"],
                &[config.max_position_embeddings, h],
            )?,
            token_type_embeddings: w.get(
                &["embeddings.token_type_embeddings.weight"],
                &[config.type_vocab_size, h],
            )?,
            embedding_norm: w.layer_norm("embeddings.LayerNorm", h, eps)?,
            layers,
            heads,
            head_dim,
            hidden: h,
            activation: config.activation,
        })
    }

    /// The size of the token vectors.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Runs the encoder over a padded batch; returns the last hidden states,
    /// `(batch * seq_len, hidden)` row-major.
    pub fn forward(&self, batch: &Batch<'_>) -> Result<Vec<f32>> {
        let n = batch.lengths.len();
        let s = batch.seq_len;
        let dev = Device::Cpu;
        let ids = Tensor::from_slice(batch.ids, n * s, &dev)?;
        let type_ids = Tensor::from_slice(batch.type_ids, n * s, &dev)?;
        let words = self.word_embeddings.index_select(&ids, 0)?;
        let types = self.token_type_embeddings.index_select(&type_ids, 0)?;
        let positions = self.position_embeddings.narrow(0, 0, s)?;
        let x = (words + types)?
            .reshape((n, s, self.hidden))?
            .broadcast_add(&positions)?;
        let mut x = self
            .embedding_norm
            .forward(&x.reshape((n * s, self.hidden))?)?;

        // Additive mask: 0 on real tokens, -inf on padding, shape (n, 1, 1, s).
        let mut mask = vec![0f32; n * s];
        for (row, &len) in batch.lengths.iter().enumerate() {
            mask[row * s + len..(row + 1) * s].fill(f32::NEG_INFINITY);
        }
        let mask = Tensor::from_vec(mask, (n, 1, 1, s), &dev)?;

        for layer in &self.layers {
            x = self.layer_forward(layer, &x, &mask, n, s)?;
        }
        Ok(x.flatten_all()?.to_vec1::<f32>()?)
    }

    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        mask: &Tensor,
        n: usize,
        s: usize,
    ) -> Result<Tensor> {
        let (heads, d) = (self.heads, self.head_dim);
        let qkv = layer.qkv.forward(x)?.reshape((n, s, 3, heads, d))?;
        let part = |i: usize| -> candle_core::Result<Tensor> {
            qkv.narrow(2, i, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let scores = q.matmul(&k.t()?)?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((n * s, self.hidden))?;
        let attention = layer.attention_out.forward(&context)?;
        let x = layer.attention_norm.forward(&(attention + x)?)?;
        let inner = layer.intermediate.forward(&x)?;
        let inner = match self.activation {
            Activation::Gelu => inner.gelu_erf()?,
            Activation::GeluTanh => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        let out = layer.output.forward(&inner)?;
        Ok(layer.output_norm.forward(&(out + x)?)?)
    }
}
