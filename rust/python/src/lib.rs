//! `nitrain._core`: the extension module. This crate only binds `nitrain-kernels` to Python: check
//! arguments, take array views, release the GIL, run the kernel, map its error (`error.rs`).

pub mod aggregate;
pub mod arrays;
pub mod buffers;
pub mod error;
pub mod intensity;
pub mod nifti;
pub mod noise;
pub mod occlude;
pub mod patch;
pub mod slice;
pub mod smooth;
pub mod threads;
pub mod warp;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    register(m)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(slice::gather_slices, m)?)?;
    m.add_function(wrap_pyfunction!(patch::gather_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(intensity::intensity_stats, m)?)?;
    m.add_function(wrap_pyfunction!(intensity::intensity_range, m)?)?;
    m.add_function(wrap_pyfunction!(intensity::rescale, m)?)?;
    m.add_function(wrap_pyfunction!(intensity::clip, m)?)?;
    m.add_function(wrap_pyfunction!(intensity::quantiles, m)?)?;
    m.add_function(wrap_pyfunction!(noise::add_gaussian_noise, m)?)?;
    m.add_function(wrap_pyfunction!(smooth::gaussian_smooth, m)?)?;
    m.add_function(wrap_pyfunction!(occlude::occluded_copies, m)?)?;
    m.add_function(wrap_pyfunction!(noise::add_noise_to_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(warp::affine_warp, m)?)?;
    m.add_function(wrap_pyfunction!(warp::bspline_warp, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate::accumulate_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(buffers::empty_array, m)?)?;
    m.add_function(wrap_pyfunction!(buffers::buffer_pool, m)?)?;
    m.add_function(wrap_pyfunction!(threads::num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(threads::set_num_threads, m)?)?;
    nifti::register(m)?;
    Ok(())
}
