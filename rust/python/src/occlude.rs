//! Binding for occlusion (`nitrain_kernels::occlude`).

use num_traits::AsPrimitive;
use numpy::{Element, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{
    borrow_out, for_in_dtype, in_dtype, kernel_err, kernel_pool, out_dtype, out_view, view3,
    OutDtype,
};
use nitrain_kernels::{occlude, Pixel};

/// Copies of `image` (2-D or 3-D) with the block of `size` at each row of `origins` set to `value`,
/// written into `out` of shape `(N, *image.shape)`.
#[pyfunction]
pub fn occluded_copies(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    origins: PyReadonlyArray2<'_, i64>,
    size: Vec<usize>,
    value: f64,
    out: Bound<'_, PyAny>,
) -> PyResult<()> {
    let tin = in_dtype("occlusion", "image", &image)?;
    match out_dtype("occlusion", &out)? {
        OutDtype::F32 => for_in_dtype!(
            tin,
            occlude_typed::<_, f32>(py, &image, &origins, &size, value, &out)
        ),
        OutDtype::F64 => for_in_dtype!(
            tin,
            occlude_typed::<_, f64>(py, &image, &origins, &size, value, &out)
        ),
    }
}

fn occlude_typed<'py, T, O>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    origins: &PyReadonlyArray2<'py, i64>,
    size: &[usize],
    value: f64,
    out: &Bound<'py, PyAny>,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<O>,
    O: Element + Pixel,
    f64: AsPrimitive<O>,
{
    const OP: &str = "occlusion";
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let dims = arr.as_array().ndim();
    if dims != 2 && dims != 3 {
        return Err(PyValueError::new_err(format!(
            "{OP}: expected a 2-D or 3-D image, got {dims}-D"
        )));
    }
    let view = view3(arr.as_array())?;
    let table = origins.as_array();
    if size.len() != dims || table.ncols() != dims || size.contains(&0) {
        return Err(PyValueError::new_err(format!(
            "{OP}: size must be {dims} positive lengths and origins of shape (N, {dims}) for a {dims}-D image, \
             got size {size:?} and origins with {} columns",
            table.ncols()
        )));
    }
    let list = crate::arrays::corners3(OP, table, dims)?;
    let mut size3 = [1usize; 3];
    size3[..dims].copy_from_slice(size);
    let mut out_b = borrow_out::<O>(OP, out)?;
    let out_v = out_view(OP, out_b.as_array_mut(), dims + 1, 4)?
        .into_dimensionality::<ndarray::Ix4>()
        .map_err(|e| PyValueError::new_err(format!("{OP}: {e}")))?;
    let pool = kernel_pool()?;
    let fill: O = value.as_();
    py.detach(|| pool.install(|| occlude::occluded_copies(view, &list, size3, fill, out_v)))
        .map_err(kernel_err)
}
