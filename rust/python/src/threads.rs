use pyo3::prelude::*;

use crate::error::kernel_err;
use nitrain_kernels::pool;

/// Number of threads the kernels run on.
#[pyfunction]
pub fn num_threads() -> PyResult<usize> {
    pool::num_threads().map_err(kernel_err)
}

/// Set the number of kernel threads (`None`: `NITRAIN_NUM_THREADS`, else the CPU count). Returns it.
#[pyfunction]
#[pyo3(signature = (n=None))]
pub fn set_num_threads(n: Option<usize>) -> PyResult<usize> {
    pool::set_num_threads(n).map_err(kernel_err)
}
