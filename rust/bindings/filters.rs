//! Bindings for noise and smoothing.

use num_traits::{AsPrimitive, Float};
use numpy::{Element, PyReadonlyArrayDyn};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::arrays::{for_in_dtype, in_dtype, kernel_err, out_dtype, OutDtype};
use super::sampling::borrow_out;
use crate::kernels::{noise, smooth, Pixel};
use crate::pool;

/// `out = image + sd * N(0, 1)`, the deviates a function of `(seed, stream, voxel index)` only.
#[pyfunction]
pub fn add_gaussian_noise(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    sd: f64,
    seed: u64,
    stream: u64,
) -> PyResult<()> {
    let tin = in_dtype("gaussian noise", "image", &image)?;
    match out_dtype("gaussian noise", &out)? {
        OutDtype::F32 => for_in_dtype!(
            tin,
            noise_typed::<_, f32>(py, &image, &out, sd, seed, stream)
        ),
        OutDtype::F64 => for_in_dtype!(
            tin,
            noise_typed::<_, f64>(py, &image, &out, sd, seed, stream)
        ),
    }
}

fn noise_typed<'py, T, O>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    sd: f64,
    seed: u64,
    stream: u64,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<f64>,
    O: Element + Pixel,
    f64: AsPrimitive<O>,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<O>("gaussian noise", out)?;
    let src = arr.as_array();
    let dst = out_b.as_array_mut();
    let pool = pool::pool().map_err(PyRuntimeError::new_err)?;
    py.detach(|| pool.install(|| noise::add_gaussian(src, dst, sd, seed, stream)))
        .map_err(kernel_err)
}

/// Separable Gaussian smoothing (scipy's 'reflect' mode), `sigma` in voxels per axis, into the
/// Fortran-ordered `out`.
#[pyfunction]
#[pyo3(signature = (image, out, sigma, truncate=4.0))]
pub fn gaussian_smooth(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    sigma: Vec<f64>,
    truncate: f64,
) -> PyResult<()> {
    let tin = in_dtype("gaussian smoothing", "image", &image)?;
    match out_dtype("gaussian smoothing", &out)? {
        OutDtype::F32 => for_in_dtype!(
            tin,
            smooth_typed::<_, f32>(py, &image, &out, &sigma, truncate)
        ),
        OutDtype::F64 => for_in_dtype!(
            tin,
            smooth_typed::<_, f64>(py, &image, &out, &sigma, truncate)
        ),
    }
}

fn smooth_typed<'py, T, O>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    sigma: &[f64],
    truncate: f64,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<O>,
    O: Element + Pixel + Float,
    f64: AsPrimitive<O>,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<O>("gaussian smoothing", out)?;
    let src = arr.as_array();
    let dst = out_b.as_array_mut();
    let pool = pool::pool().map_err(PyRuntimeError::new_err)?;
    py.detach(|| pool.install(|| smooth::gaussian(src, dst, sigma, truncate)))
        .map_err(kernel_err)
}
