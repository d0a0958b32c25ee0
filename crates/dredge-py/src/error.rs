//! dredge's errors as Python exceptions: `DredgeError` carrying the whole chain of
//! causes (file and line included), `ValueError` for arguments Python checks.

use pyo3::PyErr;
use pyo3::create_exception;

create_exception!(
    _dredge,
    DredgeError,
    pyo3::exceptions::PyException,
    "An error of dredge: bad input (the message names the file and line), a missing or damaged index, or work that failed."
);

/// The error and its causes, `: `-separated, as the command line prints them.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A dredge error as a `DredgeError`.
pub fn to_py(error: impl std::error::Error + 'static) -> PyErr {
    DredgeError::new_err(chain(&error))
}

/// A `ValueError` about an argument.
pub fn value_error(message: impl Into<String>) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(message.into())
}
