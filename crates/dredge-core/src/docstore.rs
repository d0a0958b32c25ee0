//! The index's document table: external ids, titles and texts, by [`DocId`].
//!
//! On disk (`docs.bin`, little-endian):
//!
//! ```text
//! magic   8 bytes  "DRDOCS\0\x01" (the last byte is the format version)
//! count   u64      number of documents n
//! offsets (3n+1) x u64  byte offsets into the blob: id, title, text of doc 0, then doc 1, ...
//! blob    UTF-8    the strings, back to back
//! ```
//!
//! Loading reads the file once and checks it; lookups slice the blob.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use crate::atomic::write_file;
use crate::error::{Error, Result};
use crate::ids::{DocId, Id};

const MAGIC: &[u8; 8] = b"DRDOCS\0\x01";

/// Ids, titles and texts of the indexed documents.
#[derive(Debug, Default)]
pub struct DocStore {
    offsets: Vec<u64>,
    blob: String,
    lookup: OnceLock<HashMap<Box<str>, DocId>>,
}

impl DocStore {
    /// An empty store.
    pub fn new() -> Self {
        DocStore {
            offsets: vec![0],
            blob: String::new(),
            lookup: OnceLock::new(),
        }
    }

    /// Appends a document and returns its id. The caller keeps ids unique (the
    /// corpus reader does).
    pub fn push(&mut self, id: &str, title: &str, text: &str) -> DocId {
        let doc = DocId::from_index(self.len());
        for s in [id, title, text] {
            self.blob.push_str(s);
            self.offsets.push(self.blob.len() as u64);
        }
        self.lookup = OnceLock::new();
        doc
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        (self.offsets.len().max(1) - 1) / 3
    }

    /// True when there are no documents.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn field(&self, doc: DocId, field: usize) -> &str {
        let i = doc.index() * 3 + field;
        &self.blob[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The external id of `doc`. Panics if `doc` is out of range.
    pub fn id(&self, doc: DocId) -> &str {
        self.field(doc, 0)
    }

    /// The title of `doc` (may be empty).
    pub fn title(&self, doc: DocId) -> &str {
        self.field(doc, 1)
    }

    /// The text of `doc` (may be empty).
    pub fn text(&self, doc: DocId) -> &str {
        self.field(doc, 2)
    }

    /// Title and text joined as encoders see them.
    pub fn joined(&self, doc: DocId) -> String {
        crate::text::document_text(self.title(doc), self.text(doc))
    }

    /// The [`DocId`] of an external id.
    pub fn doc_id(&self, id: &str) -> Option<DocId> {
        self.lookup
            .get_or_init(|| {
                (0..self.len())
                    .map(|i| {
                        (
                            Box::from(self.id(DocId::from_index(i))),
                            DocId::from_index(i),
                        )
                    })
                    .collect()
            })
            .get(id)
            .copied()
    }

    /// All document ids, in order.
    pub fn doc_ids(&self) -> impl ExactSizeIterator<Item = DocId> + use<> {
        (0..self.len()).map(DocId::from_index)
    }

    /// Writes the store to `path`, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        write_file(path, |f| {
            let io = |e| Error::io(path, e);
            f.write_all(MAGIC).map_err(io)?;
            f.write_all(&(self.len() as u64).to_le_bytes())
                .map_err(io)?;
            let offsets: Vec<u8> = self.offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
            f.write_all(&offsets).map_err(io)?;
            f.write_all(self.blob.as_bytes()).map_err(io)
        })
    }

    /// Reads a store written by [`DocStore::save`], checking its shape.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = fs_err::read(path)?;
        let bad = |m: &str| Error::format(path, format!("not a dredge document table: {m}"));
        if bytes.len() < 16 || bytes[..6] != MAGIC[..6] {
            return Err(bad("wrong magic"));
        }
        if bytes[7] != MAGIC[7] {
            return Err(bad(&format!(
                "format version {} (this dredge reads {})",
                bytes[7], MAGIC[7]
            )));
        }
        let n = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let table_len = n
            .checked_mul(3)
            .and_then(|x| x.checked_add(1))
            .and_then(|x| x.checked_mul(8))
            .ok_or_else(|| bad("bad count"))?;
        let table = bytes
            .get(16..16 + table_len)
            .ok_or_else(|| bad("truncated offsets"))?;
        let offsets: Vec<u64> = table
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let blob = bytes[16 + table_len..].to_vec();
        if offsets.first() != Some(&0)
            || offsets.last().copied() != Some(blob.len() as u64)
            || offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(bad("offsets do not match the text blob"));
        }
        let blob = String::from_utf8(blob).map_err(|_| bad("text is not UTF-8"))?;
        if offsets.iter().any(|&o| !blob.is_char_boundary(o as usize)) {
            return Err(bad("an offset splits a character"));
        }
        Ok(DocStore {
            offsets,
            blob,
            lookup: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_open_round_trip() {
        let mut store = DocStore::new();
        let a = store.push("a", "Title α", "text one");
        let b = store.push("b", "", "");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.bin");
        store.save(&path).unwrap();
        let loaded = DocStore::open(&path).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(
            (loaded.id(a), loaded.title(a), loaded.text(a)),
            ("a", "Title α", "text one")
        );
        assert_eq!(loaded.joined(b), "");
        assert_eq!(loaded.doc_id("b"), Some(b));
        assert_eq!(loaded.doc_id("zzz"), None);
        let mut bytes = fs_err::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        fs_err::write(&path, bytes).unwrap();
        assert!(
            DocStore::open(&path)
                .unwrap_err()
                .to_string()
                .contains("offsets do not match")
        );
    }
}
