//! Bindings for the intensity kernels.

use num_traits::AsPrimitive;
use numpy::{Element, PyReadonlyArrayDyn};
use pyo3::prelude::*;

use crate::arrays::{
    borrow_out, for_in_dtype, in_dtype, kernel_err, kernel_pool, out_dtype, OutDtype,
};
use nitrain_kernels::{intensity, noise, Pixel, Scalar};

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

fn stats_typed<T: Element + Scalar>(
    py: Python<'_>,
    image: &Bound<'_, PyAny>,
) -> PyResult<(f64, f64, f64, f64, u64)> {
    let arr = image.extract::<PyReadonlyArrayDyn<'_, T>>()?;
    let view = arr.as_array();
    let pool = kernel_pool()?;
    let s = py
        .detach(|| pool.install(|| intensity::stats(view)))
        .map_err(kernel_err)?;
    Ok((s.min, s.max, s.mean, s.sd, s.count))
}

/// `(min, max)` over the non-NaN voxels of `image` (`(nan, nan)` if there are none), in one parallel pass.
#[pyfunction]
pub fn intensity_range(py: Python<'_>, image: Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let tin = in_dtype("intensity range", "image", &image)?;
    for_in_dtype!(tin, range_typed::<_>(py, &image))
}

fn range_typed<T: Element + Scalar>(
    py: Python<'_>,
    image: &Bound<'_, PyAny>,
) -> PyResult<(f64, f64)> {
    let arr = image.extract::<PyReadonlyArrayDyn<'_, T>>()?;
    let view = arr.as_array();
    let pool = kernel_pool()?;
    py.detach(|| pool.install(|| intensity::min_max(view)))
        .map_err(kernel_err)
}

/// A voxel-wise kernel from an image into an output of the same shape (float32 or float64, any strides).
#[derive(Clone, Copy)]
pub(crate) enum Pointwise {
    Rescale { scale: f64, offset: f64 },
    Clip { low: f64, high: f64 },
    Noise { sd: f64, seed: u64, stream: u64 },
}

/// Dispatch on the input and output dtypes, release the GIL, run `op` on the kernel pool.
pub(crate) fn pointwise(
    py: Python<'_>,
    name: &str,
    image: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    op: Pointwise,
) -> PyResult<()> {
    let tin = in_dtype(name, "image", image)?;
    match out_dtype(name, out)? {
        OutDtype::F32 => for_in_dtype!(tin, pointwise_typed::<_, f32>(py, name, image, out, op)),
        OutDtype::F64 => for_in_dtype!(tin, pointwise_typed::<_, f64>(py, name, image, out, op)),
    }
}

fn pointwise_typed<'py, T, O>(
    py: Python<'py>,
    name: &str,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    op: Pointwise,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<f64>,
    O: Element + Pixel,
    f64: AsPrimitive<O>,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<O>(name, out)?;
    let src = arr.as_array();
    let dst = out_b.as_array_mut();
    let pool = kernel_pool()?;
    py.detach(|| {
        pool.install(|| match op {
            Pointwise::Rescale { scale, offset } => intensity::rescale(src, dst, scale, offset),
            Pointwise::Clip { low, high } => intensity::clip(src, dst, low, high),
            Pointwise::Noise { sd, seed, stream } => {
                noise::add_gaussian(src, dst, sd, seed, stream)
            }
        })
    })
    .map_err(kernel_err)
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
    pointwise(
        py,
        "rescale",
        &image,
        &out,
        Pointwise::Rescale { scale, offset },
    )
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
    pointwise(py, "clip", &image, &out, Pointwise::Clip { low, high })
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
