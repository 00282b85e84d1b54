//! `nitrain._core`: the compiled kernels behind nitrain. This file only registers the bindings.

pub mod bindings;
pub mod buffers;
pub mod kernels;
pub mod pool;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    bindings::register(m)
}
