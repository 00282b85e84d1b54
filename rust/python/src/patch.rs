//! Binding for gathering blocks (patches) into a preallocated batch (`nitrain_kernels::patch`).

use ndarray::{ArrayView2, Ix4};
use num_traits::AsPrimitive;
use numpy::{Element, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{
    batch_dtypes, borrow_images, borrow_out, for_in_out_dtype, kernel_err, kernel_pool, out_view,
    view3,
};
use nitrain_kernels::{patch, Pixel};

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
    let (tin, tout) = batch_dtypes("blocks", &images, &out)?;
    let origins = origins.as_array();
    for_in_out_dtype!(tin, tout, blocks_typed(py, &images, origins, &size, &out))
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
    let pool = kernel_pool()?;
    py.detach(|| pool.install(|| patch::gather(OP, &views, &items, size3, out_v)))
        .map_err(kernel_err)
}
