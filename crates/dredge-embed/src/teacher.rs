//! Teachers for `dredge mine --rescore`: a model folder that scores (query,
//! passage) pairs. A sentence-transformers bi-encoder scores a pair by the cosine
//! of the two embeddings; a cross-encoder folder (`BertForSequenceClassification`)
//! is recognised, and loaded by [`cross_encoder_teacher`].

use std::collections::HashMap;
use std::path::Path;

use dredge_core::{Teacher, TeacherKind};

use crate::encoder::{Encoder, EncoderOptions, TextKind};
use crate::error::{Error, Result};

/// A sentence-transformers bi-encoder as a teacher: the cosine of the
/// L2-normalised query and passage embeddings (the query and passage prompts of
/// the folder apply).
pub struct BiEncoderTeacher {
    encoder: Encoder,
    name: String,
}

impl BiEncoderTeacher {
    /// The teacher of a loaded encoder, named `name` in reports.
    pub fn new(encoder: Encoder, name: impl Into<String>) -> Self {
        BiEncoderTeacher {
            encoder,
            name: name.into(),
        }
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}

/// The distinct texts of `texts`, in first-seen order, and each text's position
/// among them.
fn distinct<'t>(texts: impl Iterator<Item = &'t str>) -> (Vec<&'t str>, Vec<usize>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut unique = Vec::new();
    let at = texts
        .map(|t| {
            *seen.entry(t).or_insert_with(|| {
                unique.push(t);
                unique.len() - 1
            })
        })
        .collect();
    (unique, at)
}

impl Teacher for BiEncoderTeacher {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TeacherKind {
        TeacherKind::BiEncoder
    }

    /// Each distinct query and passage of the batch is encoded once.
    fn score_pairs(&self, pairs: &[(&str, &str)]) -> dredge_core::Result<Vec<f32>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let (queries, qi) = distinct(pairs.iter().map(|p| p.0));
        let (passages, pi) = distinct(pairs.iter().map(|p| p.1));
        let encode = |texts: &[&str], kind| {
            self.encoder
                .encode(texts, kind, &mut |_| {})
                .map(|(m, _)| m)
                .map_err(dredge_core::Error::retriever)
        };
        let q = encode(&queries, TextKind::Query)?;
        let p = encode(&passages, TextKind::Passage)?;
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let qn: Vec<f32> = (0..q.rows).map(|i| norm(q.row(i))).collect();
        let pn: Vec<f32> = (0..p.rows).map(|i| norm(p.row(i))).collect();
        Ok(qi
            .iter()
            .zip(&pi)
            .map(|(&a, &b)| {
                let dot: f32 = q.row(a).iter().zip(p.row(b)).map(|(x, y)| x * y).sum();
                let den = qn[a] * pn[b];
                if den > 0.0 { dot / den } else { 0.0 }
            })
            .collect())
    }
}

/// True when the folder's `config.json` names a sequence-classification
/// architecture (`BertForSequenceClassification` and kin): a cross-encoder.
pub fn is_cross_encoder(model_dir: &Path) -> Result<bool> {
    let path = model_dir.join("config.json");
    let text = fs_err::read_to_string(&path).map_err(|_| Error::MissingFile {
        path: path.clone(),
        what: "the model configuration",
    })?;
    let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(config["architectures"].as_array().is_some_and(|a| {
        a.iter()
            .filter_map(|s| s.as_str())
            .any(|s| s.ends_with("ForSequenceClassification"))
    }))
}

/// THE SEAM for cross-encoders: loads a sentence-transformers `CrossEncoder`
/// folder as a teacher. Not built yet on this branch: replace the body with the
/// cross-encoder of `cross.rs` (kind [`TeacherKind::CrossEncoder`]).
pub fn cross_encoder_teacher(
    model_dir: &Path,
    options: &EncoderOptions,
) -> Result<Box<dyn Teacher>> {
    let _ = options;
    Err(Error::Unsupported {
        path: model_dir.join("config.json"),
        message: "cross-encoder support is not built yet (BertForSequenceClassification)".into(),
    })
}

/// Loads a teacher from a model folder: a cross-encoder when its `config.json`
/// names a sequence-classification architecture, else a sentence-transformers
/// bi-encoder. Named by the folder's name.
pub fn load_teacher(model_dir: &Path, options: &EncoderOptions) -> Result<Box<dyn Teacher>> {
    if is_cross_encoder(model_dir)? {
        return cross_encoder_teacher(model_dir, options);
    }
    let encoder = Encoder::load(model_dir, options)?;
    let name = model_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| model_dir.display().to_string());
    Ok(Box::new(BiEncoderTeacher::new(encoder, name)))
}
