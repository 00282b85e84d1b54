//! What every binding file shares: turning Python arguments into typed array views (with errors that say
//! which argument went wrong), the one dtype dispatch, the writeable `out` borrow and the kernel pool.

use ndarray::{ArrayView3, ArrayViewMutD, Axis, Ix3, IxDyn};
use numpy::{
    Element, PyArrayDescrMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

pub use crate::error::kernel_err;
use nitrain_kernels::{fmt_shape, pool};

/// Element types accepted as input images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDtype {
    F32,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
}

/// Call `$f::<In, ..>(args)` for the runtime input dtype `$tin` (the one place that lists them).
macro_rules! for_in_dtype {
    ($tin:expr, $f:ident::<_ $(, $o:ty)?>($($arg:expr),*)) => {
        match $tin {
            $crate::arrays::InDtype::F32 => $f::<f32 $(, $o)?>($($arg),*),
            $crate::arrays::InDtype::F64 => $f::<f64 $(, $o)?>($($arg),*),
            $crate::arrays::InDtype::I8 => $f::<i8 $(, $o)?>($($arg),*),
            $crate::arrays::InDtype::U8 => $f::<u8 $(, $o)?>($($arg),*),
            $crate::arrays::InDtype::I16 => $f::<i16 $(, $o)?>($($arg),*),
            $crate::arrays::InDtype::U16 => $f::<u16 $(, $o)?>($($arg),*),
            $crate::arrays::InDtype::I32 => $f::<i32 $(, $o)?>($($arg),*),
            $crate::arrays::InDtype::U32 => $f::<u32 $(, $o)?>($($arg),*),
        }
    };
}
pub(crate) use for_in_dtype;

/// Call `$f::<In, Out>(args)` for the runtime input dtype `$tin` and output dtype `$tout`.
macro_rules! for_in_out_dtype {
    ($tin:expr, $tout:expr, $f:ident($($arg:expr),*)) => {
        match $tout {
            $crate::arrays::OutDtype::F32 => $crate::arrays::for_in_dtype!($tin, $f::<_, f32>($($arg),*)),
            $crate::arrays::OutDtype::F64 => $crate::arrays::for_in_dtype!($tin, $f::<_, f64>($($arg),*)),
        }
    };
}
pub(crate) use for_in_out_dtype;

/// Element types of output batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutDtype {
    F32,
    F64,
}

fn dtype_name(a: &Bound<'_, PyUntypedArray>) -> String {
    a.dtype()
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn as_untyped<'a, 'py>(
    op: &str,
    what: &str,
    obj: &'a Bound<'py, PyAny>,
) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>().map_err(|_| {
        let ty = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!("{op}: {what}: expected a numpy array, got {ty}"))
    })
}

pub fn in_dtype(op: &str, what: &str, obj: &Bound<'_, PyAny>) -> PyResult<InDtype> {
    let a = as_untyped(op, what, obj)?;
    let py = obj.py();
    let d = a.dtype();
    let table = [
        (numpy::dtype::<f32>(py), InDtype::F32),
        (numpy::dtype::<f64>(py), InDtype::F64),
        (numpy::dtype::<i8>(py), InDtype::I8),
        (numpy::dtype::<u8>(py), InDtype::U8),
        (numpy::dtype::<i16>(py), InDtype::I16),
        (numpy::dtype::<u16>(py), InDtype::U16),
        (numpy::dtype::<i32>(py), InDtype::I32),
        (numpy::dtype::<u32>(py), InDtype::U32),
    ];
    for (t, v) in table {
        if d.is_equiv_to(&t) {
            return Ok(v);
        }
    }
    Err(PyTypeError::new_err(format!(
        "{op}: {what} has dtype {}; expected one of float32, float64, int8, uint8, int16, uint16, int32, uint32",
        dtype_name(a)
    )))
}

pub fn out_dtype(op: &str, obj: &Bound<'_, PyAny>) -> PyResult<OutDtype> {
    let a = as_untyped(op, "out", obj)?;
    let py = obj.py();
    if a.dtype().is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(OutDtype::F32)
    } else if a.dtype().is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(OutDtype::F64)
    } else {
        Err(PyTypeError::new_err(format!(
            "{op}: out has dtype {}; expected float32 or float64",
            dtype_name(a)
        )))
    }
}

/// Borrow every image read-only as dtype `T`; all must share that dtype and be 2-D or 3-D alike.
/// Returns the borrows and the images' dimensionality.
pub fn borrow_images<'py, T: Element>(
    op: &str,
    images: &[Bound<'py, PyAny>],
) -> PyResult<(Vec<PyReadonlyArrayDyn<'py, T>>, usize)> {
    let mut out = Vec::with_capacity(images.len());
    let mut dims = 0;
    for (i, obj) in images.iter().enumerate() {
        let what = format!("images[{i}]");
        let a = as_untyped(op, &what, obj)?;
        let nd = a.ndim();
        if nd != 2 && nd != 3 {
            return Err(PyValueError::new_err(format!(
                "{op}: {what}: expected a 2-D or 3-D array, got shape {}",
                fmt_shape(a.shape())
            )));
        }
        if i == 0 {
            dims = nd;
        } else if nd != dims {
            return Err(PyValueError::new_err(format!(
                "{op}: {what} is {nd}-D (shape {}) but images[0] is {dims}-D; one batch takes one dimensionality",
                fmt_shape(a.shape())
            )));
        }
        let typed = obj.extract::<PyReadonlyArrayDyn<'py, T>>().map_err(|_| {
            let first = images[0]
                .cast::<PyUntypedArray>()
                .map(dtype_name)
                .unwrap_or_default();
            PyTypeError::new_err(format!(
                "{op}: {what} has dtype {} but images[0] has dtype {first}; one batch takes one dtype",
                dtype_name(a)
            ))
        })?;
        out.push(typed);
    }
    Ok((out, dims))
}

/// A 2-D or 3-D view as 3-D (2-D gains a trailing length-1 axis).
pub fn view3<'a, T>(a: ndarray::ArrayView<'a, T, IxDyn>) -> PyResult<ArrayView3<'a, T>> {
    let a = if a.ndim() == 2 {
        a.insert_axis(Axis(2))
    } else {
        a
    };
    a.into_dimensionality::<Ix3>()
        .map_err(|e| PyValueError::new_err(format!("internal: expected a 3-D view: {e}")))
}

/// A mutable output view with `want` dimensions, padded with trailing length-1 axes up to `pad_to`.
pub fn out_view<'a, T>(
    op: &str,
    a: ArrayViewMutD<'a, T>,
    want: usize,
    pad_to: usize,
) -> PyResult<ArrayViewMutD<'a, T>> {
    if a.ndim() != want {
        return Err(PyValueError::new_err(format!(
            "{op}: out must be {want}-D, got shape {}",
            fmt_shape(a.shape())
        )));
    }
    let mut a = a;
    while a.ndim() < pad_to {
        let n = a.ndim();
        a = a.insert_axis(Axis(n));
    }
    Ok(a)
}

/// The input dtype of `images[0]` and the dtype of `out`, for kernels that read a list of images.
pub fn batch_dtypes(
    op: &str,
    images: &[Bound<'_, PyAny>],
    out: &Bound<'_, PyAny>,
) -> PyResult<(InDtype, OutDtype)> {
    let first = images.first().ok_or_else(|| {
        PyValueError::new_err(format!("{op}: expected at least one image, got none"))
    })?;
    Ok((in_dtype(op, "images[0]", first)?, out_dtype(op, out)?))
}

/// Borrow `out` writeable as dtype `O`; fails when an input shares its memory.
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

/// The kernel thread pool, its start-up error mapped to a Python exception.
pub(crate) fn kernel_pool() -> PyResult<std::sync::Arc<rayon::ThreadPool>> {
    pool::pool().map_err(kernel_err)
}

/// The rows of an `(N, dims)` table of corners as 3-D corners (trailing axes 0), each checked
/// non-negative; errors name `op` and the row.
pub fn corners3(
    op: &str,
    table: ndarray::ArrayView2<'_, i64>,
    dims: usize,
) -> PyResult<Vec<[usize; 3]>> {
    let mut list = Vec::with_capacity(table.nrows());
    for (n, row) in table.rows().into_iter().enumerate() {
        let mut o = [0usize; 3];
        for d in 0..dims {
            if row[d] < 0 {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "{op}: origin {n} has a negative corner {:?}",
                    row.to_vec()
                )));
            }
            o[d] = row[d] as usize;
        }
        list.push(o);
    }
    Ok(list)
}
