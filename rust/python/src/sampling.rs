//! Bindings for the sampling kernels: slices, blocks and patches into a preallocated batch.

use ndarray::{ArrayView2, Ix3, Ix4};
use num_traits::AsPrimitive;
use numpy::{Element, PyReadonlyArray2, PyReadwriteArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::{
    borrow_images, for_in_dtype, in_dtype, kernel_err, out_dtype, out_view, view3, InDtype,
    OutDtype,
};
use nitrain_kernels::pool;
use nitrain_kernels::{patch, slice, Pixel};

/// Call `$f::<In, Out>(args)` for the runtime dtypes `$tin`, `$tout`.
macro_rules! dispatch {
    ($tin:expr, $tout:expr, $f:ident($($arg:expr),*)) => {
        match $tout {
            OutDtype::F32 => for_in_dtype!($tin, $f::<_, f32>($($arg),*)),
            OutDtype::F64 => for_in_dtype!($tin, $f::<_, f64>($($arg),*)),
        }
    };
}

fn dtypes(
    op: &str,
    images: &[Bound<'_, PyAny>],
    out: &Bound<'_, PyAny>,
) -> PyResult<(InDtype, OutDtype)> {
    let first = images.first().ok_or_else(|| {
        PyValueError::new_err(format!("{op}: expected at least one image, got none"))
    })?;
    Ok((in_dtype(op, "images[0]", first)?, out_dtype(op, out)?))
}

pub(crate) fn borrow_out<'py, O: Element>(
    op: &str,
    out: &Bound<'py, PyAny>,
) -> PyResult<PyReadwriteArrayDyn<'py, O>> {
    out.extract::<PyReadwriteArrayDyn<'py, O>>().map_err(|e| {
        PyTypeError::new_err(format!(
            "{op}: out must be a writeable array that no input shares memory with ({e})"
        ))
    })
}

fn the_pool() -> PyResult<std::sync::Arc<rayon::ThreadPool>> {
    pool::pool().map_err(kernel_err)
}

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
    let (tin, tout) = dtypes("slices", &images, &out)?;
    let index = index.as_array();
    dispatch!(tin, tout, slices_typed(py, &images, index, axis, &out))
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
    let pool = the_pool()?;
    py.detach(|| pool.install(|| slice::gather_slices(&views, index, axis, dims, out_v)))
        .map_err(kernel_err)
}

/// Copy blocks of `size` at `origins[n] = (image, o_0, .., o_{D-1})` into `out[n]`.
///
/// `images`: D-D arrays (D = 2 or 3) of one dtype, any strides; `size`: D block lengths; `out`: float32 or
/// float64 of shape `(N, *size)`, any strides. Runs without the GIL on the kernel thread pool.
#[pyfunction]
pub fn gather_blocks<'py>(
    py: Python<'py>,
    images: Vec<Bound<'py, PyAny>>,
    origins: PyReadonlyArray2<'py, i64>,
    size: Vec<usize>,
    out: Bound<'py, PyAny>,
) -> PyResult<()> {
    let (tin, tout) = dtypes("blocks", &images, &out)?;
    let origins = origins.as_array();
    dispatch!(tin, tout, blocks_typed(py, &images, origins, &size, &out))
}

fn blocks_typed<'py, T, O>(
    py: Python<'py>,
    images: &[Bound<'py, PyAny>],
    origins: ArrayView2<'_, i64>,
    size: &[usize],
    out: &Bound<'py, PyAny>,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<O>,
    O: Element + Pixel,
{
    const OP: &str = "blocks";
    let (borrows, dims) = borrow_images::<T>(OP, images)?;
    if size.len() != dims || size.contains(&0) {
        return Err(PyValueError::new_err(format!(
            "{OP}: size must be {dims} positive lengths for {dims}-D images, got {size:?}"
        )));
    }
    let mut size3 = [1usize; 3];
    size3[..dims].copy_from_slice(size);
    let views = borrows
        .iter()
        .map(|b| view3(b.as_array()))
        .collect::<PyResult<Vec<_>>>()?;
    let items = patch::items_from_table(OP, &views, origins, size3, dims).map_err(kernel_err)?;
    let mut out_b = borrow_out::<O>(OP, out)?;
    let out_v = out_view(OP, out_b.as_array_mut(), dims + 1, 4)?
        .into_dimensionality::<Ix4>()
        .map_err(|e| PyValueError::new_err(format!("{OP}: {e}")))?;
    let pool = the_pool()?;
    py.detach(|| pool.install(|| patch::gather(OP, &views, &items, size3, out_v)))
        .map_err(kernel_err)
}
