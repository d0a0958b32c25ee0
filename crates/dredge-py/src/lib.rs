//! The `dredge._dredge` extension module behind the `dredge` Python package: an
//! `Index` (open, build, search, mine) and trec_eval-exact evaluation
//! over Python dicts or files. Everything here converts arguments and results;
//! the work is dredge-index's, dredge-eval's and dredge-mine's, run with the GIL
//! released. The Python side (`python/dredge`) adds the pytrec_eval and
//! sentence-transformers drop-ins.

use pyo3::prelude::*;

mod error;
mod eval;
mod index;
mod vectors;

pub use error::DredgeError;

#[pymodule]
fn _dredge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DredgeError", m.py().get_type::<DredgeError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<index::PyIndex>()?;
    m.add_class::<eval::PyQrels>()?;
    m.add_class::<vectors::PyVectorIndex>()?;
    m.add_function(wrap_pyfunction!(eval::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(index::load_queries, m)?)?;
    m.add_function(wrap_pyfunction!(index::join_shards, m)?)?;
    m.add_function(wrap_pyfunction!(eval::evaluate_per_query, m)?)?;
    Ok(())
}
