//! BM25 statistics of a collection split into shards: what Lucene's scorer reads
//! from a whole index (documents with terms, total terms, each term's document
//! frequency), computed from the shards' own term dictionaries so that every shard
//! scores its documents exactly as one index of the whole collection would.
//!
//! On disk, one file (`bm25-terms.fst`): an FST map (tantivy's `tantivy-fst`, the
//! structure tantivy's own term dictionaries use) from each term's bytes to its
//! document frequency in the collection, terms in byte order. The two totals and
//! the file's size and FNV-1a hash are recorded by the caller (the sharded index's
//! manifest) and checked when the file is opened.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tantivy::termdict::TermMerger;

use crate::error::{Error, Result};
use crate::index::Bm25Index;

/// The numbers a sharded index records about its terms file, checked on open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionSummary {
    /// Documents of the collection (all shards).
    pub documents: u64,
    /// Documents with at least one term: Lucene's `docCount`, the `N` of the idf.
    pub documents_with_terms: u64,
    /// Terms indexed, all documents together (Lucene's `sumTotalTermFreq`).
    pub total_terms: u64,
    /// Distinct terms.
    pub terms: u64,
    /// Size of the terms file in bytes.
    pub bytes: u64,
    /// FNV-1a (64 bits) of the terms file, `fnv1a64:<16 hex digits>`.
    pub hash: String,
}

/// A collection's BM25 statistics, opened: the totals and a term's document
/// frequency by lookup. Give it to each shard with [`Bm25Index::with_collection`].
pub struct CollectionStats {
    summary: CollectionSummary,
    terms: tantivy_fst::Map<Vec<u8>>,
}

impl std::fmt::Debug for CollectionStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionStats")
            .field("summary", &self.summary)
            .finish()
    }
}

impl CollectionStats {
    /// Merges the term dictionaries of `shards` (every segment of each, in one
    /// ordered pass) and writes the terms file `path` atomically. The shards must
    /// have been built with the same analyzer (the caller checks their recorded
    /// settings).
    pub fn write(shards: &[&Bm25Index], path: &Path) -> Result<CollectionSummary> {
        let mut streams = Vec::new();
        for shard in shards {
            for dictionary in shard.term_dictionaries() {
                streams.push(dictionary.stream().map_err(Error::Io)?);
            }
        }
        let mut merger = TermMerger::new(streams);
        let mut builder = tantivy_fst::MapBuilder::memory();
        let mut terms = 0u64;
        while merger.advance() {
            let df: u64 = merger
                .current_segment_ords_and_term_infos()
                .map(|(_, info)| u64::from(info.doc_freq))
                .sum();
            builder
                .insert(merger.key(), df)
                .map_err(|e| Error::format(path, format!("writing the terms: {e}")))?;
            terms += 1;
        }
        let bytes = builder
            .into_inner()
            .map_err(|e| Error::format(path, format!("writing the terms: {e}")))?;
        dredge_core::write_file(path, |f| {
            std::io::Write::write_all(f, &bytes).map_err(|e| dredge_core::Error::io(path, e))
        })?;
        Ok(CollectionSummary {
            documents: shards.iter().map(|s| s.info().documents).sum(),
            documents_with_terms: shards.iter().map(|s| s.info().documents_with_terms).sum(),
            total_terms: shards.iter().map(|s| s.info().total_terms).sum(),
            terms,
            bytes: bytes.len() as u64,
            hash: fnv1a64(&bytes),
        })
    }

    /// Opens the terms file `path` and checks it against what the manifest
    /// recorded: its size, then its hash (a damaged or replaced file is an error
    /// that says to rejoin the shards).
    pub fn open(path: &Path, summary: &CollectionSummary) -> Result<Arc<Self>> {
        let bytes = fs_err::read(path)?;
        let damaged = |what: String| {
            Error::format(
                path,
                format!(
                    "{what}; the file is damaged (join the shards again with `dredge shards join`)"
                ),
            )
        };
        if bytes.len() as u64 != summary.bytes {
            return Err(damaged(format!(
                "holds {} bytes but the manifest says {}",
                bytes.len(),
                summary.bytes
            )));
        }
        let hash = fnv1a64(&bytes);
        if hash != summary.hash {
            return Err(damaged(format!(
                "its hash is {hash} but the manifest says {}",
                summary.hash
            )));
        }
        let terms = tantivy_fst::Map::from_bytes(bytes)
            .map_err(|e| damaged(format!("not a terms file ({e})")))?;
        if terms.len() as u64 != summary.terms {
            return Err(damaged(format!(
                "holds {} terms but the manifest says {}",
                terms.len(),
                summary.terms
            )));
        }
        Ok(Arc::new(CollectionStats {
            summary: summary.clone(),
            terms,
        }))
    }

    /// The totals.
    pub fn summary(&self) -> &CollectionSummary {
        &self.summary
    }

    /// Documents of the collection holding `term` (0 when none does).
    pub fn doc_freq(&self, term: &str) -> u64 {
        self.terms.get(term).unwrap_or(0)
    }
}

/// FNV-1a (64 bits) of `bytes`, as `fnv1a64:<16 hex digits>`.
fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}
