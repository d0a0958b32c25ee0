//! Sharded indexes: a corpus split into contiguous ranges of documents, each range
//! a normal index folder (a *shard*), joined into one index whose searches give
//! the bytes an index of the whole corpus gives.
//!
//! - Split: shard `i` of `n` holds the documents numbered `[i*N/n, (i+1)*N/n)` in
//!   corpus order (`N` documents, integer division). Contiguous ranges keep the
//!   corpus order: document `j` of shard `i` is document `first(i) + j` of the
//!   corpus, so ties broken by lower document number break the same way as in one
//!   index, and no table maps shard documents back.
//! - A shard's manifest records which shard of which corpus it is ([`ShardInfo`]).
//! - [`join_shards`] writes the sharded index: `manifest.json` (format
//!   `dredge-sharded`, [`ShardSet`]) naming the shards by paths relative to it and
//!   the collection's BM25 statistics, and `bm25-terms.fst` (every term's
//!   document frequency, merged from the shards' term dictionaries).
//! - [`crate::Index::open`] opens either kind; a sharded index searches every shard
//!   (in parallel), each scoring BM25 with the collection's statistics, and merges
//!   the top k by score, then by document number ([`ShardedRetriever`]).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use dredge_bm25::{Bm25Index, CollectionStats, CollectionSummary};
use dredge_core::{DocId, Hit, Matrix, QueryInput, Retriever, Score, StagingDir, sort_hits};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::build::check_target;
use crate::dense::{LazyEncoder, with_vectors};
use crate::error::{Error, Result};
use crate::manifest::{CorpusInfo, MANIFEST, Manifest};

/// The value of `format` in a sharded index's manifest.
pub const SHARDED_FORMAT: &str = "dredge-sharded";
/// The sharded manifest version this dredge writes and reads.
pub const SHARDED_FORMAT_VERSION: u32 = 2;
/// The collection's term statistics, in a sharded index's folder.
pub const TERMS_FILE: &str = "bm25-terms.fst";

/// Shard `index` of `count` (`i/n` on the command line, counted from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// Which shard, `0..count`.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl std::str::FromStr for ShardSpec {
    type Err = String;

    /// `i/n`, with `0 <= i < n`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad =
            || format!("`{s}`: give the shard as i/n (shard i of n, counted from 0: 0/4 .. 3/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(ShardSpec { index, count })
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    /// The document numbers `[first, end)` of this shard in a corpus of `documents`.
    pub fn range(&self, documents: u64) -> (u64, u64) {
        let at = |i: u32| (u128::from(documents) * u128::from(i) / u128::from(self.count)) as u64;
        (at(self.index), at(self.index + 1))
    }
}

/// What a shard's manifest records about its place in the corpus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Which shard, counted from 0.
    pub index: u32,
    /// Of how many.
    pub count: u32,
    /// The corpus number of the shard's first document.
    pub first: u64,
    /// The whole corpus (its fingerprint and size are those of an index of it all).
    pub corpus: CorpusInfo,
}

/// One shard as the sharded manifest names it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The shard folder, relative to the sharded index's folder.
    pub path: String,
    /// The corpus number of its first document.
    pub first: u64,
    /// Its documents.
    pub documents: u64,
    /// The fingerprint of its documents (a shard rebuilt from other documents is
    /// refused).
    pub fingerprint: String,
}

/// A sharded index's `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardSet {
    /// Always [`SHARDED_FORMAT`].
    pub format: String,
    /// [`SHARDED_FORMAT_VERSION`].
    pub format_version: u32,
    /// The dredge that joined the shards.
    pub dredge_version: String,
    /// The whole corpus.
    pub corpus: CorpusInfo,
    /// The shards in corpus order.
    pub shards: Vec<ShardEntry>,
    /// The collection's BM25 statistics ([`TERMS_FILE`]); absent without BM25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25: Option<CollectionSummary>,
    /// The seal of this file (version 2; see `verify.rs`): `None` in a join made
    /// before checksums. The shards carry their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_checksum: Option<String>,
}

impl ShardSet {
    /// Reads and checks `dir/manifest.json` as a sharded manifest.
    pub fn read(dir: &Path) -> Result<Self> {
        let again = "join the shards again with `dredge shards join`";
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::index(&path, format!("cannot be read ({e}); {again}")))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::index(&path, format!("invalid JSON ({e}); {again}")))?;
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(SHARDED_FORMAT_VERSION) => {
                if crate::verify::seal_holds(&text) != Some(true) {
                    return Err(Error::index(
                        &path,
                        format!(
                            "its bytes changed (its checksum does not match its content); the sharded index is damaged: {again}"
                        ),
                    ));
                }
            }
            Some(1) => {}
            Some(v) => {
                return Err(Error::index(
                    &path,
                    format!(
                        "sharded index format version {v}, but this dredge reads versions 1 and {SHARDED_FORMAT_VERSION}; {again}"
                    ),
                ));
            }
            None => return Err(Error::index(&path, format!("no format_version; {again}"))),
        }
        serde_json::from_value(value)
            .map_err(|e| Error::index(&path, format!("malformed sharded manifest: {e}; {again}")))
    }
}

/// The `format` of the manifest in `dir` (`dredge-index`, `dredge-sharded`), when
/// it can be read.
pub(crate) fn format_of(dir: &Path) -> Option<String> {
    let text = fs_err::read_to_string(dir.join(MANIFEST)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("format")?.as_str().map(str::to_owned)
}

/// Joins shard folders into the sharded index `out`: checks that they are the
/// shards `0..n` of one corpus built with the same settings (saying which differs),
/// merges their BM25 term statistics, and writes `out` atomically. The shards stay
/// where they are; `out` names them by relative paths, so that `out` and its
/// shards move together.
pub fn join_shards(out: &Path, shards: &[PathBuf], overwrite: bool) -> Result<ShardSet> {
    if shards.is_empty() {
        return Err(Error::Invalid("no shard to join".into()));
    }
    let mut opened: Vec<(PathBuf, Manifest, ShardInfo, crate::Index)> = Vec::new();
    for path in shards {
        if format_of(path).as_deref() == Some(SHARDED_FORMAT) {
            return Err(Error::index(
                path,
                "is a sharded index, not a shard (join the shard folders it names)",
            ));
        }
        let index = crate::Index::open(path)?;
        let manifest = index.manifest().clone();
        let Some(info) = manifest.shard.clone() else {
            return Err(Error::index(
                path,
                "is not a shard: it was built without --shard i/n",
            ));
        };
        opened.push((path.clone(), manifest, info, index));
    }
    opened.sort_by_key(|(_, _, info, _)| info.index);
    let (first_path, first, first_info, _) = &opened[0];
    let n = first_info.count;
    for (path, manifest, info, _) in &opened {
        let differs = |what: &str, a: String, b: String| {
            Error::index(
                path,
                format!(
                    "{what} differs from {}'s: {a} here, {b} there; shards must come from one corpus built with the same settings",
                    first_path.display()
                ),
            )
        };
        if info.count != n {
            return Err(differs(
                "the number of shards",
                info.count.to_string(),
                n.to_string(),
            ));
        }
        if info.corpus.fingerprint != first_info.corpus.fingerprint
            || info.corpus.documents != first_info.corpus.documents
        {
            return Err(differs(
                "the corpus",
                format!("{} ({} documents)", info.corpus.path, info.corpus.documents),
                format!(
                    "{} ({} documents)",
                    first_info.corpus.path, first_info.corpus.documents
                ),
            ));
        }
        compare_components(manifest, first, &differs)?;
        let (lo, hi) = ShardSpec {
            index: info.index,
            count: n,
        }
        .range(info.corpus.documents);
        if info.first != lo || manifest.corpus.documents != hi - lo {
            return Err(Error::index(
                path,
                format!(
                    "shard {}/{n} should hold documents {lo}..{hi} but holds {} from {}; rebuild it",
                    info.index, manifest.corpus.documents, info.first
                ),
            ));
        }
    }
    for (want, (path, _, info, _)) in opened.iter().enumerate() {
        if info.index as usize != want {
            let which = if (info.index as usize) < want {
                format!(
                    "shard {}/{n} is given twice ({})",
                    info.index,
                    path.display()
                )
            } else {
                format!("shard {want}/{n} is missing")
            };
            return Err(Error::Invalid(format!(
                "{which}: join needs the shards 0..{n}, each once"
            )));
        }
    }
    if opened.len() != n as usize {
        return Err(Error::Invalid(format!(
            "shard {}/{n} is missing: join needs the shards 0..{n}, each once",
            opened.len()
        )));
    }

    check_target(out, overwrite)?;
    let staging = StagingDir::new(out, overwrite)?;
    let bm25 = if first.components.bm25.is_some() {
        let indexes: Vec<Bm25Index> = opened
            .iter()
            .map(|(_, _, _, index)| index.bm25())
            .collect::<Result<_>>()?;
        let refs: Vec<&Bm25Index> = indexes.iter().collect();
        Some(CollectionStats::write(
            &refs,
            &staging.path().join(TERMS_FILE),
        )?)
    } else {
        None
    };
    let base = absolute(out)?;
    let base = base.parent().unwrap_or(Path::new("/"));
    let entries = opened
        .iter()
        .map(|(path, manifest, info, _)| {
            Ok(ShardEntry {
                path: relative_to(base, &absolute(path)?, out),
                first: info.first,
                documents: manifest.corpus.documents,
                fingerprint: manifest.corpus.fingerprint.clone(),
            })
        })
        .collect::<Result<_>>()?;
    let set = ShardSet {
        format: SHARDED_FORMAT.into(),
        format_version: SHARDED_FORMAT_VERSION,
        dredge_version: env!("CARGO_PKG_VERSION").into(),
        corpus: first_info.corpus.clone(),
        shards: entries,
        bm25,
        manifest_checksum: Some(crate::verify::SEAL_PLACEHOLDER.to_owned()),
    };
    let text = crate::verify::sealed_json(&set);
    let manifest_path = staging.path().join(MANIFEST);
    dredge_core::write_file(&manifest_path, |f| {
        use std::io::Write;
        f.write_all(text.as_bytes())
            .map_err(|e| dredge_core::Error::io(&manifest_path, e))
    })?;
    staging.commit()?;
    Ok(set)
}

/// Checks that `manifest`'s components are built as `first`'s are.
fn compare_components(
    manifest: &Manifest,
    first: &Manifest,
    differs: &dyn Fn(&str, String, String) -> Error,
) -> Result<()> {
    let (a, b) = (&manifest.components, &first.components);
    let bm25 = |m: &Manifest| {
        m.components.bm25.as_ref().map(|c| {
            serde_json::json!({"k1": c.info.k1, "b": c.info.b, "analyzer": c.info.analyzer, "fields": c.info.fields})
        })
    };
    if bm25(manifest) != bm25(first) {
        return Err(differs(
            "the BM25 component (parameters, analysis)",
            json_or_none(bm25(manifest)),
            json_or_none(bm25(first)),
        ));
    }
    let names = |c: &crate::Components| c.dense.keys().cloned().collect::<Vec<_>>().join(", ");
    if names(a) != names(b) {
        return Err(differs("the dense components", names(a), names(b)));
    }
    for (name, da) in &a.dense {
        let db = &b.dense[name];
        let settings = |d: &crate::DenseComponent| {
            serde_json::json!({
                "similarity": d.ann.similarity,
                "dimension": d.ann.dimension,
                "ann": d.ann.ann,
                "encoder": d.encoder,
            })
        };
        if settings(da) != settings(db) {
            return Err(differs(
                &format!("dense component `{name}` (similarity, dimension, structure, encoder)"),
                settings(da).to_string(),
                settings(db).to_string(),
            ));
        }
    }
    Ok(())
}

fn json_or_none(v: Option<serde_json::Value>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// `path` made absolute and free of `.`/`..` where it exists (its parent, for a
/// path not yet created).
fn absolute(path: &Path) -> Result<PathBuf> {
    let io = |e| dredge_core::Error::io(path, e);
    if path.exists() {
        return Ok(fs_err::canonicalize(path).map_err(dredge_core::Error::from)?);
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::index(path, "names no folder"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().map_err(io)?,
    };
    Ok(fs_err::canonicalize(&parent)
        .map_err(dredge_core::Error::from)?
        .join(name))
}

/// `target` relative to the folder `out` (whose parent is `base`), as a string
/// with `/` separators.
fn relative_to(base: &Path, target: &Path, out: &Path) -> String {
    let dir = base.join(out.file_name().unwrap_or_default());
    let from: Vec<Component> = dir.components().collect();
    let to: Vec<Component> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// The open shards of a sharded index.
pub(crate) struct Shards {
    /// Each shard (its manifest and document table; components are opened by
    /// retrievers) with the corpus number of its first document.
    pub(crate) parts: Vec<(Arc<crate::Index>, u32)>,
    /// The collection's BM25 statistics, when the shards have BM25.
    pub(crate) stats: Option<Arc<CollectionStats>>,
    /// Retrievers open one shard's component at a time ([`crate::Index::one_shard_at_a_time`]).
    pub(crate) one_at_a_time: bool,
}

/// Opens the sharded index `dir`: its manifest, every shard (checked against what
/// the join recorded), and the collection statistics.
pub(crate) fn open_shards(dir: &Path) -> Result<(ShardSet, Shards)> {
    let set = ShardSet::read(dir)?;
    let mut parts = Vec::with_capacity(set.shards.len());
    let mut next = 0u64;
    for entry in &set.shards {
        let path = dir.join(&entry.path);
        let index = crate::Index::open(&path).map_err(|e| Error::Context {
            context: format!(
                "opening shard {} of the sharded index {}",
                entry.path,
                dir.display()
            ),
            source: Box::new(e),
        })?;
        let m = index.manifest();
        if m.corpus.fingerprint != entry.fingerprint || m.corpus.documents != entry.documents {
            return Err(Error::index(
                &path,
                format!(
                    "this shard changed after the join (it holds {} documents, fingerprint {}; the join recorded {}, {}); join the shards again",
                    m.corpus.documents, m.corpus.fingerprint, entry.documents, entry.fingerprint
                ),
            ));
        }
        if entry.first != next {
            return Err(Error::index(
                dir.join(MANIFEST),
                "the shards do not follow one another; join them again",
            ));
        }
        next += entry.documents;
        let first = u32::try_from(entry.first)
            .map_err(|_| Error::index(&path, "more documents than a DocId can number"))?;
        parts.push((Arc::new(index), first));
    }
    if next != set.corpus.documents {
        return Err(Error::index(
            dir.join(MANIFEST),
            format!(
                "the shards hold {next} documents but the corpus has {}; join them again",
                set.corpus.documents
            ),
        ));
    }
    let stats = match &set.bm25 {
        Some(summary) => Some(CollectionStats::open(&dir.join(TERMS_FILE), summary)?),
        None => None,
    };
    Ok((
        set,
        Shards {
            parts,
            stats,
            one_at_a_time: false,
        },
    ))
}

/// Opens one shard's retriever.
pub(crate) type Opener = Box<dyn Fn() -> Result<Arc<dyn Retriever>> + Send + Sync>;

/// A shard's retriever: open for the retriever's life, or opened when needed and
/// dropped after use (one shard in memory at a time).
pub(crate) enum Part {
    Open(Arc<dyn Retriever>),
    OneAtATime(Opener),
}

/// Queries per [`Retriever::search_batch`] call when shards are opened one at a
/// time: each call opens every shard once.
const ONE_AT_A_TIME_BATCH: usize = 4096;
/// Queries per group searched in parallel within one open shard.
const GROUP: usize = 32;

/// One retriever over the shards of a sharded index: each part searches its
/// shard, hits are renumbered to corpus document numbers and merged by
/// [`Hit::rank_cmp`] (score, then document number), as one index ranks them.
/// Shards kept open are searched in parallel; shards opened one at a time are
/// visited in turn, each searching the whole batch of queries in parallel. Dense
/// parts get the query vectors encoded once, here, by `encoder`.
pub(crate) struct ShardedRetriever {
    pub(crate) name: String,
    /// Each shard's retriever, the number of its first document, its size.
    pub(crate) parts: Vec<(Part, u32, u32)>,
    pub(crate) encoder: Option<LazyEncoder>,
}

impl ShardedRetriever {
    fn one_at_a_time(&self) -> bool {
        self.parts
            .iter()
            .any(|(p, _, _)| matches!(p, Part::OneAtATime(_)))
    }

    /// The vectors of queries that lack one, encoded together (None: none to do).
    fn encoded(&self, queries: &[QueryInput<'_>]) -> Result<Option<Matrix>> {
        match &self.encoder {
            Some(encoder) => encoder.encode_missing(queries),
            None => Ok(None),
        }
    }

    /// Merges `hits` of the part starting at `first` into `into`, keeping `k`.
    fn merge_into(into: &mut Vec<Hit>, hits: Vec<Hit>, first: u32, k: usize) {
        into.extend(hits.into_iter().map(|h| Hit {
            doc: DocId(h.doc.0 + first),
            score: h.score,
        }));
        sort_hits(into);
        into.truncate(k);
    }

    fn search_all(&self, queries: &[QueryInput<'_>], k: usize) -> Result<Vec<Vec<Hit>>> {
        let per_part: Vec<Vec<Vec<Hit>>> = if self.one_at_a_time() {
            let mut merged = vec![Vec::new(); queries.len()];
            for (part, first, _) in &self.parts {
                let retriever = open(part)?;
                let groups: Vec<Vec<Vec<Hit>>> = queries
                    .par_chunks(GROUP)
                    .map(|g| retriever.search_batch(g, k))
                    .collect::<dredge_core::Result<_>>()?;
                drop(retriever);
                for (into, hits) in merged.iter_mut().zip(groups.into_iter().flatten()) {
                    Self::merge_into(into, hits, *first, k);
                }
            }
            return Ok(merged);
        } else {
            self.parts
                .par_iter()
                .map(|(part, _, _)| open(part)?.search_batch(queries, k).map_err(Error::from))
                .collect::<Result<_>>()?
        };
        let mut merged = vec![Vec::new(); queries.len()];
        for (hits, (_, first, _)) in per_part.into_iter().zip(&self.parts) {
            for (into, hits) in merged.iter_mut().zip(hits) {
                Self::merge_into(into, hits, *first, k);
            }
        }
        Ok(merged)
    }

    fn score_all(&self, requests: &[(QueryInput<'_>, &[DocId])]) -> Result<Vec<Vec<Score>>> {
        let total = self.parts.last().map_or(0, |&(_, first, len)| first + len);
        if let Some(d) = requests
            .iter()
            .flat_map(|(_, docs)| docs.iter())
            .find(|d| d.0 >= total)
        {
            return Err(Error::Invalid(format!(
                "document {d} is not in the index ({total} documents)"
            )));
        }
        let mut scores: Vec<Vec<Score>> =
            requests.iter().map(|(_, d)| vec![0.0; d.len()]).collect();
        for (part, first, len) in &self.parts {
            let range = *first..first + len;
            // Each request's documents on this shard: (position, local id).
            let mine: Vec<(usize, Vec<usize>, Vec<DocId>)> = requests
                .iter()
                .enumerate()
                .filter_map(|(r, (_, docs))| {
                    let (at, local): (Vec<usize>, Vec<DocId>) = docs
                        .iter()
                        .enumerate()
                        .filter(|(_, d)| range.contains(&d.0))
                        .map(|(i, d)| (i, DocId(d.0 - first)))
                        .unzip();
                    (!at.is_empty()).then_some((r, at, local))
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            let retriever = open(part)?;
            let got: Vec<Vec<Score>> = mine
                .par_iter()
                .map(|(r, _, local)| retriever.score(&requests[*r].0, local))
                .collect::<dredge_core::Result<_>>()?;
            for ((r, at, _), got) in mine.iter().zip(got) {
                for (&i, s) in at.iter().zip(got) {
                    scores[*r][i] = s;
                }
            }
        }
        Ok(scores)
    }
}

/// The part's retriever: the open one, or the shard opened now.
fn open(part: &Part) -> Result<Arc<dyn Retriever>> {
    match part {
        Part::Open(r) => Ok(r.clone()),
        Part::OneAtATime(opener) => opener(),
    }
}

impl Retriever for ShardedRetriever {
    fn name(&self) -> &str {
        &self.name
    }

    fn search(&self, query: &QueryInput<'_>, k: usize) -> dredge_core::Result<Vec<Hit>> {
        let mut hits = self.search_batch(std::slice::from_ref(query), k)?;
        Ok(hits.pop().unwrap_or_default())
    }

    fn search_batch(
        &self,
        queries: &[QueryInput<'_>],
        k: usize,
    ) -> dredge_core::Result<Vec<Vec<Hit>>> {
        let encoded = self.encoded(queries)?;
        Ok(self.search_all(&with_vectors(queries, encoded.as_ref()), k)?)
    }

    fn score(&self, query: &QueryInput<'_>, docs: &[DocId]) -> dredge_core::Result<Vec<Score>> {
        let mut scores = self.score_many(&[(*query, docs)])?;
        Ok(scores.pop().unwrap_or_default())
    }

    fn score_many(
        &self,
        requests: &[(QueryInput<'_>, &[DocId])],
    ) -> dredge_core::Result<Vec<Vec<Score>>> {
        let queries: Vec<QueryInput<'_>> = requests.iter().map(|(q, _)| *q).collect();
        let encoded = self.encoded(&queries)?;
        let queries = with_vectors(&queries, encoded.as_ref());
        let requests: Vec<(QueryInput<'_>, &[DocId])> = queries
            .into_iter()
            .zip(requests.iter().map(|(_, d)| *d))
            .collect();
        Ok(self.score_all(&requests)?)
    }

    fn preferred_batch(&self) -> Option<usize> {
        self.one_at_a_time().then_some(ONE_AT_A_TIME_BATCH)
    }
}
