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
//! Opening maps the file and checks its header and offsets (24 bytes a document),
//! not the strings: a field is read, and checked as UTF-8, when it is asked for, so
//! one query on a million-document index touches a few pages of it. A field that
//! is not UTF-8 (a damaged file) reads as U+FFFD instead.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use crate::atomic::write_file;
use crate::error::{Error, Result};
use crate::ids::{DocId, Id};

const MAGIC: &[u8; 8] = b"DRDOCS\0\x01";

/// Bytes before the offsets: the magic and the count.
const HEADER: usize = 16;

/// What a field that is not UTF-8 reads as.
const DAMAGED: &str = "\u{FFFD}";

/// Ids, titles and texts of the indexed documents.
#[derive(Debug)]
pub struct DocStore {
    storage: Storage,
    lookup: OnceLock<HashMap<Box<str>, DocId>>,
}

#[derive(Debug)]
enum Storage {
    /// Built with [`DocStore::push`].
    Owned {
        /// `3n + 1` byte offsets into `blob`: id, title, text of each document.
        offsets: Vec<u64>,
        blob: String,
    },
    /// A `docs.bin` mapped by [`DocStore::open`], offsets checked, strings not.
    Mapped { map: memmap2::Mmap, count: usize },
    /// Stores one after another ([`DocStore::concat`]): `starts[i]` is the
    /// [`DocId`] of part `i`'s first document, `starts[parts.len()]` the total.
    Concat {
        parts: Vec<DocStore>,
        starts: Vec<usize>,
    },
}

impl Default for DocStore {
    fn default() -> Self {
        Self::new()
    }
}

impl DocStore {
    /// An empty store.
    pub fn new() -> Self {
        DocStore {
            storage: Storage::Owned {
                offsets: vec![0],
                blob: String::new(),
            },
            lookup: OnceLock::new(),
        }
    }

    /// The documents of `parts` one after another, as one store: document `j` of
    /// part `i` is `DocId(len(parts before i) + j)`. The parts stay as they are
    /// (memory-mapped ones stay mapped). A sharded index's documents.
    pub fn concat(parts: Vec<DocStore>) -> Result<Self> {
        let mut starts = Vec::with_capacity(parts.len() + 1);
        let mut total = 0usize;
        for part in &parts {
            starts.push(total);
            total += part.len();
        }
        starts.push(total);
        if total > u32::MAX as usize {
            return Err(Error::Invalid(format!(
                "{total} documents: more than a DocId can number"
            )));
        }
        Ok(DocStore {
            storage: Storage::Concat { parts, starts },
            lookup: OnceLock::new(),
        })
    }

    /// Appends a document and returns its id. The caller keeps ids unique (the
    /// corpus reader does). A store read with [`DocStore::open`], or made by
    /// [`DocStore::concat`], is first copied into memory.
    pub fn push(&mut self, id: &str, title: &str, text: &str) -> DocId {
        let doc = DocId::from_index(self.len());
        if !matches!(self.storage, Storage::Owned { .. }) {
            let mut offsets = vec![0];
            let mut blob = String::new();
            for doc in self.doc_ids() {
                for field in 0..3 {
                    blob.push_str(self.field(doc, field));
                    offsets.push(blob.len() as u64);
                }
            }
            self.storage = Storage::Owned { offsets, blob };
        }
        if let Storage::Owned { offsets, blob } = &mut self.storage {
            for s in [id, title, text] {
                blob.push_str(s);
                offsets.push(blob.len() as u64);
            }
        }
        self.lookup = OnceLock::new();
        doc
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Owned { offsets, .. } => (offsets.len().max(1) - 1) / 3,
            Storage::Mapped { count, .. } => *count,
            Storage::Concat { starts, .. } => *starts.last().expect("one start at least"),
        }
    }

    /// True when there are no documents.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn field(&self, doc: DocId, field: usize) -> &str {
        let i = doc.index() * 3 + field;
        match &self.storage {
            Storage::Owned { offsets, blob } => &blob[offsets[i] as usize..offsets[i + 1] as usize],
            Storage::Mapped { map, count } => {
                assert!(doc.index() < *count, "document {doc} of a store of {count}");
                // `open` checked that the offsets rise and end at the end of the
                // file, so this slice is in bounds; its bytes may still be damaged.
                let offset = |k: usize| {
                    let at = HEADER + 8 * k;
                    u64::from_le_bytes(map[at..at + 8].try_into().expect("8 bytes")) as usize
                };
                let blob = HEADER + 8 * (3 * count + 1);
                map.get(blob + offset(i)..blob + offset(i + 1))
                    .and_then(|bytes| simdutf8::basic::from_utf8(bytes).ok())
                    .unwrap_or(DAMAGED)
            }
            Storage::Concat { parts, starts } => {
                let part = starts.partition_point(|&s| s <= doc.index()) - 1;
                parts[part].field(DocId::from_index(doc.index() - starts[part]), field)
            }
        }
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

    /// The first document with a field that is not UTF-8 (which reads as U+FFFD),
    /// checking every field: `None` when all are sound. Reads the whole table.
    pub fn first_damaged_field(&self) -> Option<DocId> {
        match &self.storage {
            Storage::Owned { .. } => None,
            Storage::Mapped { map, count } => {
                let blob = HEADER + 8 * (3 * count + 1);
                let offset = |k: usize| {
                    let at = HEADER + 8 * k;
                    u64::from_le_bytes(map[at..at + 8].try_into().expect("8 bytes")) as usize
                };
                (0..3 * count)
                    .find(|&i| {
                        map.get(blob + offset(i)..blob + offset(i + 1))
                            .is_none_or(|bytes| simdutf8::basic::from_utf8(bytes).is_err())
                    })
                    .map(|i| DocId::from_index(i / 3))
            }
            Storage::Concat { parts, starts } => {
                parts.iter().zip(starts).find_map(|(p, &start)| {
                    p.first_damaged_field()
                        .map(|d| DocId::from_index(start + d.index()))
                })
            }
        }
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
            match &self.storage {
                // Already in this format, header and all.
                Storage::Mapped { map, .. } => f.write_all(map).map_err(io),
                Storage::Concat { .. } => Err(Error::Invalid(
                    "a store made of parts is saved part by part".into(),
                )),
                Storage::Owned { offsets, blob } => {
                    f.write_all(MAGIC).map_err(io)?;
                    f.write_all(&(self.len() as u64).to_le_bytes())
                        .map_err(io)?;
                    let offsets: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
                    f.write_all(&offsets).map_err(io)?;
                    f.write_all(blob.as_bytes()).map_err(io)
                }
            }
        })
    }

    /// Opens a store written by [`DocStore::save`]: maps it and checks its header
    /// and offsets (see the module documentation).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = fs_err::File::open(path)?;
        // SAFETY: the map is only read. Index files are written under another name
        // and renamed into place, so rebuilding an index never changes a mapped
        // file; if something else truncates it, reading may fault (SIGBUS), the
        // accepted risk of mapping files (as ripgrep and tantivy do). Changed bytes
        // cannot break memory safety: every field is checked as UTF-8 when read.
        let map = unsafe { memmap2::Mmap::map(file.file()) }.map_err(|e| Error::io(path, e))?;
        let count = check(&map)
            .map_err(|m| Error::format(path, format!("not a dredge document table: {m}")))?;
        Ok(DocStore {
            storage: Storage::Mapped { map, count },
            lookup: OnceLock::new(),
        })
    }
}

/// Checks the header and offsets of a `docs.bin`; gives the document count, or
/// what is wrong.
fn check(bytes: &[u8]) -> std::result::Result<usize, String> {
    if bytes.len() < HEADER || bytes[..6] != MAGIC[..6] {
        return Err("wrong magic".into());
    }
    if bytes[7] != MAGIC[7] {
        return Err(format!(
            "format version {} (this dredge reads {})",
            bytes[7], MAGIC[7]
        ));
    }
    let n = u64::from_le_bytes(bytes[8..HEADER].try_into().expect("8 bytes"));
    let count = usize::try_from(n)
        .ok()
        .filter(|&n| n <= u32::MAX as usize)
        .ok_or_else(|| format!("bad count {n}"))?;
    let blob_start = count
        .checked_mul(3)
        .and_then(|x| x.checked_add(1))
        .and_then(|x| x.checked_mul(8))
        .and_then(|x| x.checked_add(HEADER))
        .filter(|&end| end <= bytes.len())
        .ok_or("truncated offsets")?;
    let blob_len = (bytes.len() - blob_start) as u64;
    let offsets = bytes[HEADER..blob_start]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
    // Rising from 0 to the end of the file: every field is a slice of the blob.
    let mut last = 0;
    for (k, offset) in offsets.enumerate() {
        if offset < last || (k == 0 && offset != 0) {
            return Err("offsets do not match the text blob".into());
        }
        last = offset;
    }
    if last != blob_len {
        return Err("offsets do not match the text blob".into());
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DocStore {
        let mut store = DocStore::new();
        store.push("a", "Title α", "text one");
        store.push("b", "", "");
        store.push("c", "t", "ü");
        store
    }

    fn every_field(store: &DocStore) -> Vec<&str> {
        store
            .doc_ids()
            .flat_map(|d| [store.id(d), store.title(d), store.text(d)])
            .collect()
    }

    #[test]
    fn concat_numbers_parts_one_after_another() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = DocStore::new();
        first.push("a", "", "one");
        first.push("b", "Tb", "two");
        first.save(dir.path().join("first.bin")).unwrap();
        let mut last = DocStore::new();
        last.push("c", "Tc", "three");
        let store = DocStore::concat(vec![
            DocStore::open(dir.path().join("first.bin")).unwrap(),
            DocStore::new(),
            last,
        ])
        .unwrap();
        assert_eq!(store.len(), 3);
        let ids: Vec<&str> = store.doc_ids().map(|d| store.id(d)).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(store.title(DocId(2)), "Tc");
        assert_eq!(store.text(DocId(1)), "two");
        assert_eq!(store.doc_id("c"), Some(DocId(2)));
        assert_eq!(store.doc_id("z"), None);
        let mut copy = store;
        assert_eq!(copy.push("d", "", "four"), DocId(3));
        assert_eq!(copy.text(DocId(0)), "one");
    }

    #[test]
    fn save_open_round_trip() {
        let store = sample();
        let (a, b) = (DocId(0), DocId(1));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.bin");
        store.save(&path).unwrap();
        let loaded = DocStore::open(&path).unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(
            (loaded.id(a), loaded.title(a), loaded.text(a)),
            ("a", "Title α", "text one")
        );
        assert_eq!(loaded.joined(b), "");
        assert_eq!(loaded.doc_id("b"), Some(b));
        assert_eq!(loaded.doc_id("zzz"), None);
        assert_eq!(every_field(&loaded), every_field(&store));
        let mut bytes = fs_err::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        fs_err::write(&path, bytes).unwrap();
        let err = DocStore::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("docs.bin: not a dredge document table: offsets do not match"),
            "{err}"
        );
    }

    #[test]
    fn opened_stores_save_and_grow() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("1.bin"), dir.path().join("2.bin"));
        sample().save(&first).unwrap();
        let mut opened = DocStore::open(&first).unwrap();
        opened.save(&second).unwrap();
        assert_eq!(
            fs_err::read(&first).unwrap(),
            fs_err::read(&second).unwrap()
        );
        assert_eq!(opened.doc_id("c"), Some(DocId(2)));
        let d = opened.push("d", "new", "doc");
        assert_eq!((d, opened.len(), opened.text(DocId(2))), (DocId(3), 4, "ü"));
        assert_eq!(opened.doc_id("d"), Some(d));
        assert!(DocStore::default().is_empty());
    }

    #[test]
    fn damaged_files_are_refused_or_read_without_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.bin");
        sample().save(&path).unwrap();
        let good = fs_err::read(&path).unwrap();
        let open = |bytes: &[u8]| {
            fs_err::write(&path, bytes).unwrap();
            DocStore::open(&path)
        };
        let refused = |bytes: &[u8], why: &str| {
            let err = open(bytes).unwrap_err().to_string();
            assert!(
                err.contains("docs.bin: not a dredge document table: ") && err.contains(why),
                "{err}"
            );
        };
        refused(b"", "wrong magic");
        refused(&good[..15], "wrong magic");
        let mut v2 = good.clone();
        v2[7] = 2;
        refused(&v2, "format version 2 (this dredge reads 1)");
        let mut count = good.clone();
        count[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        refused(&count, "bad count");
        count[8..16].copy_from_slice(&1000u64.to_le_bytes());
        refused(&count, "truncated offsets");
        let mut falling = good.clone();
        falling[HEADER + 8..HEADER + 16].copy_from_slice(&1000u64.to_le_bytes());
        refused(&falling, "offsets do not match");
        // A text byte that is not UTF-8: the file opens, that field reads as U+FFFD.
        let mut bad_text = good.clone();
        let at = good.len() - 1;
        bad_text[at] = 0xff;
        let store = open(&bad_text).unwrap();
        assert_eq!((store.id(DocId(2)), store.text(DocId(2))), ("c", DAMAGED));
    }

    proptest::proptest! {
        #[test]
        fn any_damage_opens_or_fails_cleanly(
            cut in 0usize..200,
            flips in proptest::collection::vec((0usize..200, proptest::num::u8::ANY), 0..4),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("docs.bin");
            sample().save(&path).unwrap();
            let mut bytes = fs_err::read(&path).unwrap();
            for (at, byte) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            bytes.truncate(cut.min(bytes.len()));
            fs_err::write(&path, &bytes).unwrap();
            if let Ok(store) = DocStore::open(&path) {
                let _ = every_field(&store);
                let _ = store.doc_id("a");
            }
        }
    }
}
