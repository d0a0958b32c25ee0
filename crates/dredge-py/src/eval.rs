//! trec_eval-exact evaluation of runs held in Python dicts or files.

use std::path::PathBuf;

use dredge_core::{Qrels, Run};
use dredge_eval::{EvalOptions, Metric, MetricKind, evaluate as eval_run};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::error::{to_py, value_error};

/// A str of Python as UTF-8 (`to_cow`: borrowed where the interpreter allows).
fn text<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<std::borrow::Cow<'a, str>> {
    obj.cast::<PyString>()
        .map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "{what} must be str, not {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?
        .to_cow()
}

/// A path given as str or os.PathLike, or `None` for anything else.
fn path_of(obj: &Bound<'_, PyAny>) -> Option<PathBuf> {
    if obj.is_instance_of::<PyDict>() {
        return None;
    }
    obj.extract::<PathBuf>().ok()
}

/// Judgments from `{qid: {docid: grade}}` or a qrels file (BEIR TSV or TREC).
pub fn qrels_of(obj: &Bound<'_, PyAny>) -> PyResult<Qrels> {
    if let Some(path) = path_of(obj) {
        return obj.py().detach(|| Qrels::read(&path)).map_err(to_py);
    }
    let outer = obj.cast::<PyDict>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "qrels must be a dict {query_id: {doc_id: grade}} or a path to a qrels file",
        )
    })?;
    let mut qrels = Qrels::new();
    for (qid, docs) in outer.iter() {
        let qid = text(&qid, "a query id")?;
        let docs = docs.cast::<PyDict>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "qrels[{qid:?}] must be a dict {{doc_id: grade}}"
            ))
        })?;
        for (doc, grade) in docs.iter() {
            let doc = text(&doc, "a document id")?;
            let grade: i32 = grade.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "qrels[{qid:?}][{doc:?}] must be an int grade"
                ))
            })?;
            qrels.insert(&qid, &doc, grade);
        }
    }
    Ok(qrels)
}

/// A run from `{qid: {docid: score}}` or a TREC run file.
pub fn run_of(obj: &Bound<'_, PyAny>) -> PyResult<Run> {
    if let Some(path) = path_of(obj) {
        return obj.py().detach(|| Run::read(&path)).map_err(to_py);
    }
    let outer = obj.cast::<PyDict>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "run must be a dict {query_id: {doc_id: score}} or a path to a TREC run",
        )
    })?;
    let mut run = Run::new();
    for (qid, docs) in outer.iter() {
        let qid = text(&qid, "a query id")?;
        let docs = docs.cast::<PyDict>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "run[{qid:?}] must be a dict {{doc_id: score}}"
            ))
        })?;
        for (doc, score) in docs.iter() {
            let doc = text(&doc, "a document id")?;
            let score: f64 = score.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "run[{qid:?}][{doc:?}] must be a number"
                ))
            })?;
            run.push(&qid, &doc, score);
        }
    }
    Ok(run)
}

/// Judgments converted once, evaluated against many runs (pytrec_eval's
/// `RelevanceEvaluator` holds its qrels this way).
#[pyclass(name = "Qrels", module = "dredge._dredge", frozen)]
pub struct PyQrels {
    qrels: Qrels,
}

#[pymethods]
impl PyQrels {
    #[new]
    fn new(qrels: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyQrels {
            qrels: qrels_of(qrels)?,
        })
    }

    fn __len__(&self) -> usize {
        self.qrels.len()
    }
}

fn kind_of(name: &str) -> PyResult<MetricKind> {
    Ok(match name {
        "ndcg" => MetricKind::Ndcg,
        "recall" => MetricKind::Recall,
        "map" => MetricKind::Map,
        "mrr" => MetricKind::Mrr,
        "p" => MetricKind::Precision,
        other => return Err(value_error(format!("unknown metric kind `{other}`"))),
    })
}

/// Evaluates `run` against `qrels` and returns `(means, per_query)`: `{metric:
/// mean}` over the evaluated queries and `{qid: {metric: value}}`, with metric
/// names as given (`ndcg@10`, `recall@100`, `map@1000`, `mrr@10`, `p@5`).
/// `ignore_identical_ids` drops documents whose id is the query's (BEIR);
/// `missing_as_zero` counts judged queries absent from the run as zero (trec_eval
/// `-c`).
#[pyfunction]
#[pyo3(signature = (qrels, run, metrics, *, ignore_identical_ids = true, missing_as_zero = false))]
pub fn evaluate<'py>(
    py: Python<'py>,
    qrels: &Bound<'py, PyAny>,
    run: &Bound<'py, PyAny>,
    metrics: Vec<String>,
    ignore_identical_ids: bool,
    missing_as_zero: bool,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let parsed: Vec<Metric> = metrics
        .iter()
        .map(|m| m.parse::<Metric>().map_err(|e| value_error(e.to_string())))
        .collect::<PyResult<_>>()?;
    let held;
    let qrels = match qrels.cast::<PyQrels>() {
        Ok(q) => &q.get().qrels,
        Err(_) => {
            held = qrels_of(qrels)?;
            &held
        }
    };
    let run = run_of(run)?;
    let options = EvalOptions {
        ignore_identical_ids,
        missing_as_zero,
    };
    let eval = py.detach(|| eval_run(qrels, &run, &parsed, &options));
    let means = PyDict::new(py);
    for (name, mean) in metrics.iter().zip(&eval.means) {
        means.set_item(name, mean)?;
    }
    let per_query = PyDict::new(py);
    for q in &eval.per_query {
        let values = PyDict::new(py);
        for (name, v) in metrics.iter().zip(&q.values) {
            values.set_item(name, v)?;
        }
        per_query.set_item(&q.qid, values)?;
    }
    Ok((means, per_query))
}

/// Per-query values as pytrec_eval returns them: `{qid: {key: value}}` for the
/// queries of the run that have judgments, `measures` being `(kind, k, key)` with
/// `k = None` for no cutoff (trec_eval's `map`, `ndcg`, `recip_rank`). Identical ids
/// are kept, as trec_eval keeps them.
#[pyfunction]
pub fn evaluate_per_query<'py>(
    py: Python<'py>,
    qrels: &Bound<'py, PyQrels>,
    run: &Bound<'py, PyAny>,
    measures: Vec<(String, Option<usize>, String)>,
) -> PyResult<Bound<'py, PyDict>> {
    let metrics: Vec<Metric> = measures
        .iter()
        .map(|(kind, k, _)| {
            let k = k.unwrap_or(usize::MAX);
            if k == 0 {
                return Err(value_error("a cutoff must be at least 1"));
            }
            Ok(Metric::new(kind_of(kind)?, k))
        })
        .collect::<PyResult<_>>()?;
    let run = run_of(run)?;
    let qrels = &qrels.get().qrels;
    let options = EvalOptions {
        ignore_identical_ids: false,
        missing_as_zero: false,
    };
    let eval = py.detach(|| eval_run(qrels, &run, &metrics, &options));
    let keys: Vec<Bound<'py, PyString>> = measures
        .iter()
        .map(|(_, _, key)| PyString::intern(py, key))
        .collect();
    let out = PyDict::new(py);
    for q in &eval.per_query {
        let values = PyDict::new(py);
        for (key, v) in keys.iter().zip(&q.values) {
            values.set_item(key, v)?;
        }
        out.set_item(&q.qid, values)?;
    }
    Ok(out)
}
