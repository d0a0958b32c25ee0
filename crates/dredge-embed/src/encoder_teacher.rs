//! [`dredge_core::Teacher`] for the bi-encoder: an [`Encoder`] scores a pair by the
//! cosine of the query's and the passage's embeddings. (The cross-encoder's impl is
//! in `cross.rs`.)

use std::collections::HashMap;

use dredge_core::{Teacher, TeacherKind};

use crate::encoder::{Encoder, TextKind};

fn core_error(e: crate::Error) -> dredge_core::Error {
    dredge_core::Error::Retriever(Box::new(e))
}

/// Each distinct text once, and for every input its row among them.
fn distinct<'a>(texts: impl Iterator<Item = &'a str>) -> (Vec<&'a str>, Vec<usize>) {
    let mut row: HashMap<&str, usize> = HashMap::new();
    let mut unique = Vec::new();
    let rows = texts
        .map(|t| {
            *row.entry(t).or_insert_with(|| {
                unique.push(t);
                unique.len() - 1
            })
        })
        .collect();
    (unique, rows)
}

/// The cosine of `a` and `b` (0 when either is zero).
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    let norm = (aa * bb).sqrt();
    if norm > 0.0 { ab / norm } else { 0.0 }
}

/// A sentence-transformers bi-encoder as a teacher: the cosine of the query's
/// embedding (with the query prefix) and the passage's (with the passage prefix).
/// Each distinct query and passage of a call is encoded once.
impl Teacher for Encoder {
    fn name(&self) -> &str {
        self.dir()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("bi-encoder")
    }

    fn kind(&self) -> TeacherKind {
        TeacherKind::BiEncoder
    }

    fn score_pairs(&self, pairs: &[(&str, &str)]) -> dredge_core::Result<Vec<f32>> {
        let (queries, query_rows) = distinct(pairs.iter().map(|p| p.0));
        let (passages, passage_rows) = distinct(pairs.iter().map(|p| p.1));
        let q = self
            .encode(&queries, TextKind::Query, &mut |_| {})
            .map_err(core_error)?
            .0;
        let p = self
            .encode(&passages, TextKind::Passage, &mut |_| {})
            .map_err(core_error)?
            .0;
        Ok(query_rows
            .iter()
            .zip(&passage_rows)
            .map(|(&qi, &pi)| cosine(q.row(qi), p.row(pi)))
            .collect())
    }
}
