//! BM25 as Lucene (>= 8) computes it: each term's score float for float.
//!
//! For a query term with document frequency `df` in a collection of `N` documents
//! that have at least one term, and a document of length `dl` holding it `tf`
//! times:
//!
//! ```text
//! idf   = ln(1 + (N - df + 0.5) / (df + 0.5))
//! score = boost * idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))
//! ```
//!
//! `avgdl` is the total number of terms divided by `N`; `boost` is how many times
//! the term occurs in the query (Anserini's bag-of-words query). Lucene dropped the
//! `(k1 + 1)` factor of the textbook formula in version 8; it does not change the
//! ranking, and we follow Lucene so that scores match Pyserini's.
//!
//! `dl` is not the exact length but the length stored in one byte and decoded
//! (Lucene's `SmallFloat.intToByte4` / `byte4ToInt`): exact up to 39, then with
//! 3 significant bits (40, 42, ..., 56, 60, ..., 88, 96, ...). tantivy's fieldnorm
//! codes use the very same table (`FIELD_NORMS_TABLE` equals Lucene's
//! `LENGTH_TABLE`; a test checks every code), so the fieldnorm byte tantivy stores
//! for a document *is* Lucene's norm byte and we read it directly.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Lucene's `SmallFloat.intToByte4`: the one-byte norm of a field length (rounded
/// down to the nearest length the byte can hold).
pub fn length_to_norm(length: u32) -> u8 {
    const FREE: u32 = 24;
    if length < FREE {
        length as u8
    } else {
        (FREE + long_to_int4(length - FREE)) as u8
    }
}

/// Lucene's `SmallFloat.byte4ToInt`: the field length a norm byte stands for.
pub fn norm_to_length(norm: u8) -> u32 {
    const FREE: u32 = 24;
    let i = u32::from(norm);
    if i < FREE {
        i
    } else {
        (u64::from(FREE) + int4_to_long(i - FREE)).min(i32::MAX as u64) as u32
    }
}

fn long_to_int4(i: u32) -> u32 {
    let bits = 32 - i.leading_zeros();
    if bits < 4 {
        i
    } else {
        let shift = bits - 4;
        ((i >> shift) & 0x07) | ((shift + 1) << 3)
    }
}

fn int4_to_long(i: u32) -> u64 {
    let bits = u64::from(i & 0x07);
    let shift = (i >> 3) as i32 - 1;
    if shift == -1 {
        bits
    } else {
        (bits | 0x08) << shift
    }
}

/// The two BM25 parameters. The default is Pyserini's (`k1 = 0.9`, `b = 0.4`);
/// BEIR's Elasticsearch baseline uses `k1 = 1.2`, `b = 0.75`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bm25Params {
    /// Term-frequency saturation, `>= 0` (0: only presence counts).
    pub k1: f32,
    /// Length normalisation, in `[0, 1]` (0: none, 1: full).
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 0.9, b: 0.4 }
    }
}

impl Bm25Params {
    /// Checks the ranges.
    pub fn new(k1: f32, b: f32) -> Result<Self> {
        if !(k1.is_finite() && k1 >= 0.0) {
            return Err(Error::Invalid(format!(
                "k1 must be a finite number >= 0, not {k1}"
            )));
        }
        if !(0.0..=1.0).contains(&b) {
            return Err(Error::Invalid(format!(
                "b must be between 0 and 1, not {b}"
            )));
        }
        Ok(Bm25Params { k1, b })
    }
}

/// Lucene's `BM25Similarity.idf`, computed in double and rounded to float.
pub(crate) fn idf(doc_freq: u64, doc_count: u64) -> f32 {
    let (df, n) = (doc_freq as f64, doc_count as f64);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32
}

/// Lucene's average field length: total terms over documents with the field.
pub(crate) fn avg_length(total_terms: u64, doc_count: u64) -> f32 {
    if doc_count == 0 {
        1.0
    } else {
        (total_terms as f64 / doc_count as f64) as f32
    }
}

/// `1 / (k1 * (1 - b + b * dl / avgdl))` for every norm byte, in Lucene's float
/// operation order, so that a document's score is `weight - weight / (1 + tf *
/// cache[norm])` (Lucene's `BM25Scorer.score`, which is monotonic in both tf and
/// norm).
#[derive(Clone, Debug)]
pub(crate) struct NormCache(pub(crate) [f32; 256]);

impl NormCache {
    pub(crate) fn new(params: Bm25Params, avgdl: f32) -> Self {
        let Bm25Params { k1, b } = params;
        let mut cache = [0f32; 256];
        for (norm, slot) in cache.iter_mut().enumerate() {
            let length = norm_to_length(norm as u8) as f32;
            *slot = 1.0 / (k1 * ((1.0 - b) + b * length / avgdl));
        }
        NormCache(cache)
    }
}

impl NormCache {
    /// `cache[norm]` for each document's norm byte.
    pub(crate) fn per_document(&self, norms: &[u8]) -> Vec<f32> {
        norms.iter().map(|&n| self.0[n as usize]).collect()
    }
}

/// One term's contribution: Lucene's `weight - weight / (1 + freq * normInverse)`.
#[inline(always)]
pub(crate) fn term_score(weight: f32, freq: u32, norm_inverse: f32) -> f32 {
    weight - weight / (1.0 + freq as f32 * norm_inverse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::fieldnorm::FieldNormReader;

    #[test]
    fn norms_match_tantivy_fieldnorms_code_for_code() {
        for norm in 0..=255u8 {
            assert_eq!(
                norm_to_length(norm),
                FieldNormReader::id_to_fieldnorm(norm),
                "code {norm}"
            );
        }
        for length in (0..100_000u32).chain([1 << 20, 123_456_789, u32::MAX >> 1]) {
            assert_eq!(
                length_to_norm(length),
                FieldNormReader::fieldnorm_to_id(length),
                "length {length}"
            );
            assert!(norm_to_length(length_to_norm(length)) <= length);
        }
    }

    #[test]
    fn lucene_length_table_landmarks() {
        let table: Vec<u32> = (0..=255u8).map(norm_to_length).collect();
        assert_eq!(&table[..41], &(0..=40).collect::<Vec<_>>()[..]);
        assert_eq!(&table[41..50], [42, 44, 46, 48, 50, 52, 54, 56, 60]);
        assert_eq!(table[255], 2_013_265_944);
    }

    #[test]
    fn scores_follow_the_formula() {
        let params = Bm25Params::default();
        let cache = NormCache::new(params, 10.0);
        // dl = 10 = avgdl: tf / (tf + k1).
        let w = idf(1, 100);
        let expected = w * 2.0 / (2.0 + 0.9);
        assert!((term_score(w, 2, cache.0[10]) - expected).abs() < 1e-6);
        assert!((idf(1, 100) - (1.0f64 + 99.5 / 1.5).ln() as f32).abs() < 1e-7);
        // A term in every document still scores above zero.
        assert!(idf(100, 100) > 0.0);
        assert!(Bm25Params::new(-1.0, 0.5).is_err() && Bm25Params::new(1.0, 1.5).is_err());
    }
}
