//! `_dredge.VectorIndex`: exact search over vectors held in NumPy arrays, for the
//! sentence-transformers drop-in (`dredge.sentence_transformers`), which receives
//! its embeddings from the caller's model.

use dredge_ann::{DenseIndex, Similarity};
use dredge_core::{DocId, Hit, Matrix};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::error::{to_py, value_error};

/// A float32 matrix from a 2-D NumPy array (one copy, whatever its layout).
pub(crate) fn matrix_of(array: &PyReadonlyArray2<'_, f32>) -> Matrix {
    let shape = array.shape();
    let data = match array.as_slice() {
        Ok(slice) => slice.to_vec(),
        Err(_) => array.as_array().iter().copied().collect(),
    };
    Matrix {
        rows: shape[0],
        cols: shape[1],
        data,
    }
}

/// Row indices and scores of the best `k` rows for each query.
pub type TopK<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// The hits of `n` queries laid out as [`TopK`] arrays: row `i` holds query `i`'s
/// hits, padded with index -1 and score -inf past its last.
pub(crate) struct TopKArrays {
    k: usize,
    ids: Vec<i64>,
    scores: Vec<f32>,
}

impl TopKArrays {
    pub(crate) fn new(n: usize, k: usize) -> Self {
        TopKArrays {
            k,
            ids: vec![-1; n * k],
            scores: vec![f32::NEG_INFINITY; n * k],
        }
    }

    /// Sets row `row` to `hits` (at most `k` of them are kept).
    pub(crate) fn set_row(&mut self, row: usize, hits: &[Hit]) {
        let at = row * self.k;
        for (j, hit) in hits.iter().enumerate().take(self.k) {
            self.ids[at + j] = i64::from(hit.doc.0);
            self.scores[at + j] = hit.score;
        }
    }

    pub(crate) fn into_arrays(self, py: Python<'_>) -> PyResult<TopK<'_>> {
        let n = self.ids.len() / self.k.max(1);
        let shape = [n, self.k];
        let ids = self
            .ids
            .into_pyarray(py)
            .reshape(shape)
            .map_err(|e| value_error(e.to_string()))?;
        let scores = self
            .scores
            .into_pyarray(py)
            .reshape(shape)
            .map_err(|e| value_error(e.to_string()))?;
        Ok((ids, scores))
    }
}

/// The rows of a float32 matrix, searched exactly (blocked SIMD kernels on all
/// cores) by cosine, inner product or L2.
#[pyclass(name = "VectorIndex", module = "dredge._dredge", frozen)]
pub struct PyVectorIndex {
    index: DenseIndex,
}

#[pymethods]
impl PyVectorIndex {
    #[new]
    #[pyo3(signature = (vectors, similarity = "cosine"))]
    fn new(py: Python<'_>, vectors: PyReadonlyArray2<'_, f32>, similarity: &str) -> PyResult<Self> {
        let similarity = match similarity {
            "cosine" => Similarity::Cosine,
            "dot" | "ip" => Similarity::InnerProduct,
            "l2" => Similarity::L2,
            other => {
                return Err(value_error(format!(
                    "similarity must be 'cosine', 'dot' or 'l2', not {other:?}"
                )));
            }
        };
        let m = matrix_of(&vectors);
        let index = py
            .detach(|| DenseIndex::in_memory(m, similarity))
            .map_err(to_py)?;
        Ok(PyVectorIndex { index })
    }

    fn __len__(&self) -> usize {
        self.index.len()
    }

    /// The best `k` rows for each query row: `(indices int64 [n, k], scores float32
    /// [n, k])`, best first, ties by lower row; short rows (k above the number of
    /// vectors) are padded with index -1 and score -inf.
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, f32>,
        k: usize,
    ) -> PyResult<TopK<'py>> {
        let q = matrix_of(&queries);
        let n = q.rows;
        let hits = py
            .detach(|| self.index.search_exact_batch(&q, k))
            .map_err(to_py)?;
        let mut arrays = TopKArrays::new(n, k);
        for (i, row) in hits.iter().enumerate() {
            arrays.set_row(i, row);
        }
        arrays.into_arrays(py)
    }

    /// The similarity of query row `rows[i]` of `queries` to vector `docs[i]`, for
    /// every `i` (the score a search gives that pair).
    fn score_pairs<'py>(
        &self,
        py: Python<'py>,
        queries: PyReadonlyArray2<'py, f32>,
        rows: PyReadonlyArray1<'py, i64>,
        docs: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let q = matrix_of(&queries);
        let rows: Vec<i64> = rows.as_array().iter().copied().collect();
        let docs: Vec<i64> = docs.as_array().iter().copied().collect();
        if rows.len() != docs.len() {
            return Err(value_error("rows and docs differ in length"));
        }
        let n = self.index.len() as i64;
        let mut out = Vec::with_capacity(rows.len());
        for (&r, &d) in rows.iter().zip(&docs) {
            if r < 0 || r as usize >= q.rows || d < 0 || d >= n {
                return Err(value_error(format!("pair ({r}, {d}) is out of range")));
            }
            let score = self
                .index
                .score(q.row(r as usize), &[DocId(d as u32)])
                .map_err(to_py)?;
            out.push(score[0]);
        }
        Ok(out.into_pyarray(py))
    }
}
