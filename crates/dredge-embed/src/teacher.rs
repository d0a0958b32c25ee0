//! Teachers for `dredge mine --rescore`: a model folder that scores (query,
//! passage) pairs. A sentence-transformers bi-encoder scores a pair by the cosine
//! of the two embeddings; a cross-encoder folder (`BertForSequenceClassification`)
//! is recognised, and loaded by [`cross_encoder_teacher`].

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

use dredge_core::{Teacher, TeacherKind};

use crate::cross::{CrossEncoder, CrossEncoderOptions};
use crate::encoder::{Encoder, EncoderOptions, TextKind};
use crate::error::{Error, Result};

/// A sentence-transformers bi-encoder as a teacher: the cosine of the
/// L2-normalised query and passage embeddings (the query and passage prompts of
/// the folder apply).
///
/// Mining asks for the same passages again and again (a document is a candidate
/// of many queries): the embeddings of up to 200,000 distinct passages
/// are kept for the teacher's life, keyed by a 128-bit hash of the text.
pub struct BiEncoderTeacher {
    encoder: Encoder,
    name: String,
    cache: Mutex<HashMap<u128, Arc<[f32]>>>,
}

/// Passage embeddings a [`BiEncoderTeacher`] keeps (about 300 MB at dimension 384).
const PASSAGE_CACHE: usize = 200_000;

/// A 128-bit hash of a text (two SipHash-1-3 runs with distinct keys): collisions
/// are out of reach for any corpus.
fn text_key(text: &str) -> u128 {
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x243f_6a88_85a3_08d3)) << 64) | u128::from(half(0x1319_8a2e_0370_7344))
}

impl BiEncoderTeacher {
    /// The teacher of a loaded encoder, named `name` in reports.
    pub fn new(encoder: Encoder, name: impl Into<String>) -> Self {
        BiEncoderTeacher {
            encoder,
            name: name.into(),
            cache: Mutex::new(HashMap::new()),
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
        // Passages: from the cache, the others encoded (and cached while there is
        // room).
        let keys: Vec<u128> = passages.iter().map(|t| text_key(t)).collect();
        let mut rows: Vec<Option<Arc<[f32]>>> = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter().map(|k| cache.get(k).cloned()).collect()
        };
        let todo: Vec<usize> = (0..passages.len()).filter(|&i| rows[i].is_none()).collect();
        if !todo.is_empty() {
            let texts: Vec<&str> = todo.iter().map(|&i| passages[i]).collect();
            let p = encode(&texts, TextKind::Passage)?;
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for (k, &i) in todo.iter().enumerate() {
                let row: Arc<[f32]> = Arc::from(p.row(k));
                if cache.len() < PASSAGE_CACHE {
                    cache.insert(keys[i], Arc::clone(&row));
                }
                rows[i] = Some(row);
            }
        }
        let rows: Vec<Arc<[f32]>> = rows.into_iter().map(|r| r.expect("encoded")).collect();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let qn: Vec<f32> = (0..q.rows).map(|i| norm(q.row(i))).collect();
        let pn: Vec<f32> = rows.iter().map(|r| norm(r)).collect();
        Ok(qi
            .iter()
            .zip(&pi)
            .map(|(&a, &b)| {
                let dot: f32 = q
                    .row(a)
                    .iter()
                    .zip(rows[b].iter())
                    .map(|(x, y)| x * y)
                    .sum();
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

/// Loads a sentence-transformers `CrossEncoder` folder as a teacher (kind
/// [`TeacherKind::CrossEncoder`]): `options` gives its maximum length and batch
/// size; the activation is the one the folder records.
pub fn cross_encoder_teacher(
    model_dir: &Path,
    options: &EncoderOptions,
) -> Result<Box<dyn Teacher>> {
    let options = CrossEncoderOptions {
        max_length: options.max_length,
        batch_size: options.batch_size,
        activation: None,
    };
    Ok(Box::new(CrossEncoder::load(model_dir, &options)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_texts_keep_first_seen_order() {
        let (unique, at) = distinct(["b", "a", "b", "c", "a"].into_iter());
        assert_eq!(unique, ["b", "a", "c"]);
        assert_eq!(at, [0, 1, 0, 2, 1]);
        assert_ne!(text_key("a b"), text_key("ab"));
        assert_eq!(text_key("x"), text_key("x"));
    }

    #[test]
    fn folders_are_told_apart_by_their_architectures() {
        let dir = tempfile::tempdir().unwrap();
        let write = |json: &str| fs_err::write(dir.path().join("config.json"), json).unwrap();
        write(r#"{"architectures": ["BertForSequenceClassification"]}"#);
        assert!(is_cross_encoder(dir.path()).unwrap());
        write(r#"{"architectures": ["BertModel"]}"#);
        assert!(!is_cross_encoder(dir.path()).unwrap());
        write("{not json");
        let err = is_cross_encoder(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        let missing = dir.path().join("nowhere");
        let err = load_teacher(&missing, &EncoderOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
