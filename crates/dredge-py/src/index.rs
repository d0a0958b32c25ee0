//! `_dredge.Index`: an index folder opened (or built) from Python, searched one
//! query or many at a time, and mined. Retrieval settings arrive as a dict whose
//! keys are the command line's flags (`k1`, `b`, `dense_name`, `ef`, `exact`,
//! `fusion`, `rrf_k`, `alpha`, `normalize`, `depth`, `model`, `batch_size`), with
//! the same defaults; the Python wrapper (`dredge.Index`) spells them out.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dredge_core::{Document, Fusion, Matrix, Qrels, Query, QueryInput, Retriever, ScoreNorm};
use dredge_index::{
    BatchSearcher, Bm25Spec, DenseBuild, DenseSearch, DenseSpec, Documents, EncoderSettings, Index,
    IndexBuilder, MineInput, Mining, Mode, QueryVectors, Retrieval, Vectors,
};
use dredge_mine::{
    FilterOrder, MineConfig, OnShort, OutputFormat, PositiveScore, RankRange, Sampling,
};
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::error::{to_py, value_error};
use crate::vectors::{TopK, TopKArrays, matrix_of};

/// The name under which `doc_vectors` are searched, as `dredge mine` names them.
const DOC_VECTORS: &str = "--doc-vectors";

/// Queries searched between two checks for Ctrl-C.
const SIGNAL_BATCH: usize = 4096;

/// One setting of `options`, or `default` when absent or `None`.
fn opt<'py, T: FromPyObjectOwned<'py>>(
    options: Option<&Bound<'py, PyDict>>,
    key: &str,
) -> PyResult<Option<T>> {
    let Some(options) = options else {
        return Ok(None);
    };
    match options.get_item(key)? {
        Some(v) if !v.is_none() => v
            .extract::<T>()
            .map(Some)
            .map_err(|e| value_error(format!("{key}: {}", Into::<PyErr>::into(e)))),
        _ => Ok(None),
    }
}

fn mode_of(name: &str) -> PyResult<Mode> {
    match name {
        "bm25" => Ok(Mode::Bm25),
        "dense" => Ok(Mode::Dense),
        "hybrid" => Ok(Mode::Hybrid),
        other => Err(value_error(format!(
            "mode must be 'bm25', 'dense' or 'hybrid', not {other:?}"
        ))),
    }
}

/// The retrieval `options` describe for `mode`; dense is exact by default when
/// `exact_by_default` (mining), else HNSW at the default ef, as on the command line.
fn retrieval_of(
    mode: Mode,
    options: Option<&Bound<'_, PyDict>>,
    exact_by_default: bool,
) -> PyResult<Retrieval> {
    let bm25 = Bm25Spec {
        k1: opt(options, "k1")?,
        b: opt(options, "b")?,
    };
    let exact: bool = opt(options, "exact")?.unwrap_or(false);
    let ef: Option<usize> = opt(options, "ef")?;
    if exact && ef.is_some() {
        return Err(value_error("give ef or exact=True, not both"));
    }
    let search = match (exact, ef) {
        (true, _) => DenseSearch::Exact,
        (false, Some(ef)) => DenseSearch::Hnsw { ef },
        (false, None) if exact_by_default => DenseSearch::Exact,
        (false, None) => DenseSearch::Hnsw {
            ef: dredge_ann::DEFAULT_EF,
        },
    };
    let dense = DenseSpec {
        component: opt(options, "dense_name")?,
        search,
    };
    let fusion_name: String = opt(options, "fusion")?.unwrap_or_else(|| "rrf".to_owned());
    let fusion = match fusion_name.as_str() {
        "rrf" => Fusion::Rrf {
            k: opt(options, "rrf_k")?.unwrap_or(60.0),
        },
        "weighted" => {
            let normalize: String =
                opt(options, "normalize")?.unwrap_or_else(|| "minmax".to_owned());
            Fusion::Weighted {
                alpha: opt(options, "alpha")?.unwrap_or(0.5),
                norm: match normalize.as_str() {
                    "minmax" => ScoreNorm::MinMax,
                    "zscore" => ScoreNorm::ZScore,
                    other => {
                        return Err(value_error(format!(
                            "normalize must be 'minmax' or 'zscore', not {other:?}"
                        )));
                    }
                },
            }
        }
        other => {
            return Err(value_error(format!(
                "fusion must be 'rrf' or 'weighted', not {other:?}"
            )));
        }
    };
    let depth: Option<usize> = opt(options, "depth")?;
    let spec = Retrieval::of_mode(mode, bm25, dense, fusion, depth);
    spec.validate().map_err(to_py)?;
    Ok(spec)
}

fn strings(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        out.push(
            item.cast::<PyString>()
                .map_err(|_| value_error(format!("{what} must be str")))?
                .to_cow()?
                .into_owned(),
        );
    }
    Ok(out)
}

/// Documents from an iterable of `{"_id", "title", "text"}` dicts (title optional).
fn documents_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Document>> {
    let mut docs = Vec::new();
    for (i, item) in obj.try_iter()?.enumerate() {
        let item = item?;
        let dict = item.cast::<PyDict>().map_err(|_| {
            value_error(format!(
                "document {} must be a dict with \"_id\" and \"text\"",
                i + 1
            ))
        })?;
        let field = |key: &str, required: bool| -> PyResult<String> {
            match dict.get_item(key)? {
                Some(v) if !v.is_none() => Ok(v
                    .cast::<PyString>()
                    .map_err(|_| value_error(format!("document {}: {key:?} must be str", i + 1)))?
                    .to_cow()?
                    .into_owned()),
                _ if required => Err(value_error(format!("document {} has no {key:?}", i + 1))),
                _ => Ok(String::new()),
            }
        };
        docs.push(Document {
            id: field("_id", true)?,
            title: field("title", false)?,
            text: field("text", false)?,
            line: i as u64 + 1,
        });
    }
    Ok(docs)
}

/// An index opened for Python: the index, and the retrievers built so far by their
/// settings (opening BM25 or a graph once, not per query).
#[pyclass(name = "Index", module = "dredge._dredge", frozen)]
pub struct PyIndex {
    index: Index,
    retrievers: Mutex<HashMap<String, Arc<dyn Retriever>>>,
}

impl PyIndex {
    fn new(index: Index) -> Self {
        PyIndex {
            index,
            retrievers: Mutex::new(HashMap::new()),
        }
    }

    /// The shared part of `search_many` and `search_many_arrays`: the retriever and
    /// query vectors of the settings, then the queries searched in batches of
    /// [`SIGNAL_BATCH`] with the GIL released, each batch's hits handed to `each`
    /// (the batch, the index of its first query, the hits), Ctrl-C checked between.
    #[allow(clippy::too_many_arguments)]
    fn search_batches<'py>(
        &self,
        py: Python<'py>,
        queries: Vec<(String, String)>,
        k: usize,
        mode: &str,
        options: Option<&Bound<'py, PyDict>>,
        vectors: Option<PyReadonlyArray2<'py, f32>>,
        threads: usize,
        mut each: impl FnMut(&[Query], usize, &[Vec<dredge_core::Hit>]) -> PyResult<()>,
    ) -> PyResult<()> {
        let spec = retrieval_of(mode_of(mode)?, options, false)?;
        let retriever = self.retriever(&spec, k)?;
        let queries: Vec<Query> = queries
            .into_iter()
            .map(|(id, text)| Query { id, text, line: 0 })
            .collect();
        let matrix = self.vectors_for(py, &spec, &queries, vectors.map(|a| matrix_of(&a)))?;
        let searcher = BatchSearcher::new(&*retriever, threads).map_err(to_py)?;
        let inputs: Vec<QueryInput<'_>> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| QueryInput {
                text: &q.text,
                vector: matrix.as_ref().map(|m| m.row(i)),
            })
            .collect();
        for (b, (batch, inputs)) in queries
            .chunks(SIGNAL_BATCH)
            .zip(inputs.chunks(SIGNAL_BATCH))
            .enumerate()
        {
            let hits = py.detach(|| searcher.search(inputs, k)).map_err(to_py)?;
            each(batch, b * SIGNAL_BATCH, &hits)?;
            py.check_signals()?;
        }
        Ok(())
    }

    fn retriever(&self, spec: &Retrieval, k: usize) -> PyResult<Arc<dyn Retriever>> {
        let depth = match spec {
            Retrieval::Hybrid(h) => h.depth_for(k),
            _ => 0,
        };
        let key = format!("{spec:?}/{depth}");
        let mut cache = self.retrievers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = cache.get(&key) {
            return Ok(r.clone());
        }
        let r = self.index.retriever(spec, k).map_err(to_py)?;
        cache.insert(key, r.clone());
        Ok(r)
    }

    /// Query vectors for `spec`: the rows of `vectors` (in query order), else the
    /// index's encoder; `None` for BM25.
    fn vectors_for(
        &self,
        py: Python<'_>,
        spec: &Retrieval,
        queries: &[Query],
        given: Option<Matrix>,
    ) -> PyResult<Option<Matrix>> {
        let Some(dense) = spec.dense_spec() else {
            if given.is_some() {
                return Err(value_error(
                    "query vectors are for mode 'dense' or 'hybrid'",
                ));
            }
            return Ok(None);
        };
        if let Some(matrix) = given {
            if matrix.rows != queries.len() {
                return Err(value_error(format!(
                    "{} query vectors for {} queries",
                    matrix.rows,
                    queries.len()
                )));
            }
            let dimension = self
                .index
                .dense_dimension(dense.component.as_deref())
                .map_err(to_py)?;
            if matrix.cols != dimension {
                return Err(value_error(format!(
                    "query vectors have {} dimensions, the dense component {dimension}",
                    matrix.cols
                )));
            }
            return Ok(Some(matrix));
        }
        let source = self
            .index
            .query_vectors(spec)
            .map_err(to_py)?
            .ok_or_else(|| value_error("no query vectors"))?;
        let pairs: Vec<(&str, &str)> = queries
            .iter()
            .map(|q| (q.id.as_str(), q.text.as_str()))
            .collect();
        py.detach(|| source.vectors(&pairs, &mut |_, _| {}))
            .map(Some)
            .map_err(to_py)
    }

    fn hit_dict<'py>(
        &self,
        py: Python<'py>,
        hit: &dredge_core::Hit,
        with_text: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let docs = self.index.docs();
        let d = PyDict::new(py);
        d.set_item("id", docs.id(hit.doc))?;
        d.set_item("score", hit.score)?;
        if with_text {
            d.set_item("title", docs.title(hit.doc))?;
            d.set_item("text", docs.text(hit.doc))?;
        }
        Ok(d)
    }
}

#[pymethods]
impl PyIndex {
    /// Opens the index folder `path`; `model` replaces the model folder the index
    /// records (a moved index), `batch_size` is the query encoding batch;
    /// `one_shard_at_a_time` holds one shard of a sharded index in memory at a time;
    /// `precision` (`"fp32"`, `"int8"`, `"bf16"`) replaces the one the index records for
    /// encoding query text.
    #[new]
    #[pyo3(signature = (path, *, model = None, batch_size = 32, one_shard_at_a_time = false, precision = None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        model: Option<PathBuf>,
        batch_size: usize,
        one_shard_at_a_time: bool,
        precision: Option<&str>,
    ) -> PyResult<Self> {
        let precision = precision
            .map(|p| p.parse::<dredge_embed::Precision>())
            .transpose()
            .map_err(|e| value_error(e.to_string()))?;
        if batch_size == 0 {
            return Err(value_error("batch_size must be at least 1"));
        }
        let index = py.detach(|| Index::open(&path)).map_err(to_py)?;
        Ok(PyIndex::new(
            index
                .with_encoder_settings(EncoderSettings {
                    model,
                    batch_size,
                    precision,
                })
                .one_shard_at_a_time(one_shard_at_a_time),
        ))
    }

    /// Builds an index at `out` (see `dredge.Index.build`).
    #[staticmethod]
    #[pyo3(signature = (out, corpus = None, documents = None, *, vectors = None, vector_ids = None, model = None, dense_name = "default", ann = "hnsw", similarity = "cosine", bm25 = true, k1 = 0.9, b = 0.4, overwrite = false, threads = 0, batch_size = 32, max_length = None, hnsw_m = 16, hnsw_ef_construction = 200, hnsw_seed = 0, shard = None, precision = "fp32"))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        out: PathBuf,
        corpus: Option<PathBuf>,
        documents: Option<&Bound<'_, PyAny>>,
        vectors: Option<&Bound<'_, PyAny>>,
        vector_ids: Option<&Bound<'_, PyAny>>,
        model: Option<PathBuf>,
        dense_name: &str,
        ann: &str,
        similarity: &str,
        bm25: bool,
        k1: f32,
        b: f32,
        overwrite: bool,
        threads: usize,
        batch_size: usize,
        max_length: Option<usize>,
        hnsw_m: usize,
        hnsw_ef_construction: usize,
        hnsw_seed: u64,
        shard: Option<String>,
        precision: &str,
    ) -> PyResult<Self> {
        let shard = match shard {
            Some(s) => Some(s.parse::<dredge_index::ShardSpec>().map_err(value_error)?),
            None => None,
        };
        let docs = match (&corpus, documents) {
            (Some(_), None) => None,
            (None, Some(d)) => Some(documents_of(d)?),
            _ => {
                return Err(value_error(
                    "give corpus (a path) or documents (an iterable of dicts), not both",
                ));
            }
        };
        let dense_vectors = match (vectors, model) {
            (None, None) => None,
            (Some(_), Some(_)) => return Err(value_error("give vectors or model, not both")),
            (None, Some(dir)) => Some(Vectors::Model {
                dir,
                options: dredge_embed::EncoderOptions {
                    max_length,
                    batch_size,
                    precision: precision
                        .parse()
                        .map_err(|e: dredge_embed::Error| value_error(e.to_string()))?,
                    ..Default::default()
                },
            }),
            (Some(v), None) => {
                if let Ok(array) = v.extract::<PyReadonlyArray2<'_, f32>>() {
                    let ids = match (vector_ids, &docs) {
                        (Some(ids), _) => strings(ids, "vector_ids")?,
                        (None, Some(docs)) => docs.iter().map(|d| d.id.clone()).collect(),
                        (None, None) => {
                            return Err(value_error(
                                "vectors given as an array with a corpus file need vector_ids (the document id of each row)",
                            ));
                        }
                    };
                    Some(Vectors::InMemory {
                        ids,
                        matrix: matrix_of(&array),
                    })
                } else if let Ok(path) = v.extract::<PathBuf>() {
                    let ids = match vector_ids {
                        Some(ids) => ids.extract::<PathBuf>().map_err(|_| {
                            value_error("with vectors given as a .npy path, vector_ids is the path of its ids file")
                        })?,
                        None => path.with_extension("ids.txt"),
                    };
                    Some(Vectors::Npy { vectors: path, ids })
                } else {
                    return Err(value_error(
                        "vectors must be a 2-D float32 NumPy array or the path of a .npy file",
                    ));
                }
            }
        };
        if !bm25 && dense_vectors.is_none() {
            return Err(value_error(
                "bm25=False leaves nothing to index: give vectors or model",
            ));
        }
        let similarity = match similarity {
            "cosine" => dredge_ann::Similarity::Cosine,
            "ip" => dredge_ann::Similarity::InnerProduct,
            "l2" => dredge_ann::Similarity::L2,
            other => {
                return Err(value_error(format!(
                    "similarity must be 'cosine', 'ip' or 'l2', not {other:?}"
                )));
            }
        };
        let ann = match ann {
            "flat" => dredge_ann::Ann::Flat,
            "hnsw" => dredge_ann::Ann::Hnsw(dredge_ann::HnswParams {
                m: hnsw_m,
                ef_construction: hnsw_ef_construction,
                seed: hnsw_seed,
            }),
            other => {
                return Err(value_error(format!(
                    "ann must be 'hnsw' or 'flat', not {other:?}"
                )));
            }
        };
        let params = dredge_bm25::Bm25Params::new(k1, b).map_err(to_py)?;
        let options = dredge_bm25::BuildOptions {
            params,
            threads,
            ..Default::default()
        };
        let corpus = match corpus {
            Some(c) => Some(dredge_core::dataset::corpus_file(&c).map_err(to_py)?),
            None => None,
        };
        let index = py
            .detach(move || {
                let mut builder = IndexBuilder::new(&out)
                    .overwrite(overwrite)
                    .bm25(bm25.then_some(options))
                    .threads(threads)
                    .shard(shard);
                if let Some(vectors) = dense_vectors {
                    builder = builder.dense(DenseBuild {
                        name: dense_name.to_owned(),
                        vectors,
                        similarity,
                        ann,
                    });
                }
                let documents = match (corpus, docs) {
                    (Some(path), _) => Documents::Corpus(path),
                    (None, Some(docs)) => Documents::from_vec(docs),
                    (None, None) => unreachable!("checked above"),
                };
                builder.build(documents)
            })
            .map_err(to_py)?;
        Ok(PyIndex::new(index))
    }

    /// The index folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.index.path().to_path_buf()
    }

    /// The manifest, as JSON text.
    fn manifest_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(self.index.manifest()).map_err(|e| value_error(e.to_string()))
    }

    /// The dense components' names.
    /// False for an index built before dredge recorded checksums (format 1):
    /// damage to its files is not detected.
    #[getter]
    fn has_checksums(&self) -> bool {
        self.index.has_checksums()
    }

    #[getter]
    fn dense_components(&self) -> Vec<String> {
        self.index
            .dense_names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    fn __len__(&self) -> usize {
        self.index.docs().len()
    }

    /// `{"_id", "title", "text"}` of the document `id`, or `None`.
    fn document<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let docs = self.index.docs();
        let Some(doc) = docs.doc_id(id) else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("_id", id)?;
        d.set_item("title", docs.title(doc))?;
        d.set_item("text", docs.text(doc))?;
        Ok(Some(d))
    }

    /// The best `k` documents for one query: a list of `{"id", "score"}` dicts (with
    /// `"title"` and `"text"` when `with_text`).
    #[pyo3(signature = (query, k = 10, mode = "bm25", options = None, vector = None, with_text = false))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        k: usize,
        mode: &str,
        options: Option<&Bound<'py, PyDict>>,
        vector: Option<numpy::PyReadonlyArray1<'py, f32>>,
        with_text: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let spec = retrieval_of(mode_of(mode)?, options, false)?;
        let retriever = self.retriever(&spec, k)?;
        let queries = [Query {
            id: "query".into(),
            text: query.to_owned(),
            line: 0,
        }];
        let given = vector.map(|v| {
            let data: Vec<f32> = v.as_array().iter().copied().collect();
            Matrix {
                rows: 1,
                cols: data.len(),
                data,
            }
        });
        // Without a given vector the retriever encodes the text with its own
        // encoder, loaded once and kept with the cached retriever (the index's
        // `query_vectors` would load the model again for every query).
        let matrix = match given {
            Some(_) => self.vectors_for(py, &spec, &queries, given)?,
            None => None,
        };
        let hits = py
            .detach(|| {
                retriever.search(
                    &QueryInput {
                        text: query,
                        vector: matrix.as_ref().map(|m| m.row(0)),
                    },
                    k,
                )
            })
            .map_err(to_py)?;
        let list = PyList::empty(py);
        for hit in &hits {
            list.append(self.hit_dict(py, hit, with_text)?)?;
        }
        Ok(list)
    }

    /// Searches `queries` (a list of `(id, text)`) on all cores (or `threads`), the
    /// GIL released; returns `{qid: {docid: score}}`, queries in order. `vectors`:
    /// one row per query, in order.
    #[pyo3(signature = (queries, k = 1000, mode = "bm25", options = None, vectors = None, threads = 0))]
    #[allow(clippy::too_many_arguments)]
    fn search_many<'py>(
        &self,
        py: Python<'py>,
        queries: Vec<(String, String)>,
        k: usize,
        mode: &str,
        options: Option<&Bound<'py, PyDict>>,
        vectors: Option<PyReadonlyArray2<'py, f32>>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let docs = self.index.docs();
        let out = PyDict::new(py);
        self.search_batches(
            py,
            queries,
            k,
            mode,
            options,
            vectors,
            threads,
            |batch, _, hits| {
                for (query, hits) in batch.iter().zip(hits) {
                    let scores = PyDict::new(py);
                    for hit in hits {
                        scores.set_item(docs.id(hit.doc), hit.score)?;
                    }
                    out.set_item(&query.id, scores)?;
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Searches `queries` as `search_many` does and writes the hits to `out` as a
    /// TREC run tagged `tag` (the bytes `dredge search --out` writes for the same
    /// queries), atomically; returns the number of queries searched.
    #[pyo3(signature = (queries, out, k = 1000, mode = "bm25", options = None, vectors = None, threads = 0, tag = None))]
    #[allow(clippy::too_many_arguments)]
    fn write_run<'py>(
        &self,
        py: Python<'py>,
        queries: Vec<(String, String)>,
        out: PathBuf,
        k: usize,
        mode: &str,
        options: Option<&Bound<'py, PyDict>>,
        vectors: Option<PyReadonlyArray2<'py, f32>>,
        threads: usize,
        tag: Option<String>,
    ) -> PyResult<usize> {
        let docs = self.index.docs();
        let tag = tag.unwrap_or_else(|| format!("dredge-{mode}"));
        let n = queries.len();
        let mut file = dredge_core::AtomicFile::create(&out).map_err(to_py)?;
        let io = |e: std::io::Error| to_py(dredge_core::Error::io(&out, e));
        let mut writer = dredge_core::RunWriter::new(&mut file, &tag);
        self.search_batches(
            py,
            queries,
            k,
            mode,
            options,
            vectors,
            threads,
            |batch, _, hits| {
                for (query, hits) in batch.iter().zip(hits) {
                    writer
                        .write_query(&query.id, hits.iter().map(|h| (docs.id(h.doc), h.score)))
                        .map_err(io)?;
                }
                Ok(())
            },
        )?;
        writer.into_inner().map_err(io)?;
        file.commit().map_err(to_py)?;
        Ok(n)
    }

    /// [`PyIndex::search_many`] with the hits as arrays: `(documents int64 [n, k],
    /// scores float32 [n, k])`, documents as ordinals into `doc_ids()` (-1 and -inf
    /// where a query has fewer than `k` hits). No Python object per hit.
    #[pyo3(signature = (queries, k = 1000, mode = "bm25", options = None, vectors = None, threads = 0))]
    #[allow(clippy::too_many_arguments)]
    fn search_many_arrays<'py>(
        &self,
        py: Python<'py>,
        queries: Vec<(String, String)>,
        k: usize,
        mode: &str,
        options: Option<&Bound<'py, PyDict>>,
        vectors: Option<PyReadonlyArray2<'py, f32>>,
        threads: usize,
    ) -> PyResult<TopK<'py>> {
        let mut arrays = TopKArrays::new(queries.len(), k);
        self.search_batches(
            py,
            queries,
            k,
            mode,
            options,
            vectors,
            threads,
            |_, first, hits| {
                for (i, row) in hits.iter().enumerate() {
                    arrays.set_row(first + i, row);
                }
                Ok(())
            },
        )?;
        arrays.into_arrays(py)
    }

    /// Every document id, in ordinal order (what `search_many_arrays` indexes).
    fn doc_ids(&self) -> Vec<String> {
        let docs = self.index.docs();
        docs.doc_ids().map(|d| docs.id(d).to_owned()).collect()
    }

    /// Mines hard negatives (see `dredge.Index.mine`); returns the audit as JSON
    /// text, and the rows as JSON lines (bytes) when `out` is `None`.
    #[pyo3(signature = (*, out = None, queries = None, qrels = None, split = "train", pairs = None, rows = None, candidates = "bm25", options = None, query_vectors = None, query_ids = None, doc_vectors = None, doc_ids = None, config = None, holdout_qrels = None, threads = 0, rescore = None, rescore_batch_size = 32, rescore_max_length = None))]
    #[allow(clippy::too_many_arguments)]
    fn mine<'py>(
        &self,
        py: Python<'py>,
        out: Option<PathBuf>,
        queries: Option<PathBuf>,
        qrels: Option<PathBuf>,
        split: &str,
        pairs: Option<PathBuf>,
        rows: Option<&Bound<'py, PyAny>>,
        candidates: &str,
        options: Option<&Bound<'py, PyDict>>,
        query_vectors: Option<PyReadonlyArray2<'py, f32>>,
        query_ids: Option<&Bound<'py, PyAny>>,
        doc_vectors: Option<PathBuf>,
        doc_ids: Option<PathBuf>,
        config: Option<&Bound<'py, PyDict>>,
        holdout_qrels: Option<PathBuf>,
        threads: usize,
        rescore: Option<PathBuf>,
        rescore_batch_size: usize,
        rescore_max_length: Option<usize>,
    ) -> PyResult<(String, Option<Vec<u8>>)> {
        let config = mine_config(config)?;
        if rescore_batch_size == 0 {
            return Err(value_error("rescore_batch_size must be at least 1"));
        }
        // `dredge mine --rescore`: a cross-encoder or bi-encoder model folder.
        let teacher = match &rescore {
            Some(model) => {
                let options = dredge_embed::EncoderOptions {
                    max_length: rescore_max_length,
                    batch_size: rescore_batch_size,
                    ..dredge_embed::EncoderOptions::default()
                };
                let teacher = py
                    .detach(|| dredge_embed::load_teacher(model, &options))
                    .map_err(|e| value_error(format!("rescore model: {e}")))?;
                Some(Arc::<dyn dredge_core::Teacher>::from(teacher))
            }
            None => None,
        };
        let mut spec = retrieval_of(mode_of(candidates)?, options, true)?;
        // `doc_vectors`: dense candidates from a flat index of those vectors held in
        // memory for this call (`dredge mine --doc-vectors`).
        let with_doc_vectors;
        let index = match doc_vectors.filter(|_| spec.dense_spec().is_some()) {
            None => &self.index,
            Some(vectors) => {
                if query_vectors.is_none() {
                    return Err(value_error(
                        "doc_vectors need query_vectors (rows named by query_ids)",
                    ));
                }
                let ids = doc_ids.unwrap_or_else(|| vectors.with_extension("ids.txt"));
                let mut index = Index::open(self.index.path()).map_err(to_py)?;
                let matrix =
                    dredge_ann::read_doc_vectors(&vectors, &ids, index.docs()).map_err(to_py)?;
                index
                    .add_dense_in_memory(DOC_VECTORS, matrix, dredge_ann::Similarity::Cosine)
                    .map_err(to_py)?;
                match &mut spec {
                    Retrieval::Dense(d) => d.component = Some(DOC_VECTORS.to_owned()),
                    Retrieval::Hybrid(h) => h.dense.component = Some(DOC_VECTORS.to_owned()),
                    Retrieval::Bm25(_) => {}
                }
                with_doc_vectors = index;
                &with_doc_vectors
            }
        };
        let input = match (queries, pairs, rows) {
            (Some(queries), None, None) => {
                let qrels = match &qrels {
                    Some(q) => dredge_core::dataset::qrels_file(q, split),
                    None => dredge_core::dataset::qrels_file(&queries, split),
                }
                .map_err(to_py)?;
                MineInput::Beir { queries, qrels }
            }
            (None, Some(pairs), None) => {
                if qrels.is_some() {
                    return Err(value_error(
                        "qrels goes with queries; pairs carry their own positives",
                    ));
                }
                MineInput::Pairs(pairs)
            }
            (None, None, Some(rows)) => MineInput::Queries(mine_queries(index, rows)?),
            _ => {
                return Err(value_error(
                    "give exactly one of queries (with qrels or a BEIR folder and split), pairs, or rows",
                ));
            }
        };
        let mut mining = Mining::new(index, &spec, config).map_err(to_py)?;
        if let Some(teacher) = teacher {
            mining = mining.with_teacher(teacher);
        }
        if spec.dense_spec().is_some() {
            if let Some(array) = query_vectors {
                let ids = query_ids
                    .ok_or_else(|| {
                        value_error("query_vectors need query_ids (the query id of each row)")
                    })
                    .and_then(|ids| strings(ids, "query_ids"))?;
                let dimension = index
                    .dense_dimension(spec.dense_spec().and_then(|d| d.component.as_deref()))
                    .map_err(to_py)?;
                let vectors =
                    QueryVectors::given(ids, matrix_of(&array), Some(dimension)).map_err(to_py)?;
                mining = mining.with_vectors(vectors);
            }
        } else if query_vectors.is_some() {
            return Err(value_error(
                "query_vectors are for candidates 'dense' or 'hybrid'",
            ));
        }
        let holdout = match holdout_qrels {
            Some(path) => Some(mining.holdout(&Qrels::read(&path).map_err(to_py)?)),
            None => None,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(dredge_index::worker_threads(threads))
            .build()
            .map_err(|e| value_error(e.to_string()))?;
        py.detach(|| {
            pool.install(|| match &out {
                Some(path) => mining
                    .mine_to_file(input, path, holdout.as_ref())
                    .map(|audit| (audit.to_json(), None)),
                None => {
                    let mut buffer = Vec::new();
                    mining
                        .mine_to_writer(input, &mut buffer, holdout.as_ref())
                        .map(|audit| (audit.to_json(), Some(buffer)))
                }
            })
        })
        .map_err(to_py)
    }
}

/// Queries to mine from `[(qid, text, [positive doc ids])]`.
fn mine_queries(index: &Index, rows: &Bound<'_, PyAny>) -> PyResult<Vec<dredge_mine::MineQuery>> {
    let docs = index.docs();
    let mut out = Vec::new();
    for (i, row) in rows.try_iter()?.enumerate() {
        let (qid, text, positives): (String, String, Vec<String>) =
            row?.extract().map_err(|_| {
                value_error(format!(
                    "row {}: expected (query_id, text, [positive doc ids])",
                    i + 1
                ))
            })?;
        let mut pos = Vec::with_capacity(positives.len());
        for p in positives {
            let doc = docs.doc_id(&p).ok_or_else(|| {
                value_error(format!(
                    "row {} (query {qid}): positive {p:?} is not in the index",
                    i + 1
                ))
            })?;
            pos.push(dredge_mine::Positive::doc(doc));
        }
        out.push(dredge_mine::MineQuery::new(qid, text, pos));
    }
    Ok(out)
}

/// The miner's configuration from the command line's option names.
fn mine_config(config: Option<&Bound<'_, PyDict>>) -> PyResult<MineConfig> {
    let defaults = MineConfig::default();
    let text = |key: &str, default: &str| -> PyResult<String> {
        Ok(opt::<String>(config, key)?.unwrap_or_else(|| default.to_owned()))
    };
    let choice = |key: &str, value: String, allowed: &[&str]| -> PyResult<String> {
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(value_error(format!(
                "{key} must be one of {allowed:?}, not {value:?}"
            )))
        }
    };
    let range = match opt::<String>(config, "range")? {
        Some(r) => r.parse::<RankRange>().map_err(to_py)?,
        None => RankRange::default(),
    };
    let positions = opt::<(u64, u64)>(config, "positions")?.map(|(start, end)| start..end);
    let config = MineConfig {
        positions,
        depth: opt(config, "depth")?.unwrap_or(defaults.depth),
        range,
        max_score: opt(config, "max_score")?,
        margin: opt(config, "margin")?,
        relative_margin: opt(config, "relative_margin")?,
        positive_score: match choice(
            "positive_score",
            text("positive_score", "min")?,
            &["min", "mean", "max"],
        )?
        .as_str()
        {
            "mean" => PositiveScore::Mean,
            "max" => PositiveScore::Max,
            _ => PositiveScore::Min,
        },
        num_negatives: opt(config, "num_negatives")?.unwrap_or(defaults.num_negatives),
        sampling: match choice("sampling", text("sampling", "top")?, &["top", "random"])?.as_str() {
            "random" => Sampling::Random,
            _ => Sampling::Top,
        },
        seed: opt(config, "seed")?.unwrap_or(defaults.seed),
        report_sampled: opt(config, "report_queries")?.unwrap_or(defaults.report_sampled),
        report_worst: opt(config, "report_worst")?.unwrap_or(defaults.report_worst),
        on_short: match choice(
            "on_short",
            text("on_short", "keep")?,
            &["keep", "drop", "pad"],
        )?
        .as_str()
        {
            "drop" => OnShort::Drop,
            "pad" => OnShort::Pad,
            _ => OnShort::Keep,
        },
        format: match choice(
            "format",
            text("format", "flag")?,
            &["flag", "ids", "triplet"],
        )?
        .as_str()
        {
            "ids" => OutputFormat::Ids,
            "triplet" => OutputFormat::Triplet,
            _ => OutputFormat::Flag,
        },
        filter_order: match choice(
            "filter_order",
            text("filter_order", "sentence-transformers")?,
            &["sentence-transformers", "flagembedding"],
        )?
        .as_str()
        {
            "flagembedding" => FilterOrder::FlagEmbedding,
            _ => FilterOrder::SentenceTransformers,
        },
        ..defaults
    };
    config.validate().map_err(to_py)?;
    Ok(config)
}

/// The queries of a `queries.jsonl`, or of a BEIR folder (those judged in
/// `qrels/<split>.tsv` when `split` is given), as `(id, text)` pairs in file order.
/// Joins shard folders into the sharded index `out` (see `dredge.join_shards`).
#[pyfunction]
#[pyo3(signature = (out, shards, overwrite = false))]
pub fn join_shards(
    py: Python<'_>,
    out: PathBuf,
    shards: Vec<PathBuf>,
    overwrite: bool,
) -> PyResult<PyIndex> {
    let index = py
        .detach(|| {
            dredge_index::join_shards(&out, &shards, overwrite)?;
            Index::open(&out)
        })
        .map_err(to_py)?;
    Ok(PyIndex::new(index))
}

#[pyfunction]
#[pyo3(signature = (path, split = None))]
pub fn load_queries(
    py: Python<'_>,
    path: PathBuf,
    split: Option<String>,
) -> PyResult<Vec<(String, String)>> {
    let loaded = py
        .detach(|| dredge_index::load_queries(&path, split.as_deref()))
        .map_err(to_py)?;
    Ok(loaded.queries.into_iter().map(|q| (q.id, q.text)).collect())
}
