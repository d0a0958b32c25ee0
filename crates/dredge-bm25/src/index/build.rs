//! Building a BM25 folder: the tantivy schema and analyzer, [`Bm25Builder`], and
//! `dredge-bm25.json` ([`Bm25Info`]).

use std::path::{Path, PathBuf};

use dredge_core::{DocId, Id};
use serde::{Deserialize, Serialize};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexWriter, TantivyDocument};

use crate::analyzer::{AnalyzerInfo, EnglishAnalyzer};
use crate::error::{Error, Result};
use crate::lucene::Bm25Params;
use crate::tokenizer::{EnglishTokenizer, TOKENIZER_NAME};

use super::*;

/// What a BM25 folder holds: saved as `dredge-bm25.json` beside tantivy's files,
/// and what an index manifest records about its BM25 component.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bm25Info {
    /// Always [`FORMAT_NAME`] (files of the first release lack it; read as this).
    #[serde(default = "format_name")]
    pub format: String,
    /// Version of the folder layout ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The default `k1` for searches (a search may use another; BM25 parameters
    /// do not change what is indexed).
    pub k1: f32,
    /// The default `b` for searches.
    pub b: f32,
    /// How documents and queries are turned into terms.
    pub analyzer: AnalyzerInfo,
    /// What was indexed: title and text, as one field.
    pub fields: String,
    /// Number of documents.
    pub documents: u64,
    /// Documents with at least one term: Lucene's `docCount`, the `N` of the idf.
    pub documents_with_terms: u64,
    /// Terms indexed, all documents together (Lucene's `sumTotalTermFreq`).
    pub total_terms: u64,
    /// Number of tantivy segments.
    pub segments: usize,
}

/// How to build an index.
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// The default BM25 parameters recorded with the index.
    pub params: Bm25Params,
    /// Indexing threads; 0 means one per available core.
    pub threads: usize,
    /// Memory each indexing thread may fill before it writes a segment, in bytes
    /// (at least 15 MB, tantivy's minimum).
    pub memory_per_thread: usize,
    /// Merge all segments into one at the end (faster searches).
    pub merge: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            params: Bm25Params::default(),
            threads: 0,
            memory_per_thread: 256 << 20,
            merge: true,
        }
    }
}

fn schema() -> (Schema, Field, Field) {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER_NAME)
        .set_index_option(IndexRecordOption::WithFreqs)
        .set_fieldnorms(true);
    let text = builder.add_text_field(
        TEXT_FIELD,
        TextOptions::default().set_indexing_options(indexing),
    );
    let doc = builder.add_u64_field(DOC_FIELD, NumericOptions::default().set_fast());
    (builder.build(), text, doc)
}

pub(super) fn register_tokenizer(index: &Index) {
    index
        .tokenizers()
        .register(TOKENIZER_NAME, EnglishTokenizer::default());
}

/// Builds a BM25 folder: add documents in [`DocId`] order, then
/// [`Bm25Builder::finish`].
///
/// ```
/// use dredge_bm25::{Bm25Builder, BuildOptions};
/// # fn main() -> dredge_bm25::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let mut builder = Bm25Builder::create(dir.path().join("bm25"), &BuildOptions::default())?;
/// builder.add("Sourdough", "A starter of flour and water.")?;
/// let info = builder.finish()?;
/// assert_eq!(info.documents, 1);
/// # Ok(())
/// # }
/// ```
pub struct Bm25Builder {
    dir: PathBuf,
    index: Index,
    writer: IndexWriter,
    text: Field,
    doc: Field,
    options: BuildOptions,
    next: usize,
}

impl Bm25Builder {
    /// Starts an index in `dir`, which must not exist or be empty.
    pub fn create(dir: impl AsRef<Path>, options: &BuildOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        Bm25Params::new(options.params.k1, options.params.b)?;
        fs_err::create_dir_all(&dir)?;
        if fs_err::read_dir(&dir)?.next().is_some() {
            return Err(Error::format(
                &dir,
                "is not empty; a BM25 index is built in a new folder",
            ));
        }
        let (schema, text, doc) = schema();
        let index = Index::create_in_dir(&dir, schema).map_err(|e| Error::tantivy(&dir, e))?;
        register_tokenizer(&index);
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            options.threads
        }
        .min(8);
        let writer_options = tantivy::indexer::IndexWriterOptions::builder()
            .num_worker_threads(threads)
            .memory_budget_per_thread(options.memory_per_thread.max(15 << 20))
            .num_merge_threads(1)
            .build();
        let writer: IndexWriter = index
            .writer_with_options(writer_options)
            .map_err(|e| Error::tantivy(&dir, e))?;
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        Ok(Bm25Builder {
            dir,
            index,
            writer,
            text,
            doc,
            options: *options,
            next: 0,
        })
    }

    /// Adds the next document (title and text are indexed as one field) and
    /// returns its [`DocId`]: 0 for the first document added, then 1, 2, ...
    pub fn add(&mut self, title: &str, text: &str) -> Result<DocId> {
        let doc_id = DocId::from_index(self.next);
        let mut doc = TantivyDocument::new();
        if !title.is_empty() {
            doc.add_text(self.text, title);
        }
        if !text.is_empty() {
            doc.add_text(self.text, text);
        }
        doc.add_u64(self.doc, u64::from(doc_id.0));
        self.writer
            .add_document(doc)
            .map_err(|e| Error::tantivy(&self.dir, e))?;
        self.next += 1;
        Ok(doc_id)
    }

    /// Number of documents added so far.
    pub fn len(&self) -> usize {
        self.next
    }

    /// True when no document has been added.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }

    /// Writes everything, merges segments (if asked), writes `dredge-bm25.json`,
    /// and returns what the folder holds.
    pub fn finish(mut self) -> Result<Bm25Info> {
        let dir = self.dir.clone();
        let tantivy_err = |e| Error::tantivy(&dir, e);
        self.writer.commit().map_err(tantivy_err)?;
        if self.options.merge {
            let segments = self.index.searchable_segment_ids().map_err(tantivy_err)?;
            if segments.len() > 1 {
                self.writer.merge(&segments).wait().map_err(tantivy_err)?;
            }
        }
        self.writer.wait_merging_threads().map_err(tantivy_err)?;
        let provisional = Bm25Info {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            k1: self.options.params.k1,
            b: self.options.params.b,
            analyzer: EnglishAnalyzer::info(),
            fields: "title + text".to_owned(),
            documents: self.next as u64,
            documents_with_terms: 0,
            total_terms: 0,
            segments: 0,
        };
        let loaded = Bm25Index::load(&dir, provisional)?;
        loaded.info.save(&dir)?;
        Ok(loaded.info)
    }
}

fn format_name() -> String {
    FORMAT_NAME.to_owned()
}

impl Bm25Info {
    /// Reads `dir/dredge-bm25.json`, checking that this version can read the folder.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(INFO_FILE);
        if !path.is_file() {
            return Err(Error::format(
                dir,
                format!("not a dredge BM25 index: it has no {INFO_FILE}"),
            ));
        }
        let text = fs_err::read_to_string(&path)?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("invalid JSON: {e}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(Error::format(
                    &path,
                    format!(
                        "BM25 format version {v}; this dredge reads version {FORMAT_VERSION} (rebuild the index)"
                    ),
                ));
            }
            None => return Err(Error::format(&path, "no `format_version`")),
        }
        let info: Bm25Info =
            serde_json::from_value(value).map_err(|e| Error::format(&path, e.to_string()))?;
        if info.format != FORMAT_NAME {
            return Err(Error::format(
                &path,
                format!("format `{}` is not `{FORMAT_NAME}`", info.format),
            ));
        }
        if info.analyzer.name != EnglishAnalyzer::NAME
            || info.analyzer.version != EnglishAnalyzer::VERSION
        {
            return Err(Error::format(
                &path,
                format!(
                    "built with analyzer {} v{}; this dredge has {} v{} (rebuild the index)",
                    info.analyzer.name,
                    info.analyzer.version,
                    EnglishAnalyzer::NAME,
                    EnglishAnalyzer::VERSION
                ),
            ));
        }
        Ok(info)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        Ok(dredge_core::write_json(dir.join(INFO_FILE), self)?)
    }
}
