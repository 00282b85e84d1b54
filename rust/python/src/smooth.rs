//! Binding for Gaussian smoothing (`nitrain_kernels::smooth`).

use num_traits::{AsPrimitive, Float};
use numpy::{Element, PyReadonlyArrayDyn};
use pyo3::prelude::*;

use crate::arrays::{
    borrow_out, for_in_dtype, in_dtype, kernel_err, kernel_pool, out_dtype, OutDtype,
};
use nitrain_kernels::{smooth, Pixel};

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
    let pool = kernel_pool()?;
    py.detach(|| pool.install(|| smooth::gaussian(src, dst, sigma, truncate)))
        .map_err(kernel_err)
}
