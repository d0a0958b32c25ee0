//! The BERT encoder stack, laid out for CPU inference.
//!
//! Weights are read with candle's safetensors loader. A batch is *packed*: the
//! tokens of its texts lie end to end with no padding, so every linear layer is one
//! matrix product over exactly the real tokens, and attention runs text by text over
//! exactly its own tokens (no mask, no padded positions computed). The query, key and
//! value projections are fused into one product, the attention scale is folded into
//! the query weights, biases are folded into the next elementwise step, and the
//! buffers of a batch are reused from one layer and one batch to the next.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::bf16::Bf16Matrix;
use crate::config::{Activation, BertConfig};
use crate::error::{Error, Result};
use crate::kernels::{Kernels, View, bias_activation, layer_norm, matmul, softmax_rows};
use crate::panels::Panels;
use crate::quant::{QuantizedMatrix, Scratch};

/// A packed batch: the token ids of its texts end to end.
pub(crate) struct Packed<'a> {
    pub ids: &'a [u32],
    pub type_ids: &'a [u32],
    /// Text `i` is tokens `offsets[i]..offsets[i + 1]`; `offsets[0] == 0`.
    pub offsets: &'a [usize],
}

struct Linear {
    /// The transpose of the weight PyTorch stores (`(out, in)`): `(in, out)`
    /// row-major. In this layout the `gemm` kernels read the weight where it lies;
    /// in PyTorch's they copied all of it into their panel layout on every product,
    /// which for the ~20 tokens of a query was most of the time of a forward pass.
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    out: usize,
    inp: usize,
    /// The same weight packed for products of few rows (queries), float32 only.
    panels: Option<Panels>,
    /// The weight in int8 once [`Linear::quantize`] ran (then `weight_t` is empty).
    int8: Option<QuantizedMatrix>,
    /// The weight in bf16 once [`Linear::round_to_bf16`] ran (then `weight_t` is empty).
    bf16: Option<Bf16Matrix>,
}

impl Linear {
    /// A layer from PyTorch's `(out, in)` row-major weight.
    fn new(weight: &[f32], bias: Vec<f32>, out: usize, inp: usize) -> Linear {
        let weight_t = transpose(weight, out, inp);
        Linear {
            panels: Some(Panels::from_transposed(&weight_t, inp, out)),
            weight_t,
            bias,
            out,
            inp,
            int8: None,
            bf16: None,
        }
    }

    /// Replaces the float32 weight by its int8 quantization (per output channel).
    fn quantize(&mut self) {
        if self.int8.is_none() && self.bf16.is_none() {
            let weight = self.take_weight();
            self.int8 = Some(QuantizedMatrix::new(&weight, self.out, self.inp));
        }
    }

    /// Replaces the float32 weight by its bf16 rounding.
    fn round_to_bf16(&mut self) {
        if self.int8.is_none() && self.bf16.is_none() {
            let weight = self.take_weight();
            self.bf16 = Some(Bf16Matrix::new(&weight, self.out, self.inp));
        }
    }

    /// The float32 weight in PyTorch's `(out, in)` layout, for another precision to
    /// be made of it; both float32 copies are dropped.
    fn take_weight(&mut self) -> Vec<f32> {
        self.panels = None;
        transpose(&std::mem::take(&mut self.weight_t), self.inp, self.out)
    }

    /// `dst (tokens x out) = x (tokens x in) · Wᵀ (+ bias)`: in int8 or bf16 when the
    /// weight is (the activations converted into `scratch`), else in float32 on the
    /// product `products` names.
    fn product(
        &self,
        kernels: Kernels,
        dst: &mut [f32],
        x: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut Scratch,
        products: Products,
    ) {
        let tokens = x.len() / self.inp;
        let dst = &mut dst[..tokens * self.out];
        if let Some(q) = &self.int8 {
            return q.product(kernels, dst, x, bias, scratch);
        }
        if let Some(m) = &self.bf16 {
            return m.product(kernels, dst, x, bias, &mut scratch.pairs);
        }
        if let Some(panels) = self.panels.as_ref().filter(|_| products.panels()) {
            return panels.product(kernels, dst, x, bias);
        }
        // The bias written first, the product added to it.
        if let Some(bias) = bias {
            dst.par_chunks_mut(self.out)
                .for_each(|row| row.copy_from_slice(bias));
        }
        matmul(
            kernels,
            dst,
            self.out,
            View::dense(x, tokens, self.inp),
            View::dense(&self.weight_t, self.inp, self.out),
            bias.is_some(),
            true,
        );
    }
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

struct Layer {
    /// Query, key and value stacked: `(3 * hidden, hidden)`, the query rows scaled
    /// by `1 / sqrt(head_dim)`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// A loaded BERT model (no pooling head).
pub(crate) struct Bert {
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    token_type_embeddings: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    intermediate: usize,
    vocab_size: usize,
    type_vocab_size: usize,
    max_positions: usize,
    activation: Activation,
    weights_path: PathBuf,
}

/// Buffers of a forward pass, kept from one batch to the next.
#[derive(Default)]
pub(crate) struct Workspace {
    /// Hidden states, `tokens x hidden`: the output of a forward pass.
    pub hidden: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    inner: Vec<f32>,
    /// Activations quantized for the int8 products.
    int8: Scratch,
    /// Which float32 product the linear layers run.
    products: Products,
}

impl Workspace {
    /// Empty buffers, the linear layers' float32 products as `products` says.
    pub fn with_products(products: Products) -> Workspace {
        Workspace {
            products,
            ..Workspace::default()
        }
    }
}

/// Which float32 product runs a linear layer over all tokens (int8 and bf16 have
/// one each). Both are exact to float32 rounding but add in different orders, so
/// a text's vector is the same bits whatever its batch only if the same one always
/// runs for its kind of text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Products {
    /// The panels (`panels.rs`): queries, so that one alone at search time and many
    /// in a batch for `dredge eval` give the same vectors. Made for a few rows (a
    /// query's ~22 tokens: 1.9x lower latency than gemm), about 8% slower than
    /// gemm on batches of passages.
    Panels,
    /// gemm: passages, so that an index's vectors do not depend on how the corpus
    /// was batched or sharded.
    #[default]
    Gemm,
}

impl Products {
    fn panels(self) -> bool {
        self == Products::Panels
    }
}

/// `rows x cols` row-major to `cols x rows` row-major.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(values.len(), rows * cols, "matrix shape");
    let mut out = vec![0.0; values.len()];
    for (r, row) in values.chunks_exact(cols.max(1)).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            out[c * rows + r] = x;
        }
    }
    out
}

fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
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

    /// The first of `names` present, as f32 values of `shape`, row-major.
    fn get(&self, names: &[&str], shape: &[usize]) -> Result<Vec<f32>> {
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
        let values = tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>());
        values.map_err(|e| self.error(format!("tensor `{}`: {e}", full(names[0]))))
    }

    /// The `(out, in)` weight and the bias of linear layer `name`.
    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            self.get(&[&format!("{name}.weight")], &[out, inp])?,
            self.get(&[&format!("{name}.bias")], &[out])?,
        ))
    }

    fn norm(&self, name: &str, size: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
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
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let (qw, qb) = w.linear(&format!("{p}.attention.self.query"), h, h)?;
            let (kw, kb) = w.linear(&format!("{p}.attention.self.key"), h, h)?;
            let (vw, vb) = w.linear(&format!("{p}.attention.self.value"), h, h)?;
            let scaled = |values: &[f32]| values.iter().map(|x| x * scale).collect::<Vec<_>>();
            let qkv = Linear::new(
                &[scaled(&qw), kw, vw].concat(),
                [scaled(&qb), kb, vb].concat(),
                3 * h,
                h,
            );
            let linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
                let (weight, bias) = w.linear(&format!("{p}.{name}"), out, inp)?;
                Ok(Linear::new(&weight, bias, out, inp))
            };
            let intermediate = config.intermediate_size;
            layers.push(Layer {
                qkv,
                attention_out: linear("attention.output.dense", h, h)?,
                attention_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: linear("intermediate.dense", intermediate, h)?,
                output: linear("output.dense", h, intermediate)?,
                output_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
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
            embedding_norm: w.norm("embeddings.LayerNorm", h, eps)?,
            layers,
            heads,
            head_dim,
            hidden: h,
            intermediate: config.intermediate_size,
            vocab_size: config.vocab_size,
            type_vocab_size: config.type_vocab_size,
            max_positions: config.max_position_embeddings,
            activation: config.activation,
            weights_path: path.to_owned(),
        })
    }

    /// Quantizes the weights of the linear layers (query/key/value, attention output,
    /// feed-forward in and out) to int8; embeddings, norms and attention stay f32.
    pub fn quantize(&mut self) {
        self.linears(Linear::quantize);
    }

    /// Rounds the weights of the linear layers to bf16 (as [`Bert::quantize`] does
    /// for int8).
    pub fn round_to_bf16(&mut self) {
        self.linears(Linear::round_to_bf16);
    }

    /// Calls `f` on the four linear layers of every BERT layer.
    fn linears(&mut self, f: impl Fn(&mut Linear)) {
        for layer in &mut self.layers {
            for linear in [
                &mut layer.qkv,
                &mut layer.attention_out,
                &mut layer.intermediate,
                &mut layer.output,
            ] {
                f(linear);
            }
        }
    }

    /// The size of the token vectors.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Multiply-adds per token of a text of `len` tokens (FLOPs are twice this):
    /// the linear layers, plus attention's two `len x len x head_dim` products.
    pub fn multiply_adds_per_token(&self, len: usize) -> u64 {
        let (h, i) = (self.hidden as u64, self.intermediate as u64);
        self.layers.len() as u64 * (4 * h * h + 2 * h * i + 2 * len as u64 * h)
    }

    /// Runs the encoder over a packed batch on the `kernels` path; the last hidden
    /// states are left in `ws.hidden[..tokens * hidden]`, token after token.
    pub fn forward(&self, kernels: Kernels, batch: &Packed<'_>, ws: &mut Workspace) -> Result<()> {
        self.forward_layers(kernels, batch, ws, self.layers.len())
    }

    /// [`Bert::forward`] through the embeddings and the first `layers` layers.
    fn forward_layers(
        &self,
        kernels: Kernels,
        batch: &Packed<'_>,
        ws: &mut Workspace,
        layers: usize,
    ) -> Result<()> {
        let h = self.hidden;
        let tokens = batch.ids.len();
        let Some(&last) = batch.offsets.last() else {
            return Ok(());
        };
        assert_eq!(last, tokens, "offsets must end at the number of tokens");
        grow(&mut ws.hidden, tokens * h);
        grow(&mut ws.qkv, tokens * 3 * h);
        grow(&mut ws.context, tokens * h);
        grow(&mut ws.projected, tokens * h);
        grow(&mut ws.inner, tokens * self.intermediate);

        // Embeddings: word + position (within its text) + token type, then LayerNorm.
        for text in batch.offsets.windows(2) {
            if text[1] - text[0] > self.max_positions {
                return Err(Error::Invalid(format!(
                    "a text of {} tokens exceeds the {} positions of the model",
                    text[1] - text[0],
                    self.max_positions
                )));
            }
            for t in text[0]..text[1] {
                let (id, kind) = (batch.ids[t] as usize, batch.type_ids[t] as usize);
                if id >= self.vocab_size || kind >= self.type_vocab_size {
                    return Err(Error::Invalid(format!(
                        "{}: the tokenizer produced token {id} (type {kind}) beyond the model's vocabulary of {} \
                         ({} types): tokenizer.json and the weights do not belong together",
                        self.weights_path.display(),
                        self.vocab_size,
                        self.type_vocab_size
                    )));
                }
                let out = &mut ws.hidden[t * h..(t + 1) * h];
                let word = &self.word_embeddings[id * h..(id + 1) * h];
                let position = &self.position_embeddings[(t - text[0]) * h..(t - text[0] + 1) * h];
                let kind = &self.token_type_embeddings[kind * h..(kind + 1) * h];
                for (((o, w), p), k) in out.iter_mut().zip(word).zip(position).zip(kind) {
                    *o = w + p + k;
                }
            }
        }
        let norm = &self.embedding_norm;
        layer_norm(
            kernels,
            &mut ws.hidden[..tokens * h],
            None,
            &norm.weight,
            &norm.bias,
            norm.eps,
        );

        for layer in &self.layers[..layers] {
            self.layer_forward(kernels, layer, batch.offsets, tokens, ws);
        }
        Ok(())
    }

    /// [`Bert::forward`] for a head that reads only the first token of each text
    /// (a cross-encoder's `[CLS]`): the last layer projects keys and values of every
    /// token, but attends, projects, normalises and runs the feed-forward for the
    /// first tokens only. Their last hidden states are left in
    /// `ws.hidden[..texts * hidden]`, text after text. Every text must have a token.
    pub fn forward_first_tokens(
        &self,
        kernels: Kernels,
        batch: &Packed<'_>,
        ws: &mut Workspace,
    ) -> Result<()> {
        let (h, d) = (self.hidden, self.head_dim);
        let texts = batch.offsets.len().saturating_sub(1);
        if batch.offsets.windows(2).any(|t| t[0] == t[1]) {
            return Err(Error::Invalid(
                "a text without tokens has no first token".into(),
            ));
        }
        let Some(last) = self.layers.last() else {
            self.forward(kernels, batch, ws)?;
            for (i, text) in batch.offsets.windows(2).enumerate() {
                ws.hidden.copy_within(text[0] * h..(text[0] + 1) * h, i * h);
            }
            return Ok(());
        };
        self.forward_layers(kernels, batch, ws, self.layers.len() - 1)?;
        let tokens = batch.ids.len();
        let qkv = &mut ws.qkv[..tokens * 3 * h];
        // The last layer on the panels whatever the number of rows (every token's
        // queries, keys and values, then the [CLS] rows): a pair's score must not
        // depend on how many pairs share its batch.
        let hidden = &ws.hidden[..tokens * h];
        let int8 = &mut ws.int8;
        last.qkv
            .product(kernels, qkv, hidden, None, int8, Products::Panels);
        qkv.par_chunks_mut(3 * h).for_each(|row| {
            for (v, b) in row.iter_mut().zip(&last.qkv.bias) {
                *v += b;
            }
        });
        let qkv = &*qkv;
        // Attention of each text's first token over the text.
        let context = &mut ws.context[..texts * h];
        context
            .par_chunks_mut(h)
            .zip(batch.offsets.par_windows(2))
            .for_each_init(Vec::new, |scores, (out, text)| {
                let (start, len) = (text[0], text[1] - text[0]);
                grow(scores, len);
                let scores = &mut scores[..len];
                let row = |t: usize, which: usize, head: usize| {
                    let at = (start + t) * 3 * h + which * h + head * d;
                    &qkv[at..at + d]
                };
                for head in 0..self.heads {
                    let q = row(0, 0, head);
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = q.iter().zip(row(j, 1, head)).map(|(a, b)| a * b).sum();
                    }
                    softmax_rows(kernels, scores, len);
                    let o = &mut out[head * d..(head + 1) * d];
                    o.fill(0.0);
                    for (j, p) in scores.iter().enumerate() {
                        for (o, v) in o.iter_mut().zip(row(j, 2, head)) {
                            *o += p * v;
                        }
                    }
                }
            });
        // The first tokens' states, gathered to the front of `hidden`.
        for (i, text) in batch.offsets.windows(2).enumerate() {
            ws.hidden.copy_within(text[0] * h..(text[0] + 1) * h, i * h);
        }
        let x = &mut ws.hidden[..texts * h];
        let projected = &mut ws.projected[..texts * h];
        let int8 = &mut ws.int8;
        last.attention_out
            .product(kernels, projected, context, None, int8, Products::Panels);
        let norm = &last.attention_norm;
        layer_norm(
            kernels,
            x,
            Some((projected, &last.attention_out.bias)),
            &norm.weight,
            &norm.bias,
            norm.eps,
        );
        let inner = &mut ws.inner[..texts * self.intermediate];
        last.intermediate
            .product(kernels, inner, x, None, int8, Products::Panels);
        bias_activation(kernels, inner, &last.intermediate.bias, self.activation);
        last.output
            .product(kernels, projected, inner, None, int8, Products::Panels);
        let norm = &last.output_norm;
        layer_norm(
            kernels,
            x,
            Some((projected, &last.output.bias)),
            &norm.weight,
            &norm.bias,
            norm.eps,
        );
        Ok(())
    }

    fn layer_forward(
        &self,
        kernels: Kernels,
        layer: &Layer,
        offsets: &[usize],
        tokens: usize,
        ws: &mut Workspace,
    ) {
        let h = self.hidden;
        let x = &mut ws.hidden[..tokens * h];

        // qkv = x Wqkvᵀ + b.
        let qkv = &mut ws.qkv[..tokens * 3 * h];
        let products = ws.products;
        layer.qkv.product(
            kernels,
            qkv,
            x,
            Some(&layer.qkv.bias),
            &mut ws.int8,
            products,
        );

        self.attention(kernels, qkv, offsets, &mut ws.context[..tokens * h]);

        let projected = &mut ws.projected[..tokens * h];
        layer.attention_out.product(
            kernels,
            projected,
            &ws.context[..tokens * h],
            None,
            &mut ws.int8,
            products,
        );
        let norm = &layer.attention_norm;
        layer_norm(
            kernels,
            x,
            Some((projected, &layer.attention_out.bias)),
            &norm.weight,
            &norm.bias,
            norm.eps,
        );

        let inner = &mut ws.inner[..tokens * self.intermediate];
        layer
            .intermediate
            .product(kernels, inner, x, None, &mut ws.int8, products);
        bias_activation(kernels, inner, &layer.intermediate.bias, self.activation);
        layer
            .output
            .product(kernels, projected, inner, None, &mut ws.int8, products);
        let norm = &layer.output_norm;
        layer_norm(
            kernels,
            x,
            Some((projected, &layer.output.bias)),
            &norm.weight,
            &norm.bias,
            norm.eps,
        );
    }

    /// Self-attention of every text over its own tokens, texts in parallel:
    /// `context = softmax(q kᵀ) v` per head (the scale is in the query weights).
    fn attention(&self, kernels: Kernels, qkv: &[f32], offsets: &[usize], context: &mut [f32]) {
        let (h, d) = (self.hidden, self.head_dim);
        // Split `context` into the rows of each text, so each task owns its rows.
        let mut parts = Vec::with_capacity(offsets.len() - 1);
        let mut rest = context;
        for text in offsets.windows(2) {
            let (mine, tail) = rest.split_at_mut((text[1] - text[0]) * h);
            parts.push((text[0], text[1] - text[0], mine));
            rest = tail;
        }
        parts
            .into_par_iter()
            .for_each_init(Vec::new, |scores, (start, len, out)| {
                if len == 0 {
                    return;
                }
                grow(scores, len * len);
                let scores = &mut scores[..len * len];
                let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
                for head in 0..self.heads {
                    let part = |which: usize| View {
                        data: &rows[which * h + head * d..],
                        rows: len,
                        cols: d,
                        row_stride: 3 * h,
                        col_stride: 1,
                    };
                    matmul(kernels, scores, len, part(0), part(1).t(), false, false);
                    softmax_rows(kernels, scores, len);
                    matmul(
                        kernels,
                        &mut out[head * d..],
                        h,
                        View::dense(scores, len, len),
                        part(2),
                        false,
                        false,
                    );
                }
            });
    }
}
