//! `manifest.json`: what an index folder holds, typed.
//!
//! ```json
//! {
//!   "format": "dredge-index",
//!   "format_version": 1,
//!   "dredge_version": "0.1.0",
//!   "corpus": { "path": "...", "fingerprint": "fnv1a64:...", "documents": 5183, "empty_texts": 0 },
//!   "components": {
//!     "bm25": { "path": "bm25", <dredge-bm25.json: k1, b, analyzer, statistics> },
//!     "dense": { "<name>": { "path": "dense/<name>", <dense.json: similarity, dimension,
//!                count, ann>, "vectors": "<.npy it was built from>" | "encoder": {...} } }
//!   },
//!   "files": { "docs.bin": { "bytes": 7951669, "crc32": "5b0e4a9c" }, ... },
//!   "manifest_checksum": "crc32:1d2e3f40"
//! }
//! ```
//!
//! `files` and `manifest_checksum` (format version 2) are the checksums of every
//! file of the folder and the seal of the manifest itself (see `verify.rs`).
//! Version 1 manifests, written before checksums, are still read: their files are
//! not verified, and the binary warns.
//!
//! Every file that describes a part of an index follows one versioning convention:
//! a `format` naming the file's kind and a `format_version` this dredge compares
//! with the version it reads (`manifest.json`: `dredge-index`; `dredge-bm25.json`:
//! `dredge-bm25`; `dense.json`: `dredge-dense`). Another version is refused with a
//! message that says to rebuild. Keys a component does not know, and components
//! this version does not know, are kept when the manifest is rewritten.

use std::collections::BTreeMap;
use std::path::Path;

use dredge_bm25::Bm25Info;
use dredge_core::Document;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The document table's file name.
pub const DOCS: &str = "docs.bin";
/// The BM25 component's folder.
pub const BM25_DIR: &str = "bm25";
/// The folder holding the dense components, one subfolder each.
pub const DENSE_DIR: &str = "dense";
/// The value of `format` in every index manifest.
pub const FORMAT: &str = "dredge-index";
/// The manifest version this dredge writes (and reads, with
/// [`FIRST_FORMAT_VERSION`]): 2 records every file's checksum and seals the
/// manifest.
pub const FORMAT_VERSION: u32 = 2;
/// The first manifest version, without checksums: still read, unverified.
pub const FIRST_FORMAT_VERSION: u32 = 1;

/// The encoder description a dense component records: the typed
/// `dredge_embed::EncoderDescription` with the `encoder` feature, the raw JSON
/// without it (kept as it is, so that such a build can still rewrite the manifest).
#[cfg(feature = "encoder")]
pub type EncoderInfo = dredge_embed::EncoderDescription;
/// The encoder description a dense component records: the typed
/// `dredge_embed::EncoderDescription` with the `encoder` feature, the raw JSON
/// without it (kept as it is, so that such a build can still rewrite the manifest).
#[cfg(not(feature = "encoder"))]
pub type EncoderInfo = serde_json::Value;

/// `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this dredge.
    pub format_version: u32,
    /// The dredge that built the index.
    pub dredge_version: String,
    /// What was indexed.
    pub corpus: CorpusInfo,
    /// The retrieval structures the index holds.
    pub components: Components,
    /// Which shard of which corpus this index is, when it was built as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// The size and CRC-32 of every file of the folder but this one (format
    /// version 2); `None` in an index built before checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, crate::verify::FileSum>>,
    /// The seal of this file (`crc32:<8 hex digits>`, see `verify.rs`); always
    /// the last key. Written by [`Manifest::save`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_checksum: Option<String>,
}

/// The corpus an index was built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusInfo {
    /// The corpus file as given when building (`<memory>` for documents given by
    /// a program).
    pub path: String,
    /// [`CorpusFingerprint`] of the documents, `fnv1a64:<16 hex digits>`.
    pub fingerprint: String,
    /// Number of documents.
    pub documents: u64,
    /// Documents whose `text` was missing or empty (indexed with their title only).
    pub empty_texts: u64,
}

/// The components of an index, each in its own subfolder.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Components {
    /// The BM25 index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<Bm25Component>,
    /// Dense indexes by name, each in `dense/<name>/`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dense: BTreeMap<String, DenseComponent>,
    /// Components this version does not know, kept as they are.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The BM25 component: its folder and what `dredge-bm25.json` says.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bm25Component {
    /// Folder, relative to the index.
    pub path: String,
    /// Parameters, analyzer and collection statistics.
    #[serde(flatten)]
    pub info: Bm25Info,
}

/// A dense component: its folder, what its `dense.json` says, and where its vectors
/// came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DenseComponent {
    /// What `dense.json` says: similarity, dimension, count, ANN structure.
    #[serde(flatten)]
    pub ann: dredge_ann::Manifest,
    /// Folder, relative to the index.
    pub path: String,
    /// The `.npy` the vectors were read from, when they were given as a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors: Option<String>,
    /// The model that encoded the documents, when one did: queries are encoded
    /// with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderInfo>,
    /// What encoding the documents did (texts, tokens, seconds), as a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded: Option<serde_json::Value>,
    /// Keys this version does not know, kept as they are.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl DenseComponent {
    /// True when searches of this component are always exact (no graph).
    pub fn is_flat(&self) -> bool {
        matches!(self.ann.ann, dredge_ann::Ann::Flat)
    }
}

impl Manifest {
    /// A manifest for a new index of `corpus`, with no component yet.
    pub fn new(corpus: CorpusInfo) -> Self {
        Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            dredge_version: env!("CARGO_PKG_VERSION").to_owned(),
            corpus,
            components: Components::default(),
            shard: None,
            files: None,
            manifest_checksum: None,
        }
    }

    /// Reads and checks `dir/manifest.json`: the format, then its version, then the
    /// fields, each failure a message that says what to do.
    pub fn read(dir: &Path) -> Result<Self> {
        use crate::verify::REBUILD;
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            Error::index(&manifest_path, format!("cannot be read ({e}); {REBUILD}"))
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::index(
                &manifest_path,
                format!("not a dredge index manifest: invalid JSON ({e}); if it is one, {REBUILD}"),
            )
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::index(
                &manifest_path,
                format!(
                    "not a dredge index manifest (no \"format\": \"{FORMAT}\"); if it is one, {REBUILD}"
                ),
            ));
        }
        let version = match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) || v == u64::from(FIRST_FORMAT_VERSION) => v,
            Some(v) => {
                return Err(Error::index(
                    &manifest_path,
                    format!(
                        "index format version {v}, but this dredge ({}) reads versions {FIRST_FORMAT_VERSION} and {FORMAT_VERSION}; rebuild the index with `dredge index`",
                        env!("CARGO_PKG_VERSION")
                    ),
                ));
            }
            None => {
                return Err(Error::index(
                    &manifest_path,
                    format!("no format_version; {REBUILD}"),
                ));
            }
        };
        if version >= 2 {
            match crate::verify::seal_holds(&text) {
                Some(true) => {}
                Some(false) => {
                    return Err(Error::index(
                        &manifest_path,
                        format!(
                            "its bytes changed (its checksum does not match its content); {REBUILD}"
                        ),
                    ));
                }
                None => {
                    return Err(Error::index(
                        &manifest_path,
                        format!("no manifest_checksum (a version 2 manifest has one); {REBUILD}"),
                    ));
                }
            }
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| {
            Error::index(
                &manifest_path,
                format!("malformed manifest: {e}; {REBUILD}"),
            )
        })?;
        if version >= 2 && manifest.files.is_none() {
            return Err(Error::index(
                &manifest_path,
                format!("no file checksums (a version 2 manifest has them); {REBUILD}"),
            ));
        }
        Ok(manifest)
    }

    /// True when the manifest records its files' checksums (format version 2).
    pub fn has_checksums(&self) -> bool {
        self.files.is_some()
    }

    /// Writes `dir/manifest.json` atomically.
    /// A manifest with `files` is sealed (see `verify.rs`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        if self.files.is_none() {
            dredge_core::write_json(path, self)?;
            return Ok(());
        }
        let mut sealed = self.clone();
        sealed.manifest_checksum = Some(crate::verify::SEAL_PLACEHOLDER.to_owned());
        let text = crate::verify::sealed_json(&sealed);
        dredge_core::write_file(&path, |f| {
            use std::io::Write;
            f.write_all(text.as_bytes())
                .map_err(|e| dredge_core::Error::io(&path, e))
        })?;
        Ok(())
    }

    /// Records the size and checksum of every file of the index folder `dir` (but
    /// the manifest), to be written by [`Manifest::save`]. Called when the folder
    /// is complete.
    pub fn record_files(&mut self, dir: &Path) -> Result<()> {
        self.format_version = FORMAT_VERSION;
        self.files = Some(crate::verify::record(dir)?);
        Ok(())
    }
}

/// A fingerprint of a corpus's content: FNV-1a (64 bits) over, for each document
/// in order, its id, `0x1F`, its title, `0x1F`, its text, `0x1E`. Two corpora with
/// the same documents in the same order have the same fingerprint whatever their
/// JSON layout; any change of id, title, text or order changes it (with
/// overwhelming probability). Not a cryptographic hash.
#[derive(Clone, Debug)]
pub struct CorpusFingerprint(u64);

impl Default for CorpusFingerprint {
    fn default() -> Self {
        CorpusFingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl CorpusFingerprint {
    /// The fingerprint of no document.
    pub fn new() -> Self {
        Self::default()
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }

    /// Adds the next document.
    pub fn add(&mut self, doc: &Document) {
        self.bytes(doc.id.as_bytes());
        self.bytes(&[0x1f]);
        self.bytes(doc.title.as_bytes());
        self.bytes(&[0x1f]);
        self.bytes(doc.text.as_bytes());
        self.bytes(&[0x1e]);
    }

    /// `fnv1a64:<16 hex digits>`.
    pub fn finish(&self) -> String {
        format!("fnv1a64:{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, title: &str, text: &str) -> Document {
        Document {
            id: id.into(),
            title: title.into(),
            text: text.into(),
            line: 1,
        }
    }

    #[test]
    fn fingerprint_depends_on_content_and_order() {
        let fp = |docs: &[Document]| {
            let mut f = CorpusFingerprint::new();
            docs.iter().for_each(|d| f.add(d));
            f.finish()
        };
        let (a, b) = (doc("1", "t", "x"), doc("2", "", "y"));
        assert_eq!(fp(&[a.clone(), b.clone()]), fp(&[a.clone(), b.clone()]));
        assert_ne!(fp(&[a.clone(), b.clone()]), fp(&[b.clone(), a.clone()]));
        assert_ne!(fp(&[doc("1", "tx", "")]), fp(&[doc("1", "t", "x")]));
        assert_eq!(fp(&[]), "fnv1a64:cbf29ce484222325");
    }

    #[test]
    fn unknown_keys_and_components_survive_a_rewrite() {
        let text = r#"{
          "format": "dredge-index", "format_version": 1, "dredge_version": "0.1.0",
          "corpus": {"path": "c.jsonl", "fingerprint": "fnv1a64:0", "documents": 2, "empty_texts": 0},
          "components": {
            "dense": {"d": {"format": "dredge-dense", "version": 1, "similarity": "cosine",
                            "dimension": 4, "count": 2, "ann": {"kind": "flat"},
                            "tool": "dredge-ann 0.1.0", "path": "dense/d",
                            "vectors": "v.npy", "future_key": [1, 2]}},
            "sparse": {"path": "sparse", "anything": true}
          }
        }"#;
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(MANIFEST), text).unwrap();
        let manifest = Manifest::read(dir.path()).unwrap();
        let d = &manifest.components.dense["d"];
        assert!(d.is_flat());
        assert_eq!(d.ann.dimension, 4);
        assert_eq!(d.vectors.as_deref(), Some("v.npy"));
        manifest.save(dir.path()).unwrap();
        let again: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(dir.path().join(MANIFEST)).unwrap())
                .unwrap();
        assert_eq!(again["components"]["sparse"]["anything"], true);
        assert_eq!(
            again["components"]["dense"]["d"]["future_key"],
            serde_json::json!([1, 2])
        );
        assert_eq!(again["components"]["dense"]["d"]["similarity"], "cosine");
    }

    #[test]
    fn other_versions_are_refused_with_a_rebuild_hint() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join(MANIFEST),
            r#"{"format": "dredge-index", "format_version": 42}"#,
        )
        .unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("index format version 42") && err.contains("rebuild"),
            "{err}"
        );
        fs_err::write(dir.path().join(MANIFEST), r#"{"format": "other"}"#).unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a dredge index manifest"), "{err}");
    }

    const GOOD: &str = r#"{"format": "dredge-index", "format_version": 1, "dredge_version": "0.1.0",
      "corpus": {"path": "c.jsonl", "fingerprint": "fnv1a64:0", "documents": 2, "empty_texts": 0},
      "components": {"dense": {"d": {"format": "dredge-dense", "version": 1,
        "similarity": "cosine", "dimension": 4, "count": 2, "ann": {"kind": "flat"},
        "tool": "dredge-ann 0.1.0", "path": "dense/d"}}}}"#;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// A damaged manifest (bytes replaced, inserted, removed, cut) reads or
        /// fails naming the file, and the line when the JSON is broken; no panic.
        #[test]
        fn damaged_manifests_fail_naming_the_file(
            edits in proptest::collection::vec(
                (proptest::prelude::any::<proptest::sample::Index>(), 0u8..3, proptest::prelude::any::<u8>()),
                0..6,
            ),
            cut in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let mut bytes = GOOD.as_bytes().to_vec();
            for (at, op, byte) in edits {
                let at = at.index(bytes.len() + 1);
                match op {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(MANIFEST);
            fs_err::write(&path, &bytes).unwrap();
            if let Err(err) = Manifest::read(dir.path()) {
                let message = err.to_string();
                proptest::prop_assert!(message.contains(&path.display().to_string()), "{}", message);
                if message.contains("invalid JSON") {
                    proptest::prop_assert!(message.contains(" line "), "{}", message);
                }
            }
        }
    }
}
