//! Building an index folder: the document table, BM25, and a dense component from
//! vectors held in memory, a `.npy` file, or a model that encodes the corpus.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dredge_bm25::{Bm25Builder, BuildOptions};
use dredge_core::{CorpusReader, DocStore, Document, Matrix, StagingDir};

use crate::error::{Context, Error, Result};
use crate::index::{Index, is_index};
use crate::manifest::{
    BM25_DIR, Bm25Component, CorpusFingerprint, CorpusInfo, DENSE_DIR, DOCS, DenseComponent,
    Manifest,
};
use crate::shard::{ShardInfo, ShardSpec};

/// Where a dense component's vectors come from.
pub enum Vectors {
    /// Rows a program holds: row `i` is the vector of document `ids[i]` (any order;
    /// every document needs exactly one).
    InMemory {
        /// The document id of each row.
        ids: Vec<String>,
        /// The vectors.
        matrix: Matrix,
    },
    /// A `.npy` file and the ids file naming its rows.
    Npy {
        /// The vectors (`.npy`, float32).
        vectors: PathBuf,
        /// One document id per line, in row order.
        ids: PathBuf,
    },
    /// A sentence-transformers model folder that encodes every document (title and
    /// text joined as BEIR does). The index records the encoder, so queries can be
    /// searched by text.
    #[cfg(feature = "encoder")]
    Model {
        /// The model folder.
        dir: PathBuf,
        /// Batch size, maximum length, prefixes.
        options: dredge_embed::EncoderOptions,
    },
}

/// A dense component to build.
pub struct DenseBuild {
    /// The component's name: it lives in `dense/<name>/`. Letters, digits, `-`,
    /// `_` and `.`, not starting with `.`.
    pub name: String,
    /// Where the vectors come from.
    pub vectors: Vectors,
    /// The similarity searches rank by.
    pub similarity: dredge_ann::Similarity,
    /// HNSW (with its parameters) or flat.
    pub ann: dredge_ann::Ann,
}

impl DenseBuild {
    /// A component named `default` of `vectors`, cosine similarity, HNSW with its
    /// default parameters.
    pub fn new(vectors: Vectors) -> Self {
        DenseBuild {
            name: "default".into(),
            vectors,
            similarity: dredge_ann::Similarity::Cosine,
            ann: dredge_ann::Ann::Hnsw(dredge_ann::HnswParams::default()),
        }
    }
}

/// Where a build stands, told to the progress callback.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Progress {
    /// Documents read so far (sent every 1,024 documents, and at the end).
    Documents {
        /// Documents read.
        read: u64,
    },
    /// Documents counted so far by a shard's first pass over the whole corpus.
    Counting {
        /// Documents counted.
        read: u64,
    },
    /// The corpus is read; BM25 and the document table are being written.
    WritingIndex,
    /// Documents encoded so far, of `total`.
    Encoding {
        /// Encoded.
        done: usize,
        /// To encode.
        total: usize,
    },
    /// The documents are encoded.
    #[cfg(feature = "encoder")]
    Encoded {
        /// What encoding did.
        stats: Box<dredge_embed::EncodeStats>,
        /// The model.
        encoder: Box<dredge_embed::EncoderDescription>,
    },
    /// The dense component's structure is being built.
    BuildingDense {
        /// Vectors.
        rows: usize,
        /// Their dimension.
        cols: usize,
    },
}

/// The documents of a build: a corpus file (or BEIR folder), or documents a program
/// gives.
pub enum Documents<'a> {
    /// `corpus.jsonl`, or a BEIR folder holding one.
    Corpus(PathBuf),
    /// Documents in order (their `line` is only used in messages).
    Iter(Box<dyn Iterator<Item = Result<Document>> + 'a>),
}

impl<'a> Documents<'a> {
    /// Documents held in memory.
    pub fn from_vec(docs: Vec<Document>) -> Self {
        Documents::Iter(Box::new(docs.into_iter().map(Ok)))
    }
}

/// Builds an index folder. The folder is written under a temporary name and renamed
/// when whole: an interrupted build leaves no index behind, and a failed rebuild
/// leaves the old index as it was.
///
/// ```
/// use dredge_core::{Document, Matrix};
/// use dredge_index::{DenseBuild, Documents, Index, IndexBuilder, Vectors};
/// # fn main() -> dredge_index::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let docs = vec![
///     Document { id: "d1".into(), title: "Bees".into(), text: "Bees dance to point at food.".into(), line: 1 },
///     Document { id: "d2".into(), title: "Bread".into(), text: "Sourdough needs a starter.".into(), line: 2 },
/// ];
/// let vectors = Vectors::InMemory {
///     ids: vec!["d1".into(), "d2".into()],
///     matrix: Matrix { rows: 2, cols: 3, data: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0] },
/// };
/// let mut dense = DenseBuild::new(vectors);
/// dense.ann = dredge_ann::Ann::Flat;
/// let index: Index = IndexBuilder::new(dir.path().join("index"))
///     .dense(dense)
///     .build(Documents::from_vec(docs))?;
/// assert_eq!(index.docs().len(), 2);
/// assert!(index.has_bm25() && index.has_dense());
/// # Ok(())
/// # }
/// ```
pub struct IndexBuilder<'p> {
    out: PathBuf,
    overwrite: bool,
    bm25: Option<BuildOptions>,
    dense: Option<DenseBuild>,
    threads: usize,
    shard: Option<ShardSpec>,
    progress: Box<dyn FnMut(Progress) + 'p>,
}

/// What a build made.
#[derive(Debug)]
pub struct BuildSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// Wall time.
    pub elapsed: Duration,
}

impl<'p> IndexBuilder<'p> {
    /// A build of the folder `out` (which must not exist, see
    /// [`IndexBuilder::overwrite`]) with BM25 (Pyserini's k1 = 0.9, b = 0.4) and
    /// no dense component.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        IndexBuilder {
            out: out.into(),
            overwrite: false,
            bm25: Some(BuildOptions::default()),
            dense: None,
            threads: 0,
            shard: None,
            progress: Box::new(|_| {}),
        }
    }

    /// Replaces `out` if it is an index (or an empty folder); anything else there
    /// is never deleted.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// BM25 build options; `None` builds no BM25 component.
    pub fn bm25(mut self, options: Option<BuildOptions>) -> Self {
        self.bm25 = options;
        self
    }

    /// Adds a dense component.
    pub fn dense(mut self, dense: DenseBuild) -> Self {
        self.dense = Some(dense);
        self
    }

    /// Threads for the dense component's graph (0: one per core). BM25's threads
    /// are in its [`BuildOptions`].
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Builds shard `i` of `n` of the corpus instead of all of it: the documents
    /// numbered `[i*N/n, (i+1)*N/n)` (see [`ShardSpec::range`]), found by a first
    /// pass that counts and fingerprints the whole corpus (recorded in the shard's
    /// manifest, so that [`crate::join_shards`] can check the shards belong
    /// together). Needs a corpus file. Vectors given as a `.npy` may cover the whole
    /// corpus: rows of documents of other shards are skipped.
    pub fn shard(mut self, shard: Option<ShardSpec>) -> Self {
        self.shard = shard;
        self
    }

    /// Calls `progress` as the build goes.
    pub fn progress(mut self, progress: impl FnMut(Progress) + 'p) -> Self {
        self.progress = Box::new(progress);
        self
    }

    /// Builds the index and opens it.
    pub fn build(self, documents: Documents<'_>) -> Result<Index> {
        let out = self.out.clone();
        self.build_summary(documents)?;
        Index::open(out)
    }

    /// Builds the index and says what was built.
    pub fn build_summary(mut self, documents: Documents<'_>) -> Result<BuildSummary> {
        let start = Instant::now();
        if let Some(d) = &self.dense {
            check_component_name(&d.name)?;
        }
        if self.bm25.is_none() && self.dense.is_none() {
            return Err(Error::Invalid(
                "an index needs BM25 or a dense component: nothing to build".into(),
            ));
        }
        // Read the vectors (or load the model) before the corpus, so that a bad
        // file fails fast.
        let source = match self.dense.as_ref().map(|d| &d.vectors) {
            Some(Vectors::Npy { vectors, ids }) => Some(Loaded::Vectors {
                origin: Some((vectors.clone(), ids.clone())),
                rows: dredge_core::read_vectors(vectors, ids)?,
            }),
            Some(Vectors::InMemory { .. }) => None,
            #[cfg(feature = "encoder")]
            Some(Vectors::Model { dir, options }) => Some(Loaded::Encoder(Box::new(
                dredge_embed::Encoder::load(dir, options)
                    .context_with(|| format!("loading the model {}", dir.display()))?,
            ))),
            None => None,
        };
        check_target(&self.out, self.overwrite)?;
        // A shard's range needs the corpus's size: a first pass counts (and
        // fingerprints) it all.
        let whole = match (&self.shard, &documents) {
            (None, _) => None,
            (Some(_), Documents::Corpus(path)) => Some(self.whole_corpus(path)?),
            (Some(spec), Documents::Iter(_)) => {
                return Err(Error::Invalid(format!(
                    "building shard {spec} needs a corpus file (documents given one by one cannot be counted first)"
                )));
            }
        };
        let range = match (&self.shard, &whole) {
            (Some(spec), Some(whole)) => spec.range(whole.documents),
            _ => (0, u64::MAX),
        };
        let staging = StagingDir::new(&self.out, self.overwrite)?;

        let (corpus_path, mut iter, mut reader): (String, Box<dyn Iterator<Item = _>>, _) =
            match documents {
                Documents::Corpus(path) => {
                    let reader = CorpusReader::open(&path)?;
                    let label = reader.path().display().to_string();
                    (label, Box::new(std::iter::empty()), Some(reader))
                }
                Documents::Iter(iter) => ("<memory>".to_owned(), iter, None),
            };
        let mut builder = match &self.bm25 {
            Some(options) => Some(Bm25Builder::create(staging.path().join(BM25_DIR), options)?),
            None => None,
        };
        let mut docs = DocStore::new();
        let mut fingerprint = CorpusFingerprint::new();
        let mut empty_in_memory = 0u64;
        let mut read = 0u64;
        let mut number = 0u64;
        let mut empty_in_shard = 0u64;
        loop {
            if number >= range.1 {
                break;
            }
            let empty_before = reader.as_ref().map_or(0, |r| r.empty_texts());
            let doc = match reader.as_mut() {
                Some(r) => r.next().map(|d| d.map_err(Error::from)),
                None => iter.next(),
            };
            let Some(doc) = doc else { break };
            let doc = doc?;
            number += 1;
            if number <= range.0 {
                continue;
            }
            if reader
                .as_ref()
                .is_some_and(|r| r.empty_texts() > empty_before)
            {
                empty_in_shard += 1;
            }
            if reader.is_none() {
                // The corpus reader checks ids; documents given by a program too.
                if let Some(problem) = dredge_core::id_problem(&doc.id) {
                    return Err(Error::Invalid(format!("document {}: {problem}", read + 1)));
                }
                if doc.text.trim().is_empty() {
                    empty_in_memory += 1;
                }
                if docs.doc_id(&doc.id).is_some() {
                    return Err(Error::Invalid(format!(
                        "duplicate document id `{}` (document {})",
                        doc.id,
                        read + 1
                    )));
                }
            }
            fingerprint.add(&doc);
            if let Some(builder) = builder.as_mut() {
                builder.add(&doc.title, &doc.text)?;
            }
            docs.push(&doc.id, &doc.title, &doc.text);
            read += 1;
            if read.is_multiple_of(1024) {
                (self.progress)(Progress::Documents { read });
            }
        }
        (self.progress)(Progress::Documents { read });
        (self.progress)(Progress::WritingIndex);
        let empty_texts = if reader.is_some() {
            empty_in_shard
        } else {
            empty_in_memory
        };
        let info = builder
            .map(|b| b.finish())
            .transpose()
            .context_with(|| format!("building the BM25 index of {corpus_path}"))?;
        docs.save(staging.path().join(DOCS))?;
        let mut manifest = Manifest::new(CorpusInfo {
            path: corpus_path,
            fingerprint: fingerprint.finish(),
            documents: docs.len() as u64,
            empty_texts,
        });
        if let (Some(spec), Some(whole)) = (self.shard, whole) {
            manifest.shard = Some(ShardInfo {
                index: spec.index,
                count: spec.count,
                first: range.0,
                corpus: whole,
            });
        }
        manifest.components.bm25 = info.map(|info| Bm25Component {
            path: BM25_DIR.to_owned(),
            info,
        });
        if let Some(d) = self.dense.take() {
            let component = self.build_dense(d, source, &docs, staging.path())?;
            manifest.components.dense.insert(component.0, component.1);
        }
        manifest.record_files(staging.path())?;
        manifest.save(staging.path())?;
        staging.commit()?;
        Ok(BuildSummary {
            manifest,
            elapsed: start.elapsed(),
        })
    }

    /// The whole corpus at `path`, read once: its size and fingerprint.
    fn whole_corpus(&mut self, path: &Path) -> Result<CorpusInfo> {
        let mut reader = CorpusReader::open(path)?;
        let mut fingerprint = CorpusFingerprint::new();
        let mut documents = 0u64;
        for doc in reader.by_ref() {
            fingerprint.add(&doc?);
            documents += 1;
            if documents.is_multiple_of(1024) {
                (self.progress)(Progress::Counting { read: documents });
            }
        }
        (self.progress)(Progress::Counting { read: documents });
        Ok(CorpusInfo {
            path: reader.path().display().to_string(),
            fingerprint: fingerprint.finish(),
            documents,
            empty_texts: reader.empty_texts(),
        })
    }

    fn build_dense(
        &mut self,
        d: DenseBuild,
        source: Option<Loaded>,
        docs: &DocStore,
        staging: &Path,
    ) -> Result<(String, DenseComponent)> {
        let mut vectors_file = None;
        #[allow(unused_mut)]
        let mut encoder = None;
        #[allow(unused_mut)]
        let mut encoded = None;
        let matrix = match (d.vectors, source) {
            (Vectors::InMemory { ids, matrix }, _) => {
                let source = dredge_ann::VectorSource {
                    vectors: Path::new("<vectors given in memory>"),
                    ids: Path::new("<their ids>"),
                };
                dredge_ann::align_to_docs(docs, &ids, &matrix, source)?
            }
            (
                Vectors::Npy { .. },
                Some(Loaded::Vectors {
                    origin: Some((vectors, ids)),
                    rows: (names, matrix),
                }),
            ) => {
                vectors_file = Some(vectors.display().to_string());
                let (names, matrix) = match self.shard {
                    Some(_) => rows_of(docs, names, &matrix),
                    None => (names, matrix),
                };
                let source = dredge_ann::VectorSource {
                    vectors: &vectors,
                    ids: &ids,
                };
                dredge_ann::align_to_docs(docs, &names, &matrix, source)?
            }
            #[cfg(feature = "encoder")]
            (Vectors::Model { .. }, Some(Loaded::Encoder(model))) => {
                let (matrix, stats) = self.encode_docs(&model, docs)?;
                encoder = Some(model.description());
                encoded = Some(serde_json::to_value(&stats).map_err(|e| {
                    Error::Invalid(format!("recording the encoding statistics: {e}"))
                })?);
                matrix
            }
            _ => return Err(Error::Invalid("the dense source was not loaded".into())),
        };
        (self.progress)(Progress::BuildingDense {
            rows: matrix.rows,
            cols: matrix.cols,
        });
        let path = format!("{DENSE_DIR}/{}", d.name);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| Error::Invalid(format!("starting the build threads: {e}")))?;
        let index = pool
            .install(|| {
                dredge_ann::DenseIndex::build(staging.join(&path), &matrix, d.similarity, &d.ann)
            })
            .context_with(|| "building the dense index".to_owned())?;
        Ok((
            d.name,
            DenseComponent {
                ann: index.manifest().clone(),
                path,
                vectors: vectors_file,
                encoder,
                encoded,
                other: Default::default(),
            },
        ))
    }

    /// Encodes every document (title and text joined as BEIR does) in DocId order.
    #[cfg(feature = "encoder")]
    fn encode_docs(
        &mut self,
        encoder: &dredge_embed::Encoder,
        docs: &DocStore,
    ) -> Result<(Matrix, dredge_embed::EncodeStats)> {
        let texts: Vec<String> = (0..docs.len() as u32)
            .map(|i| {
                let doc = dredge_core::DocId(i);
                dredge_core::document_text(docs.title(doc), docs.text(doc))
            })
            .collect();
        let progress = &mut self.progress;
        let (matrix, stats) = encoder
            .encode(&texts, dredge_embed::TextKind::Passage, &mut |p| {
                progress(Progress::Encoding {
                    done: p.done,
                    total: p.total,
                })
            })
            .context_with(|| "encoding the corpus".to_owned())?;
        (self.progress)(Progress::Encoded {
            stats: Box::new(stats.clone()),
            encoder: Box::new(encoder.description()),
        });
        Ok((matrix, stats))
    }
}

/// The rows of `matrix` (named by `names`) that belong to documents of `docs`.
fn rows_of(docs: &DocStore, names: Vec<String>, matrix: &Matrix) -> (Vec<String>, Matrix) {
    let mut kept = Vec::new();
    let mut data = Vec::new();
    for (row, name) in names.into_iter().enumerate() {
        if docs.doc_id(&name).is_some() {
            data.extend_from_slice(matrix.row(row));
            kept.push(name);
        }
    }
    let rows = kept.len();
    (
        kept,
        Matrix {
            rows,
            cols: matrix.cols,
            data,
        },
    )
}

/// A dense component's source, read or loaded before the corpus.
enum Loaded {
    /// Ids and rows of a `.npy`.
    Vectors {
        origin: Option<(PathBuf, PathBuf)>,
        rows: (Vec<String>, Matrix),
    },
    /// A model.
    #[cfg(feature = "encoder")]
    Encoder(Box<dredge_embed::Encoder>),
}

/// Checks that `out` may be written: absent, or an index (or an empty folder) with
/// `overwrite`.
pub fn check_target(out: &Path, overwrite: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::index(
            out,
            "already exists (pass --overwrite to replace it)",
        ));
    }
    let empty_dir = out.is_dir()
        && fs_err::read_dir(out)
            .map_err(dredge_core::Error::from)?
            .next()
            .is_none();
    if !is_index(out) && !empty_dir {
        return Err(Error::index(
            out,
            "exists and is not a dredge index; --overwrite only replaces an index (refusing to delete it)",
        ));
    }
    Ok(())
}

/// A dense component's name names a folder: letters, digits, `-`, `_` and `.`, not
/// starting with `.`.
fn check_component_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::Invalid(format!(
            "--dense-name `{name}`: use letters, digits, `-`, `_` and `.` (it names a folder)"
        )));
    }
    Ok(())
}
