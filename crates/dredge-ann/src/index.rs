//! [`DenseIndex`]: a folder holding the vectors, optionally an HNSW graph, and a
//! manifest that says how they were built.
//!
//! ```text
//! <dir>/dense.json   manifest (format name and version, similarity, dimension,
//!                    count, the ANN and its parameters)
//! <dir>/vectors.bin  the rows in DocId order (see VectorStore), when ann is flat
//! <dir>/hnsw.bin     the HNSW graph with the rows in its layer-0 records, when ann
//!                    is hnsw (the rows are then stored there only)
//! ```
//!
//! Files are written under temporary names and renamed; the manifest is written
//! last, so a folder without it is not an index.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use dredge_core::{DocId, Hit, Matrix, QueryInput, Retriever, Score, write_json};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::exact;
use crate::hnsw::{self, Graph, HnswParams, ScratchPool};
use crate::kernels;
use crate::similarity::Similarity;
use crate::store::VectorStore;

/// The manifest's file name.
pub const MANIFEST_FILE: &str = "dense.json";
/// The vector store's file name.
pub const VECTORS_FILE: &str = "vectors.bin";
/// The HNSW graph's file name.
pub const GRAPH_FILE: &str = "hnsw.bin";
/// The `format` field of the manifest.
pub const FORMAT_NAME: &str = "dredge-dense";
/// The manifest format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Rows whose squared norm is within this of 1 count as normalised for cosine.
const UNIT_TOLERANCE: f32 = 1e-5;
/// `ef` used by [`Retriever::search`] unless [`DenseIndex::with_ef`] says otherwise.
pub const DEFAULT_EF: usize = 128;

/// How the index finds neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ann {
    /// No graph: every search is exact.
    Flat,
    /// An HNSW graph (hnswlib's construction algorithm, dredge's own code).
    Hnsw(HnswParams),
}

/// The contents of `dense.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version ([`FORMAT_VERSION`]). Written as `format_version`, the
    /// name every dredge file uses; `version`, the name of the first release, is
    /// read too.
    #[serde(alias = "version")]
    pub format_version: u32,
    /// The similarity searches rank by.
    pub similarity: Similarity,
    /// Vector dimension.
    pub dimension: usize,
    /// Number of vectors (documents).
    pub count: usize,
    /// The ANN structure and its parameters.
    pub ann: Ann,
    /// Name and version of the tool that wrote the index.
    pub tool: String,
}

impl Manifest {
    /// The manifest of an index this version of dredge builds.
    fn new(similarity: Similarity, dimension: usize, count: usize, ann: Ann) -> Self {
        Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            similarity,
            dimension,
            count,
            ann,
            tool: concat!("dredge-ann ", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// A dense vector index over the documents of a corpus, by [`DocId`].
///
/// Opened indexes are memory-mapped ([`DenseIndex::in_memory`] holds its rows in
/// memory); searching allocates only the returned hits
/// (HNSW scratch buffers are pooled, exact search reuses its per-thread heaps).
#[derive(Debug)]
pub struct DenseIndex {
    /// The folder it was opened from; `None` for an index held in memory.
    dir: Option<PathBuf>,
    manifest: Manifest,
    store: VectorStore,
    graph: Option<Graph>,
    pool: ScratchPool,
    ef: usize,
    exact: bool,
}

impl DenseIndex {
    /// Builds an index of `vectors` (row `i` is the document `DocId(i)`) in the
    /// folder `dir` (created if absent; files in it with the index's names are
    /// replaced) and opens it.
    ///
    /// Rows must be finite; with [`Similarity::Cosine`] they are L2-normalised (a
    /// copy is made unless every row already has unit norm within 1e-5) and must
    /// not be all zeros. HNSW insertion runs on the current rayon pool.
    pub fn build(
        dir: impl AsRef<Path>,
        vectors: &Matrix,
        similarity: Similarity,
        ann: &Ann,
    ) -> Result<DenseIndex> {
        let dir = dir.as_ref();
        let data = checked_rows(vectors, similarity, ann)?;
        let dim = vectors.cols;
        fs_err::create_dir_all(dir)?;
        let vectors_path = dir.join(VECTORS_FILE);
        let graph_path = dir.join(GRAPH_FILE);
        // The file of the other kind of index, left by an earlier build in this folder.
        let stale = match ann {
            Ann::Hnsw(params) => {
                hnsw::build(&data, dim, similarity, params)?.write(&graph_path, &data, dim)?;
                vectors_path
            }
            Ann::Flat => {
                VectorStore::write(&vectors_path, &data, dim, similarity.normalizes())?;
                graph_path
            }
        };
        if stale.exists() {
            fs_err::remove_file(&stale)?;
        }
        drop(data);
        let manifest = Manifest::new(similarity, dim, vectors.rows, *ann);
        write_json(dir.join(MANIFEST_FILE), &manifest)?;
        DenseIndex::open(dir)
    }

    /// A flat (exact-search) index of `vectors` held in memory, for one run: what
    /// [`DenseIndex::build`] with [`Ann::Flat`] gives, checked the same way, without
    /// writing, syncing and mapping a file that would be deleted at the end (mining
    /// with `--doc-vectors`).
    pub fn in_memory(vectors: Matrix, similarity: Similarity) -> Result<DenseIndex> {
        let dim = vectors.cols;
        let rows = match checked_rows(&vectors, similarity, &Ann::Flat)? {
            Cow::Owned(normalised) => normalised,
            Cow::Borrowed(_) => vectors.data,
        };
        Ok(DenseIndex::from_parts(
            None,
            Manifest::new(similarity, dim, vectors.rows, Ann::Flat),
            VectorStore::in_memory(rows, dim, similarity.normalizes()),
            None,
        ))
    }

    /// Opens an index written by [`DenseIndex::build`], checking that its files
    /// agree with the manifest and with each other.
    pub fn open(dir: impl AsRef<Path>) -> Result<DenseIndex> {
        let dir = dir.as_ref();
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = fs_err::read_to_string(&manifest_path)?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            Error::format(&manifest_path, format!("not a dense index manifest: {e}"))
        })?;
        if manifest.format != FORMAT_NAME {
            return Err(Error::format(
                &manifest_path,
                format!("format `{}` is not `{FORMAT_NAME}`", manifest.format),
            ));
        }
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::format(
                &manifest_path,
                format!(
                    "format version {} (this dredge reads {FORMAT_VERSION}; rebuild the index)",
                    manifest.format_version
                ),
            ));
        }
        let normalized = manifest.similarity.normalizes();
        let (store, graph) = match manifest.ann {
            Ann::Hnsw(_) => {
                let path = dir.join(GRAPH_FILE);
                let graph = Graph::open(&path, manifest.count, manifest.dimension)?;
                (graph.vector_store(&path, normalized)?, Some(graph))
            }
            Ann::Flat => (Self::open_vectors(dir, &manifest)?, None),
        };
        Ok(DenseIndex::from_parts(
            Some(dir.to_path_buf()),
            manifest,
            store,
            graph,
        ))
    }

    /// An index of these parts, with the default search settings.
    fn from_parts(
        dir: Option<PathBuf>,
        manifest: Manifest,
        store: VectorStore,
        graph: Option<Graph>,
    ) -> DenseIndex {
        DenseIndex {
            dir,
            manifest,
            store,
            graph,
            pool: ScratchPool::default(),
            ef: DEFAULT_EF,
            exact: false,
        }
    }

    /// The `vectors.bin` of a flat index, checked against its manifest.
    fn open_vectors(dir: &Path, manifest: &Manifest) -> Result<VectorStore> {
        let vectors_path = dir.join(VECTORS_FILE);
        let store = VectorStore::open(&vectors_path)?;
        if store.len() != manifest.count || store.dim() != manifest.dimension {
            return Err(Error::format(
                &vectors_path,
                format!(
                    "holds {} x {} vectors, the manifest says {} x {}",
                    store.len(),
                    store.dim(),
                    manifest.count,
                    manifest.dimension
                ),
            ));
        }
        if store.is_normalized() != manifest.similarity.normalizes() {
            return Err(Error::format(
                &vectors_path,
                format!(
                    "rows are not stored as {} similarity needs",
                    manifest.similarity
                ),
            ));
        }
        Ok(store)
    }

    /// The same index, searching with `ef` candidates when [`Retriever::search`] is
    /// used (default [`DEFAULT_EF`]).
    pub fn with_ef(mut self, ef: usize) -> Self {
        self.ef = ef;
        self
    }

    /// The same index, searching every vector exactly when [`Retriever::search`]
    /// and [`Retriever::search_batch`] are used, even when it has a graph.
    pub fn with_exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// The folder the index lives in (`None` for one built with
    /// [`DenseIndex::in_memory`]).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Vector dimension.
    pub fn dimension(&self) -> usize {
        self.manifest.dimension
    }

    /// The similarity searches rank by.
    pub fn similarity(&self) -> Similarity {
        self.manifest.similarity
    }

    /// The ANN structure.
    pub fn ann(&self) -> &Ann {
        &self.manifest.ann
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// True when the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The stored rows (normalised for cosine).
    pub fn vectors(&self) -> &VectorStore {
        &self.store
    }

    /// Checks a query and, for cosine, normalises it into `buf`.
    fn prepare<'q>(
        &self,
        query: &'q [f32],
        buf: &'q mut Vec<f32>,
    ) -> std::result::Result<&'q [f32], String> {
        if query.len() != self.dimension() {
            return Err(format!(
                "dimension {} does not match the index's {}",
                query.len(),
                self.dimension()
            ));
        }
        if query.iter().any(|v| !v.is_finite()) {
            return Err("contains NaN or infinite values".into());
        }
        match self.similarity() {
            Similarity::L2 => Ok(query),
            Similarity::InnerProduct if query.iter().any(|&v| v != 0.0) => Ok(query),
            Similarity::InnerProduct => Err("is all zeros".into()),
            Similarity::Cosine => {
                buf.clear();
                buf.extend_from_slice(query);
                if kernels::normalize(buf) {
                    Ok(buf)
                } else {
                    Err("is all zeros".into())
                }
            }
        }
    }

    /// Checks and prepares every row of `queries`, into one contiguous buffer.
    fn prepare_batch<'q>(&self, queries: &'q Matrix) -> Result<Cow<'q, [f32]>> {
        if queries.cols != self.dimension() && queries.rows > 0 {
            return Err(Error::Query(format!(
                "query vectors have dimension {}, the index has {}",
                queries.cols,
                self.dimension()
            )));
        }
        let dim = self.dimension();
        let mut prepared: Vec<f32> = if self.similarity().normalizes() {
            Vec::with_capacity(queries.data.len())
        } else {
            Vec::new()
        };
        let mut buf = Vec::new();
        for (i, q) in queries.data.chunks_exact(dim).enumerate() {
            let row = self
                .prepare(q, &mut buf)
                .map_err(|e| Error::Query(format!("row {i} {e}")))?;
            if self.similarity().normalizes() {
                prepared.extend_from_slice(row);
            }
        }
        Ok(if self.similarity().normalizes() {
            Cow::Owned(prepared)
        } else {
            Cow::Borrowed(&queries.data)
        })
    }

    /// The best `k` documents for `query`, best first (ties by lower [`DocId`]):
    /// through the HNSW graph exploring `ef` candidates (raised to `k`) when the
    /// index has one, else exactly (`ef` is then unused).
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>> {
        let mut buf = Vec::new();
        let q = self.prepare(query, &mut buf).map_err(Error::Query)?;
        Ok(match &self.graph {
            Some(graph) => self.search_graph(graph, q, k, ef),
            None => exact::search_batch(&self.store, self.similarity(), q, k)
                .pop()
                .unwrap_or_default(),
        })
    }

    /// [`DenseIndex::search`] for every row of `queries`, in parallel on the current
    /// rayon pool. Results are in query order.
    pub fn search_batch(&self, queries: &Matrix, k: usize, ef: usize) -> Result<Vec<Vec<Hit>>> {
        let Some(graph) = &self.graph else {
            return self.search_exact_batch(queries, k);
        };
        let prepared = self.prepare_batch(queries)?;
        Ok(prepared
            .par_chunks_exact(self.dimension())
            .map(|q| self.search_graph(graph, q, k, ef))
            .collect())
    }

    /// The exact best `k` documents for `query` (brute force over every row),
    /// whatever the index's ANN. This is the ground truth HNSW is measured against.
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let mut buf = Vec::new();
        let q = self.prepare(query, &mut buf).map_err(Error::Query)?;
        Ok(exact::search_batch(&self.store, self.similarity(), q, k)
            .pop()
            .unwrap_or_default())
    }

    /// [`DenseIndex::search_exact`] for every row of `queries`, batched (blocked
    /// SIMD kernels, rayon over queries and, for few queries, over documents).
    pub fn search_exact_batch(&self, queries: &Matrix, k: usize) -> Result<Vec<Vec<Hit>>> {
        let prepared = self.prepare_batch(queries)?;
        Ok(exact::search_batch(
            &self.store,
            self.similarity(),
            &prepared,
            k,
        ))
    }

    /// The exact similarity of each of `docs` to `query`, in the order given (the
    /// score a search would give them). A document outside the index is an error.
    pub fn score(&self, query: &[f32], docs: &[DocId]) -> Result<Vec<Score>> {
        let mut buf = Vec::new();
        let q = self.prepare(query, &mut buf).map_err(Error::Query)?;
        let kern = kernels::kernels();
        docs.iter()
            .map(|&doc| {
                let row = self.store.get(doc).ok_or_else(|| {
                    Error::Parameter(format!(
                        "document {doc} is not in the dense index ({} documents)",
                        self.len()
                    ))
                })?;
                Ok(match self.similarity() {
                    Similarity::L2 => -(kern.l2sq)(q, row),
                    _ => (kern.dot)(q, row),
                })
            })
            .collect()
    }

    fn search_graph(&self, graph: &Graph, q: &[f32], k: usize, ef: usize) -> Vec<Hit> {
        let k = k.min(self.len());
        if k == 0 {
            return Vec::new();
        }
        let kern = kernels::kernels();
        self.pool.with(|scratch| match self.similarity() {
            Similarity::L2 => graph.search(|v| (kern.l2sq)(q, v), k, ef, scratch),
            _ => graph.search(|v| -(kern.dot)(q, v), k, ef, scratch),
        })
    }
}

fn query_vector<'q>(query: &QueryInput<'q>) -> dredge_core::Result<&'q [f32]> {
    query.vector.ok_or_else(|| {
        dredge_core::Error::Invalid(
            "the dense index needs a query vector (it has no text encoder of its own)".into(),
        )
    })
}

impl Retriever for DenseIndex {
    fn name(&self) -> &str {
        "dense"
    }

    /// Searches with the query's vector (HNSW with the index's `ef` when it has a
    /// graph). A query without a vector is an error: encoding text is the caller's.
    fn search(&self, query: &QueryInput<'_>, k: usize) -> dredge_core::Result<Vec<Hit>> {
        let q = query_vector(query)?;
        match self.exact {
            true => self.search_exact(q, k),
            false => DenseIndex::search(self, q, k, self.ef),
        }
        .map_err(dredge_core::Error::retriever)
    }

    fn search_batch(
        &self,
        queries: &[QueryInput<'_>],
        k: usize,
    ) -> dredge_core::Result<Vec<Vec<Hit>>> {
        let dim = self.dimension();
        let mut data = Vec::with_capacity(queries.len() * dim);
        for q in queries {
            let v = query_vector(q)?;
            if v.len() != dim {
                return Err(dredge_core::Error::retriever(Error::Query(format!(
                    "dimension {} does not match the index's {dim}",
                    v.len()
                ))));
            }
            data.extend_from_slice(v);
        }
        let matrix = Matrix {
            rows: queries.len(),
            cols: dim,
            data,
        };
        match self.exact {
            true => self.search_exact_batch(&matrix, k),
            false => DenseIndex::search_batch(self, &matrix, k, self.ef),
        }
        .map_err(dredge_core::Error::retriever)
    }

    fn score(&self, query: &QueryInput<'_>, docs: &[DocId]) -> dredge_core::Result<Vec<Score>> {
        DenseIndex::score(self, query_vector(query)?, docs).map_err(dredge_core::Error::retriever)
    }
}

/// `vectors` checked for an index (a non-empty shape that matches the data, finite
/// values, valid HNSW parameters) and, for cosine, normalised: rows already of unit
/// norm (as most embedding models give them) are borrowed as they are.
fn checked_rows<'v>(
    vectors: &'v Matrix,
    similarity: Similarity,
    ann: &Ann,
) -> Result<Cow<'v, [f32]>> {
    if vectors.rows == 0 || vectors.cols == 0 {
        return Err(Error::Parameter(format!(
            "cannot build a dense index of {} x {} vectors",
            vectors.rows, vectors.cols
        )));
    }
    if vectors.data.len() != vectors.rows * vectors.cols {
        return Err(Error::Parameter(format!(
            "matrix of {} x {} holds {} values",
            vectors.rows,
            vectors.cols,
            vectors.data.len()
        )));
    }
    if let Ann::Hnsw(params) = ann {
        params.check()?;
    }
    let dim = vectors.cols;
    let bad_row = vectors
        .data
        .chunks_exact(dim)
        .position(|r| r.iter().any(|v| !v.is_finite()));
    if let Some(row) = bad_row {
        return Err(Error::Parameter(format!(
            "vector of document {row} contains NaN or infinite values"
        )));
    }
    // Cosine needs unit rows. Rows already normalised (as most embedding models
    // output them) are stored as given, without a copy.
    let unit = |row: &[f32]| (kernels::sq_norm(row) - 1.0).abs() <= UNIT_TOLERANCE;
    let data: Cow<'_, [f32]> = if similarity.normalizes()
        && !vectors.data.par_chunks_exact(dim).all(unit)
    {
        let mut data = vectors.data.clone();
        let zero = data
            .par_chunks_exact_mut(dim)
            .position_first(|row| !kernels::normalize(row));
        if let Some(row) = zero {
            return Err(Error::Parameter(format!(
                "vector of document {row} is all zeros and cannot be normalised for cosine similarity"
            )));
        }
        Cow::Owned(data)
    } else {
        Cow::Borrowed(&vectors.data)
    };
    Ok(data)
}
