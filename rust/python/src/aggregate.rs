//! Bindings for sliding-window aggregation.

use ndarray::{Axis, Ix3, Ix4, Ix5};
use numpy::{PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{borrow_out, kernel_err, kernel_pool};
use nitrain_kernels::aggregate;

/// Sum blocks of model outputs into a volume: `out[c, o + i] += window[i] * blocks[n, c, i]` and
/// `weights[o + i] += window[i]` at each corner `o = origins[n]`. 3-D: blocks `(N, C, b0, b1, b2)`,
/// window `(b0, b1, b2)`, out `(C, X, Y, Z)`, weights `(X, Y, Z)`; 2-D likewise with one axis fewer.
/// float32, any strides; runs without the GIL on the kernel thread pool.
#[pyfunction]
pub fn accumulate_blocks<'py>(
    py: Python<'py>,
    blocks: PyReadonlyArrayDyn<'py, f32>,
    origins: PyReadonlyArray2<'py, i64>,
    window: PyReadonlyArrayDyn<'py, f32>,
    out: Bound<'py, PyAny>,
    weights: Bound<'py, PyAny>,
) -> PyResult<()> {
    const OP: &str = "block aggregation";
    let b = blocks.as_array();
    let dims = b.ndim().saturating_sub(2);
    if dims != 2 && dims != 3 {
        return Err(PyValueError::new_err(format!(
            "{OP}: blocks must have shape (N, C, *block) for 2-D or 3-D blocks, got {}-D",
            b.ndim()
        )));
    }
    let table = origins.as_array();
    if table.ncols() != dims {
        return Err(PyValueError::new_err(format!(
            "{OP}: origins must have shape (N, {dims}), got {} columns",
            table.ncols()
        )));
    }
    let list = crate::arrays::corners3(OP, table, dims)?;
    let mut out_b = borrow_out::<f32>(OP, &out)?;
    let mut w_b = borrow_out::<f32>(OP, &weights)?;
    let (mut bv, mut wv, mut ov, mut gv) = (
        b,
        window.as_array(),
        out_b.as_array_mut(),
        w_b.as_array_mut(),
    );
    if wv.ndim() != dims || ov.ndim() != dims + 1 || gv.ndim() != dims {
        return Err(PyValueError::new_err(format!(
            "{OP}: for {dims}-D blocks the window must be {dims}-D, out {}-D and weights {dims}-D, got {}-D, \
             {}-D and {}-D",
            dims + 1,
            wv.ndim(),
            ov.ndim(),
            gv.ndim()
        )));
    }
    if dims == 2 {
        bv = bv.insert_axis(Axis(4));
        wv = wv.insert_axis(Axis(2));
        ov = ov.insert_axis(Axis(3));
        gv = gv.insert_axis(Axis(2));
    }
    let err = |e: ndarray::ShapeError| PyValueError::new_err(format!("{OP}: {e}"));
    let bv = bv.into_dimensionality::<Ix5>().map_err(err)?;
    let wv = wv.into_dimensionality::<Ix3>().map_err(err)?;
    let ov = ov.into_dimensionality::<Ix4>().map_err(err)?;
    let gv = gv.into_dimensionality::<Ix3>().map_err(err)?;
    let pool = kernel_pool()?;
    py.detach(|| pool.install(|| aggregate::accumulate_blocks(bv, &list, wv, ov, gv)))
        .map_err(kernel_err)
}
