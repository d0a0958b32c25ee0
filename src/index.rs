//! The index folder: what `dredge index` writes and `dredge search` reads.
//!
//! ```text
//! INDEX/
//!   manifest.json   format, versions, corpus fingerprint, components (this module)
//!   docs.bin        ids, titles and texts by DocId (dredge_core::DocStore)
//!   bm25/           tantivy files + dredge-bm25.json (dredge_bm25)
//!   dense/<name>/   dense.json + vectors.bin (flat) or hnsw.bin (HNSW, rows included) (dredge_ann::DenseIndex)
//! ```
//!
//! `manifest.json`:
//!
//! ```json
//! {
//!   "format": "dredge-index",
//!   "format_version": 1,
//!   "dredge_version": "0.1.0",
//!   "corpus": { "path": "...", "fingerprint": "fnv1a64:...", "documents": 5183, "empty_texts": 0 },
//!   "components": {
//!     "bm25": { "path": "bm25", "k1": 0.9, "b": 0.4, "analyzer": { ... }, ... },
//!     "dense": { "<name>": { "path": "dense/<name>", ... } }
//!   }
//! }
//! ```
//!
//! A folder is built under a temporary name ([`dredge_core::StagingDir`]) and
//! renamed when whole, so a folder with a manifest is complete. DocIds are the
//! order in which the corpus was read: line order of `corpus.jsonl`.
//!
//! Adding a component to an existing index: write its files into a new
//! subfolder, then [`IndexDir::update_manifest`] to record it (the manifest is
//! rewritten atomically). Components this version does not know are kept as
//! they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use dredge_bm25::{Bm25Index, Bm25Info};
use dredge_core::{DocStore, Document};
use serde::{Deserialize, Serialize};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The document table's file name.
pub const DOCS: &str = "docs.bin";
/// The BM25 component's folder.
pub const BM25_DIR: &str = "bm25";
/// The folder holding the dense components, one subfolder each.
pub const DENSE_DIR: &str = "dense";
/// The value of `format` in every manifest.
pub const FORMAT: &str = "dredge-index";
/// The manifest version this dredge writes and reads.
pub const FORMAT_VERSION: u32 = 1;

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
}

/// The corpus an index was built from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CorpusInfo {
    /// The corpus file, as given when building.
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
    pub dense: BTreeMap<String, serde_json::Value>,
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

impl Manifest {
    /// A manifest for a new index of `corpus`, with no component yet.
    pub fn new(corpus: CorpusInfo) -> Self {
        Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            dredge_version: env!("CARGO_PKG_VERSION").to_owned(),
            corpus,
            components: Components::default(),
        }
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        dredge_core::write_json(dir.join(MANIFEST), self)?;
        Ok(())
    }
}

/// An index folder whose manifest has been read and checked.
#[derive(Debug)]
pub struct IndexDir {
    path: PathBuf,
    manifest: Manifest,
}

impl IndexDir {
    /// Opens `path`, checking that it is a dredge index this version can read.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            bail!(
                "{}: no such index (build one with `dredge index --corpus CORPUS --out {}`)",
                path.display(),
                path.display()
            );
        }
        if !path.is_dir() {
            bail!("{}: is a file, not an index folder", path.display());
        }
        let manifest_path = path.join(MANIFEST);
        if !manifest_path.is_file() {
            bail!(
                "{}: not a dredge index: it has no {MANIFEST} (build one with `dredge index --corpus CORPUS --out {}`)",
                path.display(),
                path.display()
            );
        }
        let text = fs_err::read_to_string(&manifest_path)?;
        let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a dredge index manifest: invalid JSON",
                manifest_path.display()
            )
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            bail!(
                "{}: not a dredge index manifest (no \"format\": \"{FORMAT}\")",
                manifest_path.display()
            );
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => bail!(
                "{}: index format version {v}, but this dredge ({}) reads version {FORMAT_VERSION}; rebuild the index with `dredge index`",
                manifest_path.display(),
                env!("CARGO_PKG_VERSION")
            ),
            None => bail!("{}: no format_version", manifest_path.display()),
        }
        let manifest: Manifest = serde_json::from_value(value)
            .with_context(|| format!("{}: malformed manifest", manifest_path.display()))?;
        Ok(IndexDir {
            path: path.to_path_buf(),
            manifest,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest.
    #[allow(dead_code)]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Loads the document table, checking it against the manifest.
    pub fn docs(&self) -> anyhow::Result<DocStore> {
        let docs = DocStore::open(self.path.join(DOCS))?;
        if docs.len() as u64 != self.manifest.corpus.documents {
            bail!(
                "{}: holds {} documents but the manifest says {}; the index is damaged (rebuild it)",
                self.path.join(DOCS).display(),
                docs.len(),
                self.manifest.corpus.documents
            );
        }
        Ok(docs)
    }

    /// Opens the BM25 component.
    pub fn bm25(&self) -> anyhow::Result<Bm25Index> {
        let Some(component) = &self.manifest.components.bm25 else {
            bail!("{}: this index has no BM25 component", self.path.display());
        };
        let index = Bm25Index::open(self.path.join(&component.path))?;
        if index.len() as u64 != self.manifest.corpus.documents {
            bail!(
                "{}: the BM25 index holds {} documents but the manifest says {}; rebuild the index",
                self.path.display(),
                index.len(),
                self.manifest.corpus.documents
            );
        }
        Ok(index)
    }

    /// True when the index has a BM25 component.
    pub fn has_bm25(&self) -> bool {
        self.manifest.components.bm25.is_some()
    }

    /// True when the index has at least one dense component.
    pub fn has_dense(&self) -> bool {
        !self.manifest.components.dense.is_empty()
    }

    /// The manifest entry of dense component `name`, or of the only one when `name`
    /// is `None`, with its name.
    pub fn dense_entry(&self, name: Option<&str>) -> anyhow::Result<(&str, &serde_json::Value)> {
        let components = &self.manifest.components.dense;
        let names = || components.keys().cloned().collect::<Vec<_>>().join(", ");
        let (name, entry) = match name {
            Some(name) => match components.get_key_value(name) {
                Some(found) => found,
                None if components.is_empty() => bail!(
                    "{}: this index has no dense component (build one with `dredge index --model DIR`, or `--vectors V.npy --vector-ids IDS`)",
                    self.path.display()
                ),
                None => bail!(
                    "{}: no dense component `{name}` (it has: {})",
                    self.path.display(),
                    names()
                ),
            },
            None => match components.len() {
                1 => components.iter().next().expect("one component"),
                0 => bail!(
                    "{}: this index has no dense component (build one with `dredge index --model DIR`, or `--vectors V.npy --vector-ids IDS`)",
                    self.path.display()
                ),
                _ => bail!(
                    "{}: several dense components ({}); pick one with --dense-name",
                    self.path.display(),
                    names()
                ),
            },
        };
        Ok((name.as_str(), entry))
    }

    /// Opens the dense component `name`, or the only one when `name` is `None`.
    pub fn dense(&self, name: Option<&str>) -> anyhow::Result<dredge_ann::DenseIndex> {
        let (name, entry) = self.dense_entry(name)?;
        let Some(path) = entry.get("path").and_then(|p| p.as_str()) else {
            bail!(
                "{}: the dense component `{name}` has no path in the manifest",
                self.path.display()
            );
        };
        let dense = dredge_ann::DenseIndex::open(self.path.join(path))?;
        if dense.len() as u64 != self.manifest.corpus.documents {
            bail!(
                "{}: the dense component `{name}` holds {} vectors but the manifest says {} documents; rebuild the index",
                self.path.display(),
                dense.len(),
                self.manifest.corpus.documents
            );
        }
        Ok(dense)
    }

    /// Changes the manifest and rewrites it atomically (to record a new component).
    #[allow(dead_code)]
    pub fn update_manifest(&mut self, change: impl FnOnce(&mut Manifest)) -> anyhow::Result<()> {
        change(&mut self.manifest);
        self.manifest.save(&self.path)
    }
}

/// True when `path` is an existing folder holding a dredge manifest (and so may be
/// replaced by `--overwrite`).
pub fn is_index(path: &Path) -> bool {
    path.join(MANIFEST).is_file()
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
}
