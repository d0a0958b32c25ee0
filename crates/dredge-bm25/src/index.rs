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

use dredge_core::{DocId, Hit, QueryInput, Retriever, Score, TopK};
use tantivy::index::InvertedIndexReader;
use tantivy::postings::BlockSegmentPostings;
use tantivy::schema::Field;
use tantivy::{Index, ReloadPolicy, Searcher};

use crate::analyzer::EnglishAnalyzer;
use crate::cache::TermCache;
use crate::collection::CollectionStats;
use crate::error::{Error, Result};
use crate::lucene::{Bm25Params, NormCache, avg_length};

mod build;
mod search;

use build::register_tokenizer;
pub use build::{Bm25Builder, Bm25Info, BuildOptions};

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
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

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
    /// The statistics of the whole collection when this index is one of its
    /// shards ([`Bm25Index::with_collection`]); `None`: this index's own.
    collection: Option<Arc<CollectionStats>>,
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
        // A panic in tantivy's readers (damaged files of an index without
        // checksums) is an error naming the folder; see `guarded`.
        let index = std::panic::catch_unwind(|| Self::load(dir, info.clone())).unwrap_or_else(|_| {
            Err(Error::format(
                dir,
                "tantivy failed reading the index files: they are damaged; rebuild the index with `dredge index` (`dredge check --index` lists the damaged files)",
            ))
        })?;
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

    /// The files of the tantivy index in `dir` whose footer's CRC-32 does not match
    /// their bytes (tantivy's `Index::validate_checksum`), relative to `dir`. Reads
    /// every segment file whole.
    pub fn damaged_files(dir: &Path) -> Result<Vec<PathBuf>> {
        let tantivy_err = |e| Error::tantivy(dir, e);
        let directory = crate::read_only::ReadDirectory::open(dir).map_err(tantivy_err)?;
        let index = Index::open(directory).map_err(tantivy_err)?;
        let mut damaged: Vec<_> = index
            .validate_checksum()
            .map_err(tantivy_err)?
            .into_iter()
            .collect();
        damaged.sort();
        Ok(damaged)
    }

    fn load(dir: &Path, mut info: Bm25Info) -> Result<Self> {
        let tantivy_err = |e| Error::tantivy(dir, e);
        let directory = crate::read_only::ReadDirectory::open(dir).map_err(tantivy_err)?;
        let index = Index::open(directory).map_err(tantivy_err)?;
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
            collection: None,
            terms: TermCache::new(DEFAULT_CACHE_BYTES),
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The same index searched with other BM25 parameters.
    pub fn with_params(mut self, params: Bm25Params) -> Result<Self> {
        self.params = Bm25Params::new(params.k1, params.b)?;
        self.rescore();
        Ok(self)
    }

    /// The same index scoring as one shard of a larger collection: `N`, the
    /// average length and every term's document frequency come from `stats`, so
    /// that a document's score equals the one an index of the whole collection
    /// gives it. `stats` must cover this index (made by
    /// [`CollectionStats::write`] from a set of shards including it).
    pub fn with_collection(mut self, stats: Arc<CollectionStats>) -> Result<Self> {
        let summary = stats.summary();
        if summary.documents_with_terms < self.info.documents_with_terms
            || summary.total_terms < self.info.total_terms
        {
            return Err(Error::format(
                &self.dir,
                "the collection statistics do not cover this shard (join the shards again)",
            ));
        }
        self.collection = Some(stats);
        self.rescore();
        Ok(self)
    }

    /// `N` and the total of terms the scores use: the collection's, or this index's.
    fn counts(&self) -> (u64, u64) {
        match &self.collection {
            Some(c) => (c.summary().documents_with_terms, c.summary().total_terms),
            None => (self.info.documents_with_terms, self.info.total_terms),
        }
    }

    /// Recomputes what depends on the parameters and the statistics.
    fn rescore(&mut self) {
        let (n, total) = self.counts();
        self.cache = NormCache::new(self.params, avg_length(total, n));
        self.inverse = self.cache.per_document(&self.norms);
        self.terms = TermCache::new(self.terms.budget());
    }

    /// The idf of `term`, held by `local_df` documents of this index.
    fn term_idf(&self, term: &str, local_df: u64) -> Result<f32> {
        let (n, _) = self.counts();
        let df = match &self.collection {
            None => local_df,
            Some(c) => {
                let df = c.doc_freq(term);
                if df < local_df {
                    return Err(Error::format(
                        &self.dir,
                        format!(
                            "the collection statistics give the term `{term}` {df} documents but this shard has {local_df} (join the shards again)"
                        ),
                    ));
                }
                df
            }
        };
        Ok(crate::lucene::idf(df, n))
    }

    /// The term dictionary of every segment (to merge a collection's statistics).
    pub(crate) fn term_dictionaries(
        &self,
    ) -> impl Iterator<Item = &tantivy::termdict::TermDictionary> {
        self.segments.iter().map(|s| s.inverted.terms())
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
}

impl Retriever for Bm25Index {
    fn name(&self) -> &str {
        "bm25"
    }

    fn search(&self, query: &QueryInput<'_>, k: usize) -> dredge_core::Result<Vec<Hit>> {
        Ok(self.guarded(|| self.search_text(query.text, k))?)
    }

    fn score(&self, query: &QueryInput<'_>, docs: &[DocId]) -> dredge_core::Result<Vec<Score>> {
        Ok(self.guarded(|| self.score_text(query.text, docs))?)
    }
}

impl Bm25Index {
    /// Runs `f`, turning a panic inside tantivy's readers into an error naming the
    /// index. The last resort against damaged files: an index whose manifest records
    /// checksums has its files verified before they are opened, but one built
    /// before checksums is read as it is, and tantivy panics on some damaged bytes.
    fn guarded<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(Error::format(
                &self.dir,
                "tantivy failed reading the index files: they are damaged; rebuild the index with `dredge index` (`dredge check --index` lists the damaged files)",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::lucene::{length_to_norm, norm_to_length};
    use dredge_core::Id;

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
