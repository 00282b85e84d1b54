//! Binding for gathering slices into a preallocated batch (`nitrain_kernels::slice`).

use ndarray::{ArrayView2, Ix3};
use num_traits::AsPrimitive;
use numpy::{Element, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{
    batch_dtypes, borrow_images, borrow_out, for_in_out_dtype, kernel_err, kernel_pool, out_view,
    view3,
};
use nitrain_kernels::{slice, Pixel};

/// Copy slices `index[n] = (image, slice)` along `axis` into `out[n]`.
///
/// `images`: 3-D arrays (or 2-D, giving 1-D slices) of one dtype, any strides; `out`: float32/float64 of
/// shape `(N, *plane)`, any strides. Runs without the GIL on the kernel thread pool.
#[pyfunction]
pub fn gather_slices<'py>(
    py: Python<'py>,
    images: Vec<Bound<'py, PyAny>>,
    index: PyReadonlyArray2<'py, i64>,
    axis: usize,
    out: Bound<'py, PyAny>,
) -> PyResult<()> {
    let (tin, tout) = batch_dtypes("slices", &images, &out)?;
    let index = index.as_array();
    for_in_out_dtype!(tin, tout, slices_typed(py, &images, index, axis, &out))
}

fn slices_typed<'py, T, O>(
    py: Python<'py>,
    images: &[Bound<'py, PyAny>],
    index: ArrayView2<'_, i64>,
    axis: usize,
    out: &Bound<'py, PyAny>,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<O>,
    O: Element + Pixel,
{
    const OP: &str = "slices";
    let (borrows, dims) = borrow_images::<T>(OP, images)?;
    let views = borrows
        .iter()
        .map(|b| view3(b.as_array()))
        .collect::<PyResult<Vec<_>>>()?;
    let mut out_b = borrow_out::<O>(OP, out)?;
    let out_v = out_view(OP, out_b.as_array_mut(), dims, 3)?
        .into_dimensionality::<Ix3>()
        .map_err(|e| PyValueError::new_err(format!("{OP}: {e}")))?;
    let pool = kernel_pool()?;
    py.detach(|| pool.install(|| slice::gather_slices(&views, index, axis, dims, out_v)))
        .map_err(kernel_err)
}
