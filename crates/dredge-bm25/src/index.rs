//! Building a BM25 index with tantivy, and searching it with our own Lucene-exact
//! scorer over tantivy's postings and fieldnorms.
//!
//! A BM25 folder holds tantivy's files and `dredge-bm25.json` ([`Bm25Info`]). The
//! tantivy schema has two fields: `text` (title and text of a document, analyzed
//! by [`EnglishAnalyzer`], indexed with term frequencies and fieldnorms, not
//! stored) and `doc` (the document's [`DocId`], a fast field), so documents may
//! land in any segment in any order and still map back to their [`DocId`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dredge_core::{DocId, Hit, Id, QueryInput, Retriever, Score, TopK, best_of_keys, rank_key};
use serde::{Deserialize, Serialize};
use tantivy::index::InvertedIndexReader;
use tantivy::postings::BlockSegmentPostings;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{DocSet, Index, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::analyzer::{AnalyzerInfo, EnglishAnalyzer};
use crate::cache::{TermCache, TermPostings};
use crate::error::{Error, Result};
use crate::lucene::{Bm25Params, NormCache, avg_length, idf, term_score};
use crate::tokenizer::{EnglishTokenizer, TOKENIZER_NAME};

/// The name of the file, inside a BM25 folder, that describes it.
pub const INFO_FILE: &str = "dredge-bm25.json";
/// The `format` of `dredge-bm25.json`.
pub const FORMAT_NAME: &str = "dredge-bm25";
/// The version of the BM25 folder layout this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const TEXT_FIELD: &str = "text";
/// Postings per tantivy block.
const BLOCK: usize = 128;
/// Up to this `k`, top-k selection uses a heap; above, select-then-sort.
const HEAP_MAX_K: usize = 64;
/// Accumulators per run in the small-`k` scan; the accumulator is padded to a
/// whole number of runs.
const LANES: usize = 16;
const DOC_FIELD: &str = "doc";
/// The default budget of the term cache (see [`Bm25Index::with_cache_bytes`]).
const DEFAULT_CACHE_BYTES: usize = 256 << 20;

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

fn register_tokenizer(index: &Index) {
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

/// One tantivy segment, as the scorer sees it.
struct SegmentData {
    /// Global ordinal of the segment's first document.
    base: u32,
    /// Number of documents in the segment.
    len: u32,
    inverted: Arc<InvertedIndexReader>,
}

/// Per-query working memory, pooled and reused so that a search allocates nothing
/// per document.
struct Scratch {
    analyzer: EnglishAnalyzer,
    /// The query's terms, one after another.
    text: String,
    /// Each term's byte range in `text`, in query order.
    spans: Vec<(u32, u32)>,
    /// The distinct terms in term order: byte range in `text` and boost.
    query: Vec<(u32, u32, f32)>,
    /// Score accumulator by global ordinal; all zero between queries.
    acc: Vec<f32>,
    /// Ordinals with a non-zero accumulator (sparse queries only).
    touched: Vec<u32>,
    top: TopK,
    /// Candidate keys for large `k` (see [`Bm25Index::select`]).
    candidates: Vec<u64>,
    /// The best accumulator of each run of them, and the positive ones among
    /// those (small `k`, dense queries).
    maxima: Vec<f32>,
    spare: Vec<f32>,
    /// A postings cursor, reset for each term (it reads term frequencies).
    block: Option<BlockSegmentPostings>,
}

/// A BM25 index opened for search: [`Retriever`] named `bm25`.
///
/// Scores are Lucene's (see the crate docs) with the index's `k1`/`b` or those
/// given to [`Bm25Index::with_params`]. Searching is exhaustive (every document
/// sharing a term with the query is scored, term at a time into a dense
/// accumulator) and exact; ties are broken by lower [`DocId`].
pub struct Bm25Index {
    dir: PathBuf,
    info: Bm25Info,
    params: Bm25Params,
    _searcher: Searcher,
    text: Field,
    segments: Vec<SegmentData>,
    /// Norm byte by global ordinal.
    norms: Vec<u8>,
    /// `cache[norm]` by global ordinal: one load per posting instead of two.
    inverse: Vec<f32>,
    /// [`DocId`] by global ordinal.
    doc_of: Vec<DocId>,
    /// Global ordinal by [`DocId`].
    ordinal_of: Vec<u32>,
    cache: NormCache,
    /// Terms met by searches, with their postings decoded and scored.
    terms: TermCache,
    pool: Mutex<Vec<Scratch>>,
}

impl std::fmt::Debug for Bm25Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25Index")
            .field("dir", &self.dir)
            .field("info", &self.info)
            .field("params", &self.params)
            .finish()
    }
}

impl Bm25Index {
    /// Opens the BM25 folder `dir` with its recorded parameters.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let info = Bm25Info::read(dir)?;
        let index = Self::load(dir, info.clone())?;
        if index.info.documents_with_terms != info.documents_with_terms
            || index.info.total_terms != info.total_terms
        {
            return Err(Error::format(
                dir,
                format!("{INFO_FILE} does not match the index files (rebuild the index)"),
            ));
        }
        Ok(index)
    }

    fn load(dir: &Path, mut info: Bm25Info) -> Result<Self> {
        let tantivy_err = |e| Error::tantivy(dir, e);
        let index = Index::open_in_dir(dir).map_err(tantivy_err)?;
        register_tokenizer(&index);
        let schema = index.schema();
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| Error::format(dir, format!("the index has no `{name}` field")))
        };
        let text = field(TEXT_FIELD)?;
        field(DOC_FIELD)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_err)?;
        let searcher = reader.searcher();
        let total = searcher.num_docs();
        if total != info.documents {
            return Err(Error::format(
                dir,
                format!(
                    "holds {total} documents but {INFO_FILE} says {} (rebuild the index)",
                    info.documents
                ),
            ));
        }
        let n = usize::try_from(total).map_err(|_| Error::format(dir, "too many documents"))?;
        let mut segments = Vec::new();
        let mut norms = Vec::with_capacity(n);
        let mut doc_of = Vec::with_capacity(n);
        let mut ordinal_of = vec![u32::MAX; n];
        let mut total_terms = 0u64;
        for segment in searcher.segment_readers() {
            if segment.has_deletes() {
                return Err(Error::format(
                    dir,
                    "a segment has deleted documents; dredge never deletes (rebuild the index)",
                ));
            }
            let base = norms.len() as u32;
            let len = segment.max_doc();
            let inverted = segment.inverted_index(text).map_err(tantivy_err)?;
            total_terms += inverted.total_num_tokens();
            let fieldnorms = segment.get_fieldnorms_reader(text).map_err(tantivy_err)?;
            let ids = segment.fast_fields().u64(DOC_FIELD).map_err(tantivy_err)?;
            for local in 0..len {
                norms.push(fieldnorms.fieldnorm_id(local));
                let id = ids
                    .first(local)
                    .ok_or_else(|| Error::format(dir, "a document has no id"))?;
                let slot = usize::try_from(id).ok().and_then(|i| ordinal_of.get_mut(i));
                match slot {
                    Some(slot) if *slot == u32::MAX => *slot = base + local,
                    _ => {
                        return Err(Error::format(
                            dir,
                            format!("document id {id} is out of range or repeated"),
                        ));
                    }
                }
                doc_of.push(DocId(id as u32));
            }
            segments.push(SegmentData {
                base,
                len,
                inverted,
            });
        }
        info.documents_with_terms = norms.iter().filter(|&&n| n > 0).count() as u64;
        info.total_terms = total_terms;
        info.segments = segments.len();
        let params = Bm25Params {
            k1: info.k1,
            b: info.b,
        };
        let cache = NormCache::new(
            params,
            avg_length(info.total_terms, info.documents_with_terms),
        );
        let inverse = cache.per_document(&norms);
        Ok(Bm25Index {
            dir: dir.to_path_buf(),
            info,
            params,
            _searcher: searcher,
            text,
            segments,
            norms,
            inverse,
            doc_of,
            ordinal_of,
            cache,
            terms: TermCache::new(DEFAULT_CACHE_BYTES),
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The same index searched with other BM25 parameters.
    pub fn with_params(mut self, params: Bm25Params) -> Result<Self> {
        let params = Bm25Params::new(params.k1, params.b)?;
        self.params = params;
        self.cache = NormCache::new(
            params,
            avg_length(self.info.total_terms, self.info.documents_with_terms),
        );
        self.inverse = self.cache.per_document(&self.norms);
        self.terms = TermCache::new(self.terms.budget());
        Ok(self)
    }

    /// The same index with a term cache of at most about `bytes` (the default is
    /// 256 MiB). A search keeps each term it meets: where its postings are and,
    /// while the budget lasts, the postings decoded with their scores (8 bytes a
    /// posting), so that later searches with the term skip the term dictionary, the
    /// decoding and the score arithmetic. Results do not depend on it; 0 turns it off.
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.terms = TermCache::new(bytes);
        self
    }

    /// The parameters searches use.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// What the folder holds (with the parameters it was built with).
    pub fn info(&self) -> &Bm25Info {
        &self.info
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.doc_of.len()
    }

    /// True when the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.doc_of.is_empty()
    }

    /// The terms of `text` as the index sees them.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        EnglishAnalyzer::new().terms(text)
    }

    /// The best `k` documents for the query text, best first. A query with no
    /// indexed term (empty, only stop words, unknown words) returns no hits.
    pub fn search_text(&self, text: &str, k: usize) -> Result<Vec<Hit>> {
        let mut scratch = self.take_scratch();
        let result = self.search_with(&mut scratch, text, k);
        self.give_back(scratch);
        result
    }

    /// The BM25 score of each of `docs` for the query text (0 for a document
    /// sharing no term with it), equal to the score [`Bm25Index::search_text`]
    /// gives it.
    pub fn score_text(&self, text: &str, docs: &[DocId]) -> Result<Vec<Score>> {
        let mut scratch = self.take_scratch();
        let result = self.score_with(&mut scratch, text, docs);
        self.give_back(scratch);
        result
    }

    fn take_scratch(&self) -> Scratch {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| Scratch {
            analyzer: EnglishAnalyzer::new(),
            text: String::new(),
            spans: Vec::new(),
            query: Vec::new(),
            acc: vec![0.0; self.len().next_multiple_of(LANES)],
            touched: Vec::new(),
            top: TopK::new(0),
            candidates: Vec::new(),
            maxima: Vec::new(),
            spare: Vec::new(),
            block: None,
        })
    }

    fn give_back(&self, scratch: Scratch) {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(scratch);
    }

    /// Analyzes the query into its distinct terms, in term order, with Anserini's
    /// weighting: a term occurring `c` times in the query has boost `c`.
    fn analyze_query(scratch: &mut Scratch, text: &str) {
        let Scratch {
            analyzer,
            text: arena,
            spans,
            query,
            ..
        } = scratch;
        arena.clear();
        spans.clear();
        query.clear();
        analyzer.analyze(text, |t| {
            let start = arena.len() as u32;
            arena.push_str(t);
            spans.push((start, arena.len() as u32));
        });
        let term = |&(s, e): &(u32, u32)| &arena[s as usize..e as usize];
        spans.sort_unstable_by(|a, b| term(a).cmp(term(b)));
        let mut i = 0;
        while i < spans.len() {
            let mut j = i + 1;
            while j < spans.len() && term(&spans[j]) == term(&spans[i]) {
                j += 1;
            }
            query.push((spans[i].0, spans[i].1, (j - i) as f32));
            i = j;
        }
    }

    /// Looks a term up in every segment's term dictionary and, if the cache has
    /// room for them, decodes its postings with their scores at boost 1.
    fn lookup(&self, scratch: &mut Scratch, term: &str) -> Result<Option<TermPostings>> {
        let key = Term::from_field_text(self.text, term);
        let mut infos = Vec::new();
        let mut doc_freq = 0u64;
        for (s, segment) in self.segments.iter().enumerate() {
            if let Some(info) = segment.inverted.get_term_info(&key)? {
                doc_freq += u64::from(info.doc_freq);
                infos.push((s, info));
            }
        }
        if doc_freq == 0 {
            return Ok(None);
        }
        let idf = idf(doc_freq, self.info.documents_with_terms);
        let mut postings = TermPostings {
            infos: infos.into(),
            doc_freq,
            idf,
            ordinals: Box::new([]),
            scores: Box::new([]),
        };
        if self.terms.fits(doc_freq) {
            let n = doc_freq as usize;
            let mut ordinals = Vec::with_capacity(n);
            let mut scores = Vec::with_capacity(n);
            self.for_each_block(scratch, &postings, idf, |base, docs, block_scores| {
                ordinals.extend(docs.iter().map(|&d| base + d));
                scores.extend_from_slice(block_scores);
            })?;
            postings.ordinals = ordinals.into();
            postings.scores = scores.into();
        }
        Ok(Some(postings))
    }

    /// Runs `f` with the query's terms that some document holds, in term order,
    /// each with its boost: from the term cache, looking up (and caching) the
    /// terms it lacks.
    fn with_query_terms<R>(
        &self,
        scratch: &mut Scratch,
        text: &str,
        f: impl FnOnce(&Self, &mut Scratch, &[(&TermPostings, f32)]) -> Result<R>,
    ) -> Result<R> {
        Self::analyze_query(scratch, text);
        let mut missing = Vec::new();
        let mut terms: Vec<(Arc<TermPostings>, f32)> = Vec::with_capacity(scratch.query.len());
        {
            // Most often every term is cached: one lookup each.
            let cache = self.terms.read();
            for (i, &(s, e, boost)) in scratch.query.iter().enumerate() {
                match cache.terms.get(&scratch.text[s as usize..e as usize]) {
                    Some(Some(postings)) => terms.push((Arc::clone(postings), boost)),
                    Some(None) => {}
                    None => missing.push(i),
                }
            }
        }
        if !missing.is_empty() {
            // Terms the cache lacks: looked up, then cached; those the budget refuses
            // stay here for this search. Terms keep the query's order.
            terms.clear();
            let mut owned: Vec<(usize, Arc<TermPostings>)> = Vec::new();
            for i in missing {
                let (s, e, _) = scratch.query[i];
                let term = scratch.text[s as usize..e as usize].to_owned();
                let postings = self.lookup(scratch, &term)?;
                if let Some(refused) = self.terms.insert(&term, postings) {
                    owned.push((i, Arc::new(refused)));
                }
            }
            let cache = self.terms.read();
            for (i, &(s, e, boost)) in scratch.query.iter().enumerate() {
                let postings = match cache.terms.get(&scratch.text[s as usize..e as usize]) {
                    Some(Some(postings)) => postings,
                    Some(None) => continue,
                    None => match owned.iter().find(|(j, _)| *j == i) {
                        Some((_, postings)) => postings,
                        None => continue,
                    },
                };
                terms.push((Arc::clone(postings), boost));
            }
        }
        let terms: Vec<(&TermPostings, f32)> = terms.iter().map(|(t, b)| (&**t, *b)).collect();
        f(self, scratch, &terms)
    }

    fn search_with(&self, scratch: &mut Scratch, text: &str, k: usize) -> Result<Vec<Hit>> {
        self.with_query_terms(scratch, text, |this, scratch, terms| {
            if terms.is_empty() || k == 0 {
                return Ok(Vec::new());
            }
            let postings: u64 = terms.iter().map(|(t, _)| t.doc_freq).sum();
            // Few postings: remember which accumulators were touched. Many: scan them all.
            let sparse = postings.saturating_mul(2) < this.len() as u64;
            for &(term, boost) in terms {
                if sparse {
                    this.accumulate::<true>(scratch, term, boost)?;
                } else {
                    this.accumulate::<false>(scratch, term, boost)?;
                }
            }
            Ok(this.select(scratch, k, sparse))
        })
    }

    /// Moves the non-zero accumulators out (leaving them zero) and keeps the best
    /// `k`, in [`Hit::rank_cmp`] order. Small `k`: a bounded heap behind a score
    /// threshold, so most documents cost one comparison. Large `k`: every candidate
    /// as one [`rank_key`], a linear-time selection of the best `k`, and a sort of
    /// those ([`best_of_keys`]).
    fn select(&self, scratch: &mut Scratch, k: usize, sparse: bool) -> Vec<Hit> {
        let Scratch {
            acc,
            touched,
            top,
            candidates,
            maxima,
            spare,
            ..
        } = scratch;
        let doc_of = &self.doc_of;
        if k <= HEAP_MAX_K {
            top.reset(k);
            // Zero (untouched) slots never pass: the threshold starts above zero.
            let mut threshold = f32::MIN_POSITIVE;
            let mut offer = |ordinal: u32, score: f32, threshold: &mut f32| {
                top.push(doc_of[ordinal as usize], score);
                if let Some(t) = top.threshold() {
                    *threshold = t;
                }
            };
            if sparse {
                for &ordinal in touched.iter() {
                    let score = std::mem::take(&mut acc[ordinal as usize]);
                    if score >= threshold {
                        offer(ordinal, score, &mut threshold);
                    }
                }
                touched.clear();
            } else {
                // The best score of each run of LANES accumulators, with SIMD
                // (accumulators are never negative, so their bits order like them).
                // The k-th best of those is a score that k documents reach, so no
                // document below it is in the top k: it is the first threshold, and
                // only runs whose best reaches it are looked at closely.
                maxima.clear();
                maxima.extend(
                    acc.chunks_exact(LANES).map(|run| {
                        f32::from_bits(run.iter().map(|s| s.to_bits()).max().unwrap_or(0))
                    }),
                );
                spare.clear();
                for &m in maxima.iter() {
                    if m > 0.0 && (spare.len() < k || m > spare[k - 1]) {
                        let at = spare.partition_point(|&b| b >= m);
                        spare.insert(at, m);
                        spare.truncate(k);
                    }
                }
                if spare.len() == k {
                    threshold = threshold.max(spare[k - 1]);
                }
                for (c, chunk) in acc.chunks(LANES).enumerate() {
                    if maxima[c] < threshold {
                        continue;
                    }
                    for (i, &score) in chunk.iter().enumerate() {
                        if score >= threshold {
                            offer((c * LANES + i) as u32, score, &mut threshold);
                        }
                    }
                }
                acc.fill(0.0);
            }
            top.drain_sorted()
        } else {
            candidates.clear();
            if sparse {
                for &ordinal in touched.iter() {
                    let score = std::mem::take(&mut acc[ordinal as usize]);
                    candidates.push(rank_key(doc_of[ordinal as usize], score));
                }
                touched.clear();
            } else {
                // Branch-free compaction: write every key, advance past positive ones.
                candidates.resize(acc.len(), 0);
                let mut kept = 0;
                for (&score, &doc) in acc.iter().zip(doc_of.iter()) {
                    candidates[kept] = rank_key(doc, score);
                    kept += usize::from(score > 0.0);
                }
                candidates.truncate(kept);
                acc.fill(0.0);
            }
            best_of_keys(candidates, k)
        }
    }

    /// Adds one term's scores into the accumulator: the cached scores when the
    /// term is decoded and has boost 1, else computed block by block.
    fn accumulate<const SPARSE: bool>(
        &self,
        scratch: &mut Scratch,
        term: &TermPostings,
        boost: f32,
    ) -> Result<()> {
        if boost == 1.0 && term.decoded() {
            let Scratch { acc, touched, .. } = scratch;
            if SPARSE {
                // Branch-free: write every ordinal, keep those seen for the first time.
                let mut kept = touched.len();
                touched.resize(kept + term.ordinals.len(), 0);
                for (&ordinal, &score) in term.ordinals.iter().zip(&*term.scores) {
                    let slot = &mut acc[ordinal as usize];
                    touched[kept] = ordinal;
                    kept += usize::from(*slot == 0.0);
                    *slot += score;
                }
                touched.truncate(kept);
            } else {
                for (&ordinal, &score) in term.ordinals.iter().zip(&*term.scores) {
                    acc[ordinal as usize] += score;
                }
            }
            return Ok(());
        }
        let mut block = scratch.block.take();
        let (acc, touched) = (&mut scratch.acc, &mut scratch.touched);
        let result =
            self.for_each_block_with(&mut block, term, boost * term.idf, |base, docs, scores| {
                let acc = &mut acc[base as usize..];
                for (&doc, &score) in docs.iter().zip(scores) {
                    let slot = &mut acc[doc as usize];
                    if SPARSE && *slot == 0.0 {
                        touched.push(base + doc);
                    }
                    *slot += score;
                }
            });
        scratch.block = block;
        result
    }

    /// Calls `f(base, docs, scores)` for each block of the term's postings, in
    /// ordinal order: `base` is the segment's first ordinal, `docs` the block's
    /// segment-local doc ids and `scores` their `term_score(weight, tf, inverse)`.
    fn for_each_block(
        &self,
        scratch: &mut Scratch,
        term: &TermPostings,
        weight: f32,
        f: impl FnMut(u32, &[u32], &[f32]),
    ) -> Result<()> {
        self.for_each_block_with(&mut scratch.block, term, weight, f)
    }

    fn for_each_block_with(
        &self,
        block: &mut Option<BlockSegmentPostings>,
        term: &TermPostings,
        weight: f32,
        mut f: impl FnMut(u32, &[u32], &[f32]),
    ) -> Result<()> {
        let mut inverse = [0f32; BLOCK];
        let mut scores = [0f32; BLOCK];
        for &(s, ref info) in &*term.infos {
            let segment = &self.segments[s];
            let base = segment.base as usize;
            let doc_inverse = &self.inverse[base..base + segment.len as usize];
            // One block cursor per scratch, reset from term to term.
            let block = match block {
                Some(block) => {
                    segment
                        .inverted
                        .reset_block_postings_from_terminfo(info, block)?;
                    block
                }
                None => block.insert(
                    segment
                        .inverted
                        .read_block_postings_from_terminfo(info, IndexRecordOption::WithFreqs)?,
                ),
            };
            loop {
                let docs = block.docs();
                if docs.is_empty() {
                    break;
                }
                if block.freqs().len() != docs.len() {
                    return Err(Error::format(
                        &self.dir,
                        "postings without term frequencies (rebuild the index)",
                    ));
                }
                // Two passes so that the second, with the division, runs on SIMD
                // lanes: gather the norm inverses, then score.
                for (docs, freqs) in docs.chunks(BLOCK).zip(block.freqs().chunks(BLOCK)) {
                    for (inv, &doc) in inverse.iter_mut().zip(docs) {
                        *inv = doc_inverse[doc as usize];
                    }
                    for ((score, &tf), &inv) in scores.iter_mut().zip(freqs).zip(&inverse) {
                        *score = term_score(weight, tf, inv);
                    }
                    f(base as u32, docs, &scores[..docs.len()]);
                }
                block.advance();
            }
        }
        Ok(())
    }

    fn score_with(&self, scratch: &mut Scratch, text: &str, docs: &[DocId]) -> Result<Vec<Score>> {
        let mut wanted: Vec<(u32, usize)> = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            let ordinal = self.ordinal_of.get(doc.index()).copied().ok_or_else(|| {
                Error::Invalid(format!(
                    "document {doc} is not in the index ({} documents)",
                    self.len()
                ))
            })?;
            wanted.push((ordinal, i));
        }
        wanted.sort_unstable();
        let mut scores = vec![0.0f32; docs.len()];
        self.with_query_terms(scratch, text, |this, _, terms| {
            for &(term, boost) in terms {
                let weight = boost * term.idf;
                for &(s, ref info) in &*term.infos {
                    let segment = &this.segments[s];
                    let (lo, hi) = (segment.base, segment.base + segment.len);
                    let start = wanted.partition_point(|&(o, _)| o < lo);
                    let end = wanted.partition_point(|&(o, _)| o < hi);
                    if start == end {
                        continue;
                    }
                    let mut postings = segment
                        .inverted
                        .read_postings_from_terminfo(info, IndexRecordOption::WithFreqs)?;
                    for &(ordinal, i) in &wanted[start..end] {
                        let local = ordinal - lo;
                        let mut current = postings.doc();
                        if current < local {
                            current = postings.seek(local);
                        }
                        if current == local {
                            let norm = this.norms[ordinal as usize] as usize;
                            scores[i] += term_score(
                                weight,
                                tantivy::postings::Postings::term_freq(&postings),
                                this.cache.0[norm],
                            );
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(scores)
    }
}

impl Retriever for Bm25Index {
    fn name(&self) -> &str {
        "bm25"
    }

    fn search(&self, query: &QueryInput<'_>, k: usize) -> dredge_core::Result<Vec<Hit>> {
        Ok(self.search_text(query.text, k)?)
    }

    fn score(&self, query: &QueryInput<'_>, docs: &[DocId]) -> dredge_core::Result<Vec<Score>> {
        Ok(self.score_text(query.text, docs)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::lucene::{length_to_norm, norm_to_length};

    fn build(docs: &[(&str, &str)], options: BuildOptions) -> (tempfile::TempDir, Bm25Index) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bm25");
        let mut builder = Bm25Builder::create(&path, &options).unwrap();
        for (title, text) in docs {
            builder.add(title, text).unwrap();
        }
        let info = builder.finish().unwrap();
        assert_eq!(info.documents, docs.len() as u64);
        (dir, Bm25Index::open(&path).unwrap())
    }

    /// BM25 straight from the textbook (Lucene >= 8 variant, without the (k1 + 1)
    /// factor), in f64, from the analyzer's terms: no tantivy involved.
    fn reference(docs: &[(&str, &str)], query: &str, params: Bm25Params) -> Vec<f64> {
        let mut analyzer = EnglishAnalyzer::new();
        let doc_terms: Vec<Vec<String>> = docs
            .iter()
            .map(|(title, text)| [analyzer.terms(title), analyzer.terms(text)].concat())
            .collect();
        let n = doc_terms.iter().filter(|t| !t.is_empty()).count() as f64;
        let total: usize = doc_terms.iter().map(Vec::len).sum();
        let avgdl = f64::from(avg_length(total as u64, n as u64));
        let mut query_counts: HashMap<String, f64> = HashMap::new();
        for t in analyzer.terms(query) {
            *query_counts.entry(t).or_default() += 1.0;
        }
        let (k1, b) = (f64::from(params.k1), f64::from(params.b));
        let df: HashMap<&String, f64> = query_counts
            .keys()
            .map(|term| {
                (
                    term,
                    doc_terms.iter().filter(|d| d.contains(term)).count() as f64,
                )
            })
            .collect();
        doc_terms
            .iter()
            .map(|terms| {
                let dl = f64::from(norm_to_length(length_to_norm(terms.len() as u32)));
                query_counts
                    .iter()
                    .map(|(term, &count)| {
                        let df = df[term];
                        let tf = terms.iter().filter(|t| *t == term).count() as f64;
                        if tf == 0.0 {
                            return 0.0;
                        }
                        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                        count * idf * tf / (tf + k1 * (1.0 - b + b * dl / avgdl))
                    })
                    .sum()
            })
            .collect()
    }

    fn check_against_reference(docs: &[(&str, &str)], index: &Bm25Index, query: &str) {
        let expected = reference(docs, query, index.params());
        let all: Vec<DocId> = (0..docs.len()).map(DocId::from_index).collect();
        let scores = index.score_text(query, &all).unwrap();
        for (i, (&got, &want)) in scores.iter().zip(&expected).enumerate() {
            assert!(
                (f64::from(got) - want).abs() <= 1e-5 * want.max(1.0),
                "doc {i}: {got} vs {want} for {query:?}"
            );
        }
        let hits = index.search_text(query, docs.len() + 1).unwrap();
        let matching = expected.iter().filter(|&&s| s > 0.0).count();
        assert_eq!(hits.len(), matching, "{query:?}");
        for pair in hits.windows(2) {
            assert!(pair[0].rank_cmp(&pair[1]).is_lt());
        }
        for hit in &hits {
            assert_eq!(
                hit.score,
                scores[hit.doc.index()],
                "search and score agree exactly"
            );
        }
        for k in [2, 70] {
            // Heap selection below HEAP_MAX_K, select-then-sort above it.
            let top = index.search_text(query, k).unwrap();
            assert_eq!(top, hits[..hits.len().min(k)]);
        }
    }

    const DOCS: [(&str, &str); 6] = [
        (
            "Sourdough starter",
            "Feed the starter with flour and water; a starter that is fed daily rises.",
        ),
        (
            "",
            "Bees make honey. Honeybees dance to tell where flowers are.",
        ),
        ("Solar panels", ""),
        ("", ""),
        (
            "Rust",
            "Rust's ownership rules and the borrow checker; rust on garden tools is iron oxide.",
        ),
        ("The", "and of to the a"),
    ];

    #[test]
    fn scores_match_the_textbook_formula() {
        let (_dir, index) = build(&DOCS, BuildOptions::default());
        assert_eq!(index.info().documents, 6);
        assert_eq!(
            index.info().documents_with_terms,
            4,
            "empty and stop-word-only documents have no terms"
        );
        for query in [
            "starter feeding",
            "rust",
            "rust rust tools",
            "honey bees flowers solar",
            "panel",
            "unknownword",
        ] {
            check_against_reference(&DOCS, &index, query);
        }
        let index = index.with_params(Bm25Params { k1: 1.2, b: 0.75 }).unwrap();
        check_against_reference(&DOCS, &index, "starter rust honey");
    }

    #[test]
    fn queries_without_indexed_terms_find_nothing() {
        let (_dir, index) = build(&DOCS, BuildOptions::default());
        for query in [
            "",
            "   ",
            "the and of",
            "To be or not to be",
            "!!! ???",
            "zzzz",
        ] {
            assert!(
                index.search_text(query, 10).unwrap().is_empty(),
                "{query:?}"
            );
            assert_eq!(
                index.score_text(query, &[DocId(0), DocId(4)]).unwrap(),
                [0.0, 0.0]
            );
        }
        assert!(index.search_text("starter", 0).unwrap().is_empty());
        let err = index.score_text("starter", &[DocId(6)]).unwrap_err();
        assert!(
            err.to_string().contains("document 6 is not in the index"),
            "{err}"
        );
    }

    #[test]
    fn empty_index_is_searchable() {
        let (_dir, index) = build(&[], BuildOptions::default());
        assert!(index.is_empty());
        assert!(index.search_text("anything", 10).unwrap().is_empty());
    }

    #[test]
    fn not_an_index_and_bad_versions_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = Bm25Index::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a dredge BM25 index"), "{err}");
        let (dir, _) = build(&DOCS[..2], BuildOptions::default());
        let info_path = dir.path().join("bm25").join(INFO_FILE);
        let text = fs_err::read_to_string(&info_path).unwrap();
        fs_err::write(
            &info_path,
            text.replace("\"format_version\": 1", "\"format_version\": 99"),
        )
        .unwrap();
        let err = Bm25Index::open(dir.path().join("bm25"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BM25 format version 99; this dredge reads version 1"),
            "{err}"
        );
        fs_err::write(&info_path, text.replace(EnglishAnalyzer::NAME, "klingon")).unwrap();
        let err = Bm25Index::open(dir.path().join("bm25"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("built with analyzer klingon"), "{err}");
    }

    #[test]
    fn several_segments_score_like_one() {
        // Many small documents over two threads without merging leave several
        // segments, each with its own local doc ids.
        let words = [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
        ];
        let texts: Vec<String> = (0..3000)
            .map(|i| {
                (0..(i % 7 + 1))
                    .map(|j| words[(i * 7 + j * 3) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let docs: Vec<(&str, &str)> = texts.iter().map(|t| ("", t.as_str())).collect();
        let options = BuildOptions {
            threads: 2,
            merge: false,
            ..BuildOptions::default()
        };
        let (_dir, split) = build(&docs, options);
        let (_dir2, merged) = build(
            &docs,
            BuildOptions {
                threads: 2,
                ..BuildOptions::default()
            },
        );
        assert_eq!(merged.info().segments, 1);
        eprintln!("segments without merging: {}", split.info().segments);
        for query in ["alpha", "beta gamma", "theta theta eta"] {
            assert_eq!(
                split.search_text(query, 50).unwrap(),
                merged.search_text(query, 50).unwrap()
            );
            check_against_reference(&docs, &split, query);
        }
    }

    #[test]
    fn the_term_cache_changes_no_result() {
        // Some terms decoded and cached, some only located, some not cached at all.
        let texts: Vec<String> = (0..400)
            .map(|i| {
                let words = ["alpha", "beta", "gamma", "delta", "epsilon"];
                (0..(i % 9 + 1))
                    .map(|j| words[(i * 3 + j * j) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let docs: Vec<(&str, &str)> = texts.iter().map(|t| ("", t.as_str())).collect();
        let (_dir, index) = build(&docs, BuildOptions::default());
        let path = _dir.path().join("bm25");
        let queries = [
            "alpha",
            "beta gamma beta",
            "delta epsilon zeta",
            "gamma alpha",
            "nothing",
        ];
        let expected: Vec<Vec<Vec<Hit>>> = queries
            .iter()
            .map(|q| {
                [1, 10, 100, 500]
                    .iter()
                    .map(|&k| index.search_text(q, k).unwrap())
                    .collect()
            })
            .collect();
        for bytes in [0, 200, 2_000, 5_000, usize::MAX] {
            let small = Bm25Index::open(&path).unwrap().with_cache_bytes(bytes);
            for _ in 0..2 {
                for (query, expected) in queries.iter().zip(&expected) {
                    for (&k, hits) in [1, 10, 100, 500].iter().zip(expected) {
                        assert_eq!(
                            &small.search_text(query, k).unwrap(),
                            hits,
                            "{bytes} {query}"
                        );
                    }
                }
            }
            check_against_reference(&docs, &small, "beta gamma beta delta");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
        #[test]
        fn random_corpora_match_the_reference(
            texts in prop::collection::vec("((cat|cats|dog|the|bird|birds|fish|of|runs|running) ){0,12}", 1..30),
            query in "((cat|dogs|bird|fish|the|running|mouse) ){1,4}",
        ) {
            let docs: Vec<(&str, &str)> = texts.iter().map(|t| ("", t.as_str())).collect();
            let (_dir, index) = build(&docs, BuildOptions { threads: 1, ..BuildOptions::default() });
            check_against_reference(&docs, &index, &query);
        }
    }
}
