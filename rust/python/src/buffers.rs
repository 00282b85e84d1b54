//! New arrays over recycled buffers (`nitrain_kernels::buffers`), for the images and batches the kernels write.

use ndarray::{ArrayView, IxDyn, ShapeBuilder};
use numpy::{Element, PyArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use nitrain_kernels::buffers::{self, AlignedBuf};
use nitrain_kernels::recycle;

/// Owns the memory of arrays made by `empty_array`; gives it back for reuse when the last one dies.
#[pyclass(frozen, module = "nitrain._core")]
struct ImageBuffer {
    buf: Option<AlignedBuf>,
}

impl Drop for ImageBuffer {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            buffers::give_back(buf);
        }
    }
}

fn make<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
    fortran: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(std::mem::size_of::<T>()))
        .ok_or_else(|| PyValueError::new_err(format!("empty_array: shape {shape:?} is too big")))?;
    let buf = buffers::take(n);
    // SAFETY: the buffer holds `n` bytes, aligned for `T`, and lives as long as `owner`, which the new
    // array keeps as its base. Its contents are unspecified, like `numpy.empty`'s.
    let view = unsafe {
        ArrayView::from_shape_ptr(IxDyn(shape).set_f(fortran), buf.as_mut_ptr() as *const T)
    };
    let owner = Bound::new(py, ImageBuffer { buf: Some(buf) })?;
    // SAFETY: as above; the array is marked writable, and nothing else refers to this buffer.
    let arr = unsafe { PyArrayDyn::<T>::borrow_from_array(&view, owner.into_any()) };
    Ok(arr.into_any())
}

/// An uninitialised array of `shape` and `dtype` ('float32', 'float64', 'uint8' or 'uint32'), Fortran-ordered
/// or C-ordered, over a recycled buffer when one of a similar size is free.
#[pyfunction]
#[pyo3(signature = (shape, dtype, fortran))]
pub fn empty_array<'py>(
    py: Python<'py>,
    shape: Vec<usize>,
    dtype: &str,
    fortran: bool,
) -> PyResult<Bound<'py, PyAny>> {
    match dtype {
        "float32" => make::<f32>(py, &shape, fortran),
        "float64" => make::<f64>(py, &shape, fortran),
        "uint8" => make::<u8>(py, &shape, fortran),
        "uint32" => make::<u32>(py, &shape, fortran),
        other => Err(PyTypeError::new_err(format!(
            "empty_array: dtype must be float32, float64, uint8 or uint32, got {other}"
        ))),
    }
}

/// Set the limit on bytes kept for reuse (`None`: leave it). Returns `(limit, bytes kept, buffers kept)`
/// as they are after the call, output and work buffers together (one limit bounds both).
#[pyfunction]
#[pyo3(signature = (limit=None))]
pub fn buffer_pool(limit: Option<usize>) -> (usize, usize, usize) {
    if let Some(limit) = limit {
        recycle::set_limit(limit);
    }
    recycle::state()
}
