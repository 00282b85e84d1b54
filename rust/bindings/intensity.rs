//! Bindings for the intensity kernels.

use num_traits::AsPrimitive;
use numpy::{Element, PyReadonlyArrayDyn};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::arrays::{for_in_dtype, in_dtype, kernel_err, out_dtype, OutDtype};
use super::sampling::borrow_out;
use crate::kernels::{intensity, Pixel};
use crate::pool;

/// `(min, max, mean, sd, count)` over the non-NaN voxels of `image` (population sd), in one parallel,
/// thread-count-independent pass (plus one for the centred squares).
#[pyfunction]
pub fn intensity_stats(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
) -> PyResult<(f64, f64, f64, f64, u64)> {
    let tin = in_dtype("intensity statistics", "image", &image)?;
    for_in_dtype!(tin, stats_typed::<_>(py, &image))
}

fn stats_typed<T: Element + Pixel + AsPrimitive<f64>>(
    py: Python<'_>,
    image: &Bound<'_, PyAny>,
) -> PyResult<(f64, f64, f64, f64, u64)> {
    let arr = image.extract::<PyReadonlyArrayDyn<'_, T>>()?;
    let view = arr.as_array();
    let pool = pool::pool().map_err(PyRuntimeError::new_err)?;
    let s = py
        .detach(|| pool.install(|| intensity::stats(view)))
        .map_err(kernel_err)?;
    Ok((s.min, s.max, s.mean, s.sd, s.count))
}

/// `out = image * scale + offset` (float32 or float64 `out` of the same shape, any strides).
#[pyfunction]
pub fn rescale(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    scale: f64,
    offset: f64,
) -> PyResult<()> {
    let tin = in_dtype("rescale", "image", &image)?;
    match out_dtype("rescale", &out)? {
        OutDtype::F32 => for_in_dtype!(
            tin,
            rescale_typed::<_, f32>(py, &image, &out, scale, offset)
        ),
        OutDtype::F64 => for_in_dtype!(
            tin,
            rescale_typed::<_, f64>(py, &image, &out, scale, offset)
        ),
    }
}

fn rescale_typed<'py, T, O>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    scale: f64,
    offset: f64,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<f64>,
    O: Element + Pixel,
    f64: AsPrimitive<O>,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<O>("rescale", out)?;
    let src = arr.as_array();
    let dst = out_b.as_array_mut();
    let pool = pool::pool().map_err(PyRuntimeError::new_err)?;
    py.detach(|| pool.install(|| intensity::rescale(src, dst, scale, offset)))
        .map_err(kernel_err)
}

/// `out = clip(image, low, high)` (NaN stays NaN).
#[pyfunction]
pub fn clip(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    low: f64,
    high: f64,
) -> PyResult<()> {
    let tin = in_dtype("clip", "image", &image)?;
    match out_dtype("clip", &out)? {
        OutDtype::F32 => for_in_dtype!(tin, clip_typed::<_, f32>(py, &image, &out, low, high)),
        OutDtype::F64 => for_in_dtype!(tin, clip_typed::<_, f64>(py, &image, &out, low, high)),
    }
}

fn clip_typed<'py, T, O>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    low: f64,
    high: f64,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<f64>,
    O: Element + Pixel,
    f64: AsPrimitive<O>,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<O>("clip", out)?;
    let src = arr.as_array();
    let dst = out_b.as_array_mut();
    let pool = pool::pool().map_err(PyRuntimeError::new_err)?;
    py.detach(|| pool.install(|| intensity::clip(src, dst, low, high)))
        .map_err(kernel_err)
}

/// Quantiles of the non-NaN voxels (numpy's 'linear' method, as `np.nanquantile`).
#[pyfunction]
pub fn quantiles(py: Python<'_>, image: Bound<'_, PyAny>, qs: Vec<f64>) -> PyResult<Vec<f64>> {
    let tin = in_dtype("quantiles", "image", &image)?;
    for_in_dtype!(tin, quantiles_typed::<_>(py, &image, &qs))
}

fn quantiles_typed<T: Element + Pixel + AsPrimitive<f64>>(
    py: Python<'_>,
    image: &Bound<'_, PyAny>,
    qs: &[f64],
) -> PyResult<Vec<f64>> {
    let arr = image.extract::<PyReadonlyArrayDyn<'_, T>>()?;
    let view = arr.as_array();
    py.detach(|| intensity::quantiles(view, qs))
        .map_err(kernel_err)
}
