//! An index folder, opened: its manifest, its document table, and retrievers over
//! its components.
//!
//! ```text
//! INDEX/
//!   manifest.json   format, versions, corpus fingerprint, components (crate::manifest)
//!   docs.bin        ids, titles and texts by DocId (dredge_core::DocStore)
//!   bm25/           tantivy files + dredge-bm25.json (dredge_bm25)
//!   dense/<name>/   dense.json + vectors.bin (flat) or hnsw.bin (HNSW, rows included) (dredge_ann)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dredge_ann::DenseIndex;
use dredge_bm25::{Bm25Index, Bm25Params};
use dredge_core::{DocStore, HybridRetriever, Matrix, Retriever};

use crate::dense::{DenseRetriever, EncoderSettings, LazyEncoder};
use crate::error::{Error, Result};
use crate::manifest::{DOCS, DenseComponent, EncoderInfo, MANIFEST, Manifest};
use crate::shard::{
    Opener, Part, SHARDED_FORMAT, ShardedRetriever, Shards, format_of, open_shards,
};
use crate::spec::{Bm25Spec, DenseSearch, DenseSpec, Retrieval};
#[cfg(feature = "encoder")]
use crate::vectors::QueryVectors;

/// An index folder whose manifest has been read and checked, with its document
/// table open (memory-mapped). Components are opened when a retriever asks for them.
pub struct Index {
    path: PathBuf,
    manifest: Manifest,
    docs: DocStore,
    in_memory: BTreeMap<String, Arc<DenseIndex>>,
    encoder: EncoderSettings,
    /// The shards, when this is a sharded index (`manifest` then describes the
    /// whole: the corpus, and the components every shard has).
    shards: Option<Shards>,
    /// The components whose files have been verified against their checksums.
    verified: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// False when this index (or a shard) was built before checksums.
    checksums: bool,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("documents", &self.docs.len())
            .field("bm25", &self.has_bm25())
            .field("dense", &self.dense_names())
            .finish()
    }
}

impl Index {
    /// Opens the index folder `path`: checks that it is a dredge index this version
    /// reads and that its document table agrees with the manifest.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::index(
                path,
                format!(
                    "no such index (build one with `dredge index --corpus CORPUS --out {}`)",
                    path.display()
                ),
            ));
        }
        if !path.is_dir() {
            return Err(Error::index(path, "is a file, not an index folder"));
        }
        if !path.join(MANIFEST).is_file() {
            if path.join(DOCS).exists() || path.join(crate::manifest::BM25_DIR).exists() {
                return Err(Error::index(
                    path.join(MANIFEST),
                    format!("missing; {}", crate::verify::REBUILD),
                ));
            }
            return Err(Error::index(
                path,
                format!(
                    "not a dredge index: it has no {MANIFEST} (build one with `dredge index --corpus CORPUS --out {}`)",
                    path.display()
                ),
            ));
        }
        if format_of(path).as_deref() == Some(SHARDED_FORMAT) {
            return Self::open_sharded(path);
        }
        let manifest = Manifest::read(path)?;
        if let Some(files) = &manifest.files {
            crate::verify::verify(path, files, DOCS)?;
        }
        let docs = DocStore::open(path.join(DOCS))?;
        if docs.len() as u64 != manifest.corpus.documents {
            return Err(Error::index(
                path.join(DOCS),
                format!(
                    "holds {} documents but the manifest says {}; the index is damaged (rebuild it)",
                    docs.len(),
                    manifest.corpus.documents
                ),
            ));
        }
        let checksums = manifest.has_checksums();
        let mut verified = std::collections::BTreeSet::new();
        verified.insert(DOCS.to_owned());
        Ok(Index {
            path: path.to_path_buf(),
            manifest,
            docs,
            in_memory: BTreeMap::new(),
            encoder: EncoderSettings::default(),
            shards: None,
            verified: std::sync::Mutex::new(verified),
            checksums,
        })
    }

    /// Opens a sharded index (see [`crate::join_shards`]): every shard, and one
    /// document table and manifest for the whole.
    fn open_sharded(path: &Path) -> Result<Self> {
        let (set, shards) = open_shards(path)?;
        let mut manifest = shards.parts[0].0.manifest.clone();
        manifest.corpus = set.corpus.clone();
        manifest.shard = None;
        if let (Some(bm25), Some(stats)) = (&mut manifest.components.bm25, &set.bm25) {
            bm25.info.documents = stats.documents;
            bm25.info.documents_with_terms = stats.documents_with_terms;
            bm25.info.total_terms = stats.total_terms;
            bm25.info.segments = shards
                .parts
                .iter()
                .map(|(p, _)| {
                    p.manifest
                        .components
                        .bm25
                        .as_ref()
                        .map_or(0, |c| c.info.segments)
                })
                .sum();
        }
        for dense in manifest.components.dense.values_mut() {
            dense.ann.count = set.corpus.documents as usize;
        }
        let docs = DocStore::concat(
            shards
                .parts
                .iter()
                .map(|(p, _)| DocStore::open(p.path.join(DOCS)))
                .collect::<dredge_core::Result<_>>()?,
        )?;
        let checksums =
            set.manifest_checksum.is_some() && shards.parts.iter().all(|(part, _)| part.checksums);
        Ok(Index {
            path: path.to_path_buf(),
            manifest,
            docs,
            in_memory: BTreeMap::new(),
            encoder: EncoderSettings::default(),
            shards: Some(shards),
            verified: Default::default(),
            checksums,
        })
    }

    /// A sharded index whose retrievers hold one shard's component in memory at a
    /// time (`on`), for indexes larger than memory: a batch of queries is searched
    /// on each shard in turn, the shard opened, searched and dropped; scores of
    /// given documents are asked shard by shard too. Results are the same; each
    /// call pays the opening of every shard it needs, so hand queries in large
    /// batches (the batch searcher and the miner do: 4,096 queries a batch).
    /// No effect on an index that is not sharded.
    pub fn one_shard_at_a_time(mut self, on: bool) -> Self {
        if let Some(shards) = &mut self.shards {
            shards.one_at_a_time = on;
        }
        self
    }

    /// False when the index (or one of its shards) was built before dredge
    /// recorded checksums (index format 1): damage to its files is then not
    /// detected. Front ends warn.
    pub fn has_checksums(&self) -> bool {
        self.checksums
    }

    /// Verifies the files of the component at `component` (relative to the folder)
    /// against the manifest's checksums, once per opened index.
    fn verify_component(&self, component: &str) -> Result<()> {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.contains(component) {
            return Ok(());
        }
        match &self.manifest.files {
            Some(files) => crate::verify::verify(&self.path, files, component)?,
            // An index built before checksums: tantivy's own footers still say
            // whether its files are whole.
            None if self
                .manifest
                .components
                .bm25
                .as_ref()
                .is_some_and(|b| b.path == component) =>
            {
                crate::verify::verify_tantivy(&self.path.join(component))?
            }
            None => {}
        }
        verified.insert(component.to_owned());
        Ok(())
    }

    /// True when this is a sharded index.
    pub fn is_sharded(&self) -> bool {
        self.shards.is_some()
    }

    /// The number of shards (1 for an index that is not sharded).
    pub fn shard_count(&self) -> usize {
        self.shards.as_ref().map_or(1, |s| s.parts.len())
    }

    fn not_sharded(&self, what: &str) -> Result<()> {
        match self.shards {
            Some(_) => Err(Error::index(
                &self.path,
                format!(
                    "a sharded index has no single {what}; search it through a retriever (Index::retriever)"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The same index, encoding query text with `settings` (another folder for the
    /// recorded model, the batch size).
    pub fn with_encoder_settings(mut self, settings: EncoderSettings) -> Self {
        if let Some(shards) = &mut self.shards {
            for (part, _) in &mut shards.parts {
                if let Some(part) = Arc::get_mut(part) {
                    part.encoder = settings.clone();
                }
            }
        }
        self.encoder = settings;
        self
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The documents: ids, titles and texts by [`dredge_core::DocId`].
    pub fn docs(&self) -> &DocStore {
        &self.docs
    }

    /// True when the index has a BM25 component.
    pub fn has_bm25(&self) -> bool {
        self.manifest.components.bm25.is_some()
    }

    /// True when the index has at least one dense component.
    pub fn has_dense(&self) -> bool {
        !self.manifest.components.dense.is_empty() || !self.in_memory.is_empty()
    }

    /// The names of the dense components, those on disk then those in memory.
    pub fn dense_names(&self) -> Vec<&str> {
        self.manifest
            .components
            .dense
            .keys()
            .chain(self.in_memory.keys())
            .map(String::as_str)
            .collect()
    }

    /// Opens the BM25 component with its recorded parameters.
    pub fn bm25(&self) -> Result<Bm25Index> {
        self.not_sharded("BM25 component")?;
        let Some(component) = &self.manifest.components.bm25 else {
            return Err(Error::index(&self.path, "this index has no BM25 component"));
        };
        self.verify_component(&component.path)?;
        let index = Bm25Index::open(self.path.join(&component.path))?;
        if index.len() as u64 != self.manifest.corpus.documents {
            return Err(Error::index(
                &self.path,
                format!(
                    "the BM25 index holds {} documents but the manifest says {}; rebuild the index",
                    index.len(),
                    self.manifest.corpus.documents
                ),
            ));
        }
        Ok(index)
    }

    /// The manifest entry of dense component `name`, or of the only one when `name`
    /// is `None`, with its name.
    pub fn dense_component(&self, name: Option<&str>) -> Result<(&str, &DenseComponent)> {
        let components = &self.manifest.components.dense;
        let names = || components.keys().cloned().collect::<Vec<_>>().join(", ");
        let none = || {
            Error::index(
                &self.path,
                "this index has no dense component (build one with `dredge index --model DIR`, or `--vectors V.npy --vector-ids IDS`)",
            )
        };
        let (name, entry) = match name {
            Some(name) => match components.get_key_value(name) {
                Some(found) => found,
                None if components.is_empty() => return Err(none()),
                None => {
                    return Err(Error::index(
                        &self.path,
                        format!("no dense component `{name}` (it has: {})", names()),
                    ));
                }
            },
            None => match components.len() {
                1 => components.iter().next().expect("one component"),
                0 => return Err(none()),
                _ => {
                    return Err(Error::index(
                        &self.path,
                        format!(
                            "several dense components ({}); pick one with --dense-name",
                            names()
                        ),
                    ));
                }
            },
        };
        Ok((name.as_str(), entry))
    }

    /// Opens dense component `name` (the only one when `None`) from disk.
    pub fn dense(&self, name: Option<&str>) -> Result<DenseIndex> {
        self.not_sharded("dense component")?;
        let (name, entry) = self.dense_component(name)?;
        self.verify_component(&entry.path)?;
        let dense = DenseIndex::open(self.path.join(&entry.path))?;
        if dense.len() as u64 != self.manifest.corpus.documents {
            return Err(Error::index(
                &self.path,
                format!(
                    "the dense component `{name}` holds {} vectors but the manifest says {} documents; rebuild the index",
                    dense.len(),
                    self.manifest.corpus.documents
                ),
            ));
        }
        Ok(dense)
    }

    /// The vector dimension of dense component `name` (the only one when `None`).
    pub fn dense_dimension(&self, name: Option<&str>) -> Result<usize> {
        if let Some(index) = name.and_then(|n| self.in_memory.get(n)) {
            return Ok(index.dimension());
        }
        Ok(self.dense_component(name)?.1.ann.dimension)
    }

    /// Adds a dense component held in memory for this process (searched exactly):
    /// `vectors` row `i` is the vector of document `DocId(i)` (align rows given by id
    /// with `dredge_ann::align_to_docs`). The index folder is not changed. A
    /// [`DenseSpec`] selects it by `name`.
    pub fn add_dense_in_memory(
        &mut self,
        name: &str,
        vectors: Matrix,
        similarity: dredge_ann::Similarity,
    ) -> Result<()> {
        self.not_sharded("set of documents to add vectors to (add them to each shard)")?;
        if vectors.rows != self.docs.len() {
            return Err(Error::Invalid(format!(
                "{} vectors for an index of {} documents",
                vectors.rows,
                self.docs.len()
            )));
        }
        if self.manifest.components.dense.contains_key(name) {
            return Err(Error::Invalid(format!(
                "the index already has a dense component `{name}`"
            )));
        }
        let index = DenseIndex::in_memory(vectors, similarity)?;
        self.in_memory.insert(name.to_owned(), Arc::new(index));
        Ok(())
    }

    /// The encoder the dense component `name` (the only one when `None`) was built
    /// with; `None` when it was built from vectors given to dredge.
    pub fn recorded_encoder(&self, name: Option<&str>) -> Result<Option<&EncoderInfo>> {
        if name.is_some_and(|n| self.in_memory.contains_key(n)) {
            return Ok(None);
        }
        Ok(self.dense_component(name)?.1.encoder.as_ref())
    }

    /// The encoder the dense component `name` records, loaded (with this index's
    /// [`EncoderSettings`]). An error when it records none.
    #[cfg(feature = "encoder")]
    pub fn query_encoder(&self, name: Option<&str>) -> Result<Arc<dredge_embed::Encoder>> {
        let Some(description) = self.recorded_encoder(name)? else {
            return Err(Error::NoEncoder {
                component: self.component_label(name),
            });
        };
        let encoder = crate::dense::load_encoder(description, &self.encoder).map_err(|e| Error::Context {
            context: format!(
                "loading the model the index was built with ({}; a model folder given as an override points elsewhere)",
                description.model.display()
            ),
            source: Box::new(e.into()),
        })?;
        Ok(Arc::new(encoder))
    }

    /// Query vectors encoded with the model of the dense side of `spec`; `None` for
    /// BM25, which needs none.
    #[cfg(feature = "encoder")]
    pub fn query_vectors(&self, spec: &Retrieval) -> Result<Option<QueryVectors>> {
        match spec.dense_spec() {
            None => Ok(None),
            Some(d) => Ok(Some(QueryVectors::encoder(
                self.query_encoder(d.component.as_deref())?,
            ))),
        }
    }

    /// The retriever `spec` describes, for searches of `k` hits (which sizes a
    /// hybrid's default depth). Its dense side encodes query text with the model
    /// the component records when a query comes without a vector.
    pub fn retriever(&self, spec: &Retrieval, k: usize) -> Result<Arc<dyn Retriever>> {
        spec.validate()?;
        Ok(match spec {
            Retrieval::Bm25(b) => self.bm25_side(b)?,
            Retrieval::Dense(d) => self.dense_side(d)?,
            Retrieval::Hybrid(h) => Arc::new(HybridRetriever::new(
                self.bm25_side(&h.bm25)?,
                self.dense_side(&h.dense)?,
                h.fusion,
                h.depth_for(k),
            )?),
        })
    }

    /// BM25 with the parameters of `spec`: the component, or every shard's scoring
    /// with the collection's statistics.
    fn bm25_side(&self, spec: &Bm25Spec) -> Result<Arc<dyn Retriever>> {
        let Some(shards) = &self.shards else {
            return Ok(Arc::new(self.bm25_with(spec)?));
        };
        let stats = shards
            .stats
            .clone()
            .ok_or_else(|| Error::index(&self.path, "this index has no BM25 component"))?;
        // The term cache's budget is shared among the shards open together.
        let open_together = if shards.one_at_a_time {
            1
        } else {
            shards.parts.len()
        };
        let cache = dredge_bm25::DEFAULT_CACHE_BYTES / open_together;
        let spec = *spec;
        self.sharded("bm25", None, move |part| {
            let stats = stats.clone();
            Box::new(move || {
                let bm25 = part
                    .bm25_with(&spec)?
                    .with_collection(stats.clone())?
                    .with_cache_bytes(cache);
                Ok(Arc::new(bm25) as Arc<dyn Retriever>)
            })
        })
    }

    /// The dense side of `spec`: the component, or every shard's, searched with a
    /// query vector encoded once.
    fn dense_side(&self, spec: &DenseSpec) -> Result<Arc<dyn Retriever>> {
        if self.shards.is_none() {
            return Ok(Arc::new(self.dense_retriever(spec)?));
        }
        let encoder = self.lazy_encoder(spec.component.as_deref())?;
        let spec = spec.clone();
        self.sharded("dense", Some(encoder), move |part| {
            let spec = spec.clone();
            Box::new(move || Ok(Arc::new(part.dense_retriever(&spec)?) as Arc<dyn Retriever>))
        })
    }

    /// A retriever over the shards, each part from `opener(shard)`: opened now, or
    /// when needed with [`Index::one_shard_at_a_time`].
    fn sharded(
        &self,
        name: &str,
        encoder: Option<LazyEncoder>,
        opener: impl Fn(Arc<Index>) -> Opener,
    ) -> Result<Arc<dyn Retriever>> {
        let shards = self.shards.as_ref().expect("a sharded index");
        let parts = shards
            .parts
            .iter()
            .map(|(part, first)| {
                let open = opener(part.clone());
                let len = part.docs().len() as u32;
                let part = if shards.one_at_a_time {
                    Part::OneAtATime(open)
                } else {
                    Part::Open(open()?)
                };
                Ok((part, *first, len))
            })
            .collect::<Result<_>>()?;
        Ok(Arc::new(ShardedRetriever {
            name: name.into(),
            parts,
            encoder,
        }))
    }

    /// The encoder of dense component `name`, loaded when first needed.
    fn lazy_encoder(&self, name: Option<&str>) -> Result<LazyEncoder> {
        Ok(LazyEncoder {
            label: self.component_label(name),
            #[cfg(feature = "encoder")]
            description: self.recorded_encoder(name)?.cloned(),
            #[cfg(feature = "encoder")]
            settings: self.encoder.clone(),
            #[cfg(feature = "encoder")]
            loaded: Default::default(),
        })
    }

    /// The BM25 component with the parameters of `spec`.
    pub fn bm25_with(&self, spec: &Bm25Spec) -> Result<Bm25Index> {
        let bm25 = self.bm25()?;
        let defaults = bm25.params();
        let params = Bm25Params::new(spec.k1.unwrap_or(defaults.k1), spec.b.unwrap_or(defaults.b))?;
        Ok(bm25.with_params(params)?)
    }

    /// The dense component of `spec` as a retriever.
    pub fn dense_retriever(&self, spec: &DenseSpec) -> Result<DenseRetriever> {
        let name = spec.component.as_deref();
        let encoder = self.lazy_encoder(name)?;
        if let Some(index) = name.and_then(|n| self.in_memory.get(n)) {
            return Ok(DenseRetriever::new(index.clone(), encoder));
        }
        let dense = self.dense(name)?;
        let exact = self.is_exact(spec);
        let ef = match spec.search {
            DenseSearch::Hnsw { ef } => ef,
            DenseSearch::Exact => dredge_ann::DEFAULT_EF,
        };
        Ok(DenseRetriever::new(
            Arc::new(dense.with_ef(ef).with_exact(exact)),
            encoder,
        ))
    }

    /// True when dense search by `spec` is exact: asked for, or a component without
    /// a graph.
    pub fn is_exact(&self, spec: &DenseSpec) -> bool {
        let name = spec.component.as_deref();
        spec.search == DenseSearch::Exact
            || name.is_some_and(|n| self.in_memory.contains_key(n))
            || self
                .dense_component(name)
                .is_ok_and(|(_, entry)| entry.is_flat())
    }

    /// What a search of `k` hits by `spec` does, for summaries: `bm25`, `dense hnsw
    /// ef=128`, `hybrid rrf(k=60) of bm25 and dense exact, top 1000 of each`.
    pub fn describe(&self, spec: &Retrieval, k: usize) -> String {
        let dense = |d: &DenseSpec| match (self.is_exact(d), d.search) {
            (false, DenseSearch::Hnsw { ef }) => format!("hnsw ef={}", ef.max(k)),
            _ => "exact".to_owned(),
        };
        match spec {
            Retrieval::Bm25(_) => "bm25".into(),
            Retrieval::Dense(d) => format!("dense {}", dense(d)),
            Retrieval::Hybrid(h) => format!(
                "hybrid {} of bm25 and dense {}, top {} of each",
                h.fusion.describe(),
                dense(&h.dense),
                h.depth_for(k)
            ),
        }
    }

    /// Changes the manifest and rewrites it atomically (to record a new component).
    pub fn update_manifest(&mut self, change: impl FnOnce(&mut Manifest)) -> Result<()> {
        self.not_sharded("manifest to change")?;
        change(&mut self.manifest);
        self.manifest.save(&self.path)
    }

    fn component_label(&self, name: Option<&str>) -> String {
        let name = name
            .map(str::to_owned)
            .or_else(|| self.dense_component(None).ok().map(|(n, _)| n.to_owned()))
            .unwrap_or_default();
        format!("{} (dense component `{name}`)", self.path.display())
    }
}

/// True when `path` is an existing folder holding a dredge manifest (and so may be
/// replaced by a build with `overwrite`).
pub fn is_index(path: &Path) -> bool {
    path.join(MANIFEST).is_file()
}
