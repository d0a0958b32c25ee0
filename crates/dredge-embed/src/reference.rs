//! A plain float64 BERT written out loop by loop, straight from the definitions,
//! over one unpadded sequence: the reference the bi-encoder (`tests.rs`) and the
//! cross-encoder (`cross_tests.rs`) are checked against. One encoder stack (the
//! embeddings and the layers), with the bi-encoder's pooling and normalisation or
//! the cross-encoder's pooler and classifier on top.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;

use crate::testing::{TinyCrossEncoder, TinyModel};

/// The weights of a tiny model folder in float64, by tensor name without the prefix.
pub(crate) struct Reference {
    w: HashMap<String, Vec<f64>>,
    model: TinyModel,
}

impl Reference {
    /// The bi-encoder folder `model` wrote in `dir`.
    pub(crate) fn load(dir: &Path, model: &TinyModel) -> Reference {
        Reference::read(dir, model.clone())
    }

    /// The cross-encoder folder `tiny` wrote in `dir`: its encoder under `bert.`,
    /// the classifier without a prefix.
    pub(crate) fn load_cross_encoder(dir: &Path, tiny: &TinyCrossEncoder) -> Reference {
        Reference::read(
            dir,
            TinyModel {
                prefix: "bert.",
                ..tiny.model.clone()
            },
        )
    }

    /// Every tensor of `model.safetensors`, the model's prefix taken off the names
    /// that have it.
    fn read(dir: &Path, model: TinyModel) -> Reference {
        let tensors =
            candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
        let w = tensors
            .into_iter()
            .map(|(k, t)| {
                let k = k.strip_prefix(model.prefix).unwrap_or(&k).to_owned();
                let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                (k, v.into_iter().map(f64::from).collect())
            })
            .collect();
        Reference { w, model }
    }

    fn get(&self, name: &str) -> &[f64] {
        &self.w[name]
    }

    /// `y = x W^T + b` for `x` of `rows x inp`, `W` of `out x inp`.
    fn linear(&self, x: &[f64], rows: usize, name: &str, out: usize) -> Vec<f64> {
        let (w, b) = (
            self.get(&format!("{name}.weight")),
            self.get(&format!("{name}.bias")),
        );
        let inp = x.len() / rows;
        let mut y = vec![0.0; rows * out];
        for r in 0..rows {
            for o in 0..out {
                y[r * out + o] = b[o]
                    + (0..inp)
                        .map(|i| x[r * inp + i] * w[o * inp + i])
                        .sum::<f64>();
            }
        }
        y
    }

    fn layer_norm(&self, x: &mut [f64], name: &str) {
        let (g, b) = (
            self.get(&format!("{name}.weight")),
            self.get(&format!("{name}.bias")),
        );
        let h = g.len();
        for row in x.chunks_mut(h) {
            let mean = row.iter().sum::<f64>() / h as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h as f64;
            let inv = 1.0 / (var + 1e-12).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * inv * g[i] + b[i];
            }
        }
    }

    /// The last hidden states (`ids.len() x hidden`) of a sequence given its token
    /// ids and segment ids.
    fn hidden_states(&self, ids: &[u32], types: &[u32]) -> Vec<f64> {
        let m = &self.model;
        let (h, n) = (m.hidden, ids.len());
        let (word, pos, typ) = (
            self.get("embeddings.word_embeddings.weight"),
            self.get("embeddings.position_embeddings.weight"),
            self.get("embeddings.token_type_embeddings.weight"),
        );
        let mut x = vec![0.0; n * h];
        for t in 0..n {
            let (id, ty) = (ids[t] as usize, types[t] as usize);
            for j in 0..h {
                x[t * h + j] = word[id * h + j] + pos[t * h + j] + typ[ty * h + j];
            }
        }
        self.layer_norm(&mut x, "embeddings.LayerNorm");
        let (heads, d) = (m.heads, h / m.heads);
        for l in 0..m.layers {
            let p = format!("encoder.layer.{l}");
            let q = self.linear(&x, n, &format!("{p}.attention.self.query"), h);
            let k = self.linear(&x, n, &format!("{p}.attention.self.key"), h);
            let v = self.linear(&x, n, &format!("{p}.attention.self.value"), h);
            let mut context = vec![0.0; n * h];
            for head in 0..heads {
                for i in 0..n {
                    let scores: Vec<f64> = (0..n)
                        .map(|j| {
                            (0..d)
                                .map(|c| q[i * h + head * d + c] * k[j * h + head * d + c])
                                .sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exps.iter().sum();
                    for c in 0..d {
                        context[i * h + head * d + c] = (0..n)
                            .map(|j| exps[j] / total * v[j * h + head * d + c])
                            .sum();
                    }
                }
            }
            let attention = self.linear(&context, n, &format!("{p}.attention.output.dense"), h);
            let mut y: Vec<f64> = attention.iter().zip(&x).map(|(a, b)| a + b).collect();
            self.layer_norm(&mut y, &format!("{p}.attention.output.LayerNorm"));
            let mut inner = self.linear(&y, n, &format!("{p}.intermediate.dense"), m.intermediate);
            for v in &mut inner {
                *v = match m.activation {
                    "gelu" => 0.5 * *v * (1.0 + erf(*v / std::f64::consts::SQRT_2)),
                    "gelu_new" => {
                        0.5 * *v
                            * (1.0
                                + ((2.0 / std::f64::consts::PI).sqrt()
                                    * (*v + 0.044715 * v.powi(3)))
                                .tanh())
                    }
                    "relu" => v.max(0.0),
                    other => panic!("{other}"),
                };
            }
            let out = self.linear(&inner, n, &format!("{p}.output.dense"), h);
            x = out.iter().zip(&y).map(|(a, b)| a + b).collect();
            self.layer_norm(&mut x, &format!("{p}.output.LayerNorm"));
        }
        x
    }

    /// The bi-encoder's vector of one text (all segment ids 0): the model's pooling
    /// (`"cls"` or mean), then its normalisation.
    pub(crate) fn embed(&self, ids: &[u32]) -> Vec<f64> {
        let m = &self.model;
        let (h, n) = (m.hidden, ids.len());
        let x = self.hidden_states(ids, &vec![0; n]);
        let mut pooled: Vec<f64> = match m.pooling {
            "cls" => x[..h].to_vec(),
            _ => (0..h)
                .map(|j| (0..n).map(|t| x[t * h + j]).sum::<f64>() / n as f64)
                .collect(),
        };
        if m.normalize {
            let norm = pooled.iter().map(|v| v * v).sum::<f64>().sqrt();
            pooled.iter_mut().for_each(|v| *v /= norm);
        }
        pooled
    }

    /// The cross-encoder's logit of a pair given its token ids and segment ids:
    /// BERT's pooler (dense and tanh) on `[CLS]`, then the classifier's one row.
    pub(crate) fn logit(&self, ids: &[u32], types: &[u32]) -> f64 {
        let h = self.model.hidden;
        let x = self.hidden_states(ids, types);
        let pooled: Vec<f64> = self
            .linear(&x[..h], 1, "pooler.dense", h)
            .into_iter()
            .map(f64::tanh)
            .collect();
        self.linear(&pooled, 1, "classifier", 1)[0]
    }
}

/// erf to about 1e-15 (Abramowitz-Stegun 7.1.5 series, then the continued fraction
/// of erfc for large arguments).
fn erf(x: f64) -> f64 {
    if x.abs() < 3.0 {
        let mut sum = x;
        let mut term = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let ax = x.abs();
        let mut f = ax;
        for k in (1..60).rev() {
            f = ax + (k as f64 / 2.0) / f;
        }
        let erfc = (-ax * ax).exp() / std::f64::consts::PI.sqrt() / f;
        (1.0 - erfc).copysign(x)
    }
}
