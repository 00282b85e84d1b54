//! Binding for affine resampling (`nitrain_kernels::warp`).

use numpy::{
    Element, PyArrayDescrMethods, PyReadonlyArray2, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::{borrow_out, for_in_dtype, in_dtype, kernel_err, kernel_pool};
use nitrain_kernels::warp::{self, Interpolation, WarpPixel};

const OP: &str = "affine warp";
const SPLINE_OP: &str = "B-spline warp";

fn interpolation_arg(op: &str, name: &str) -> PyResult<Interpolation> {
    match name {
        "linear" => Ok(Interpolation::Linear),
        "nearest" | "nearestneighbor" => Ok(Interpolation::Nearest),
        other => Err(PyValueError::new_err(format!(
            "{op}: interpolation must be 'linear' or 'nearest', got {other:?}"
        ))),
    }
}

/// A `TypeError` unless `out` has `image`'s dtype.
fn same_dtype(op: &str, image: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>) -> PyResult<()> {
    if let (Ok(a), Ok(b)) = (image.cast::<PyUntypedArray>(), out.cast::<PyUntypedArray>()) {
        if !a.dtype().is_equiv_to(&b.dtype()) {
            return Err(PyTypeError::new_err(format!(
                "{op}: out has dtype {} but image has dtype {}; they must be the same",
                b.dtype(),
                a.dtype()
            )));
        }
    }
    Ok(())
}

/// Resample `image` (2-D or 3-D, any strides) into `out` (same shape and dtype, Fortran-ordered):
/// `out[i, j, k] = image(matrix @ [i, j, k, 1])`, `matrix` of shape `(ndim, ndim + 1)` mapping an output
/// voxel index to an input continuous index. `interpolation`: 'linear' or 'nearest' ('nearestneighbor');
/// points outside the image (beyond half a voxel) get `fill`. ITK's rules (`ResampleImageFilter`).
#[pyfunction]
#[pyo3(signature = (image, out, matrix, interpolation, fill=0.0))]
pub fn affine_warp(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    matrix: PyReadonlyArray2<'_, f64>,
    interpolation: &str,
    fill: f64,
) -> PyResult<()> {
    let interp = interpolation_arg(OP, interpolation)?;
    let m = matrix.as_array();
    let flat: Vec<f64> = m.iter().copied().collect(); // row by row, whatever the strides
    let (rows, cols) = m.dim();
    let tin = in_dtype(OP, "image", &image)?;
    same_dtype(OP, &image, &out)?;
    if let Ok(a) = image.cast::<PyUntypedArray>() {
        if a.ndim() != rows || cols != rows + 1 {
            return Err(PyValueError::new_err(format!(
                "{OP}: a {}-D image takes a matrix of shape ({}, {}), got ({rows}, {cols})",
                a.ndim(),
                a.ndim(),
                a.ndim() + 1
            )));
        }
    }
    for_in_dtype!(tin, warp_typed::<_>(py, &image, &out, &flat, interp, fill))
}

fn warp_typed<'py, T>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    matrix: &[f64],
    interp: Interpolation,
    fill: f64,
) -> PyResult<()>
where
    T: Element + WarpPixel,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<T>(OP, out)?;
    let src = arr.as_array();
    let dst = out_b.as_array_mut();
    let pool = kernel_pool()?;
    let fill = T::from_f64(fill);
    py.detach(|| pool.install(|| warp::affine_warp(src, dst, matrix, interp, fill)))
        .map_err(kernel_err)
}

/// Resample `image` (2-D or 3-D, any strides) into `out` (same shape and dtype, Fortran-ordered) at
/// points displaced by the cubic B-spline through the control-point displacements `grid` (float64, shape
/// `(m0, m1[, m2], ndim)`, in voxels; at least 4 points per axis, spanning the image as ITK's B-spline
/// mesh does). Same rules as `affine_warp`.
#[pyfunction]
#[pyo3(signature = (image, out, grid, interpolation, fill=0.0))]
pub fn bspline_warp(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    grid: PyReadonlyArrayDyn<'_, f64>,
    interpolation: &str,
    fill: f64,
) -> PyResult<()> {
    let interp = interpolation_arg(SPLINE_OP, interpolation)?;
    let tin = in_dtype(SPLINE_OP, "image", &image)?;
    same_dtype(SPLINE_OP, &image, &out)?;
    for_in_dtype!(
        tin,
        spline_typed::<_>(py, &image, &out, &grid, interp, fill)
    )
}

fn spline_typed<'py, T>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    grid: &PyReadonlyArrayDyn<'py, f64>,
    interp: Interpolation,
    fill: f64,
) -> PyResult<()>
where
    T: Element + WarpPixel,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<T>(SPLINE_OP, out)?;
    let (src, g) = (arr.as_array(), grid.as_array());
    let dst = out_b.as_array_mut();
    let pool = kernel_pool()?;
    let fill = T::from_f64(fill);
    py.detach(|| pool.install(|| warp::bspline_warp(src, dst, g, interp, fill)))
        .map_err(kernel_err)
}
