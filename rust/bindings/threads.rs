use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::pool;

/// Number of threads the kernels run on.
#[pyfunction]
pub fn num_threads() -> PyResult<usize> {
    pool::num_threads().map_err(PyValueError::new_err)
}

/// Set the number of kernel threads (`None`: `NITRAIN_NUM_THREADS`, else the CPU count). Returns it.
#[pyfunction]
#[pyo3(signature = (n=None))]
pub fn set_num_threads(n: Option<usize>) -> PyResult<usize> {
    pool::set_num_threads(n).map_err(|e| {
        if e.contains("at least") || e.contains("NITRAIN_NUM_THREADS") {
            PyValueError::new_err(e)
        } else {
            PyRuntimeError::new_err(e)
        }
    })
}
