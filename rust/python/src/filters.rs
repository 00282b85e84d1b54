//! Bindings for noise and smoothing.

use num_traits::{AsPrimitive, Float};
use numpy::{Element, PyReadonlyArrayDyn};
use pyo3::prelude::*;

use crate::arrays::{for_in_dtype, in_dtype, kernel_err, out_dtype, OutDtype};
use crate::intensity::{pointwise, Pointwise};
use crate::sampling::borrow_out;
use nitrain_kernels::pool;
use nitrain_kernels::{noise, occlude, smooth, Pixel};

/// `out = image + sd * N(0, 1)`, the deviates a function of `(seed, stream, voxel index)` only.
#[pyfunction]
pub fn add_gaussian_noise(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    sd: f64,
    seed: u64,
    stream: u64,
) -> PyResult<()> {
    pointwise(
        py,
        "gaussian noise",
        &image,
        &out,
        Pointwise::Noise { sd, seed, stream },
    )
}

/// Separable Gaussian smoothing (scipy's 'reflect' mode), `sigma` in voxels per axis, into the
/// Fortran-ordered `out`.
#[pyfunction]
#[pyo3(signature = (image, out, sigma, truncate=4.0))]
pub fn gaussian_smooth(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    out: Bound<'_, PyAny>,
    sigma: Vec<f64>,
    truncate: f64,
) -> PyResult<()> {
    let tin = in_dtype("gaussian smoothing", "image", &image)?;
    match out_dtype("gaussian smoothing", &out)? {
        OutDtype::F32 => for_in_dtype!(
            tin,
            smooth_typed::<_, f32>(py, &image, &out, &sigma, truncate)
        ),
        OutDtype::F64 => for_in_dtype!(
            tin,
            smooth_typed::<_, f64>(py, &image, &out, &sigma, truncate)
        ),
    }
}

fn smooth_typed<'py, T, O>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    sigma: &[f64],
    truncate: f64,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<O>,
    O: Element + Pixel + Float,
    f64: AsPrimitive<O>,
{
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let mut out_b = borrow_out::<O>("gaussian smoothing", out)?;
    let src = arr.as_array();
    let dst = out_b.as_array_mut();
    let pool = pool::pool().map_err(kernel_err)?;
    py.detach(|| pool.install(|| smooth::gaussian(src, dst, sigma, truncate)))
        .map_err(kernel_err)
}

/// Copies of `image` (2-D or 3-D) with the block of `size` at each row of `origins` set to `value`,
/// written into `out` of shape `(N, *image.shape)`.
#[pyfunction]
pub fn occluded_copies(
    py: Python<'_>,
    image: Bound<'_, PyAny>,
    origins: numpy::PyReadonlyArray2<'_, i64>,
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
    origins: &numpy::PyReadonlyArray2<'py, i64>,
    size: &[usize],
    value: f64,
    out: &Bound<'py, PyAny>,
) -> PyResult<()>
where
    T: Element + Pixel + AsPrimitive<O>,
    O: Element + Pixel,
    f64: AsPrimitive<O>,
{
    use pyo3::exceptions::PyValueError;
    const OP: &str = "occlusion";
    let arr = image.extract::<PyReadonlyArrayDyn<'py, T>>()?;
    let dims = arr.as_array().ndim();
    if dims != 2 && dims != 3 {
        return Err(PyValueError::new_err(format!(
            "{OP}: expected a 2-D or 3-D image, got {dims}-D"
        )));
    }
    let view = crate::arrays::view3(arr.as_array())?;
    let table = origins.as_array();
    if size.len() != dims || table.ncols() != dims || size.contains(&0) {
        return Err(PyValueError::new_err(format!(
            "{OP}: size must be {dims} positive lengths and origins of shape (N, {dims}) for a {dims}-D image, \
             got size {size:?} and origins with {} columns",
            table.ncols()
        )));
    }
    let mut list = Vec::with_capacity(table.nrows());
    for (n, row) in table.rows().into_iter().enumerate() {
        let mut o = [0usize; 3];
        for d in 0..dims {
            if row[d] < 0 {
                return Err(PyValueError::new_err(format!(
                    "{OP}: origin {n} has a negative corner {:?}",
                    row.to_vec()
                )));
            }
            o[d] = row[d] as usize;
        }
        list.push(o);
    }
    let mut size3 = [1usize; 3];
    size3[..dims].copy_from_slice(size);
    let mut out_b = borrow_out::<O>(OP, out)?;
    let out_v = crate::arrays::out_view(OP, out_b.as_array_mut(), dims + 1, 4)?
        .into_dimensionality::<ndarray::Ix4>()
        .map_err(|e| PyValueError::new_err(format!("{OP}: {e}")))?;
    let pool = pool::pool().map_err(kernel_err)?;
    let fill: O = value.as_();
    py.detach(|| pool.install(|| occlude::occluded_copies(view, &list, size3, fill, out_v)))
        .map_err(kernel_err)
}

/// Add, to a batch of gathered blocks, the noise `RandomNoise` would have added to their images (see
/// `kernels::noise::add_gaussian_to_blocks`). `origins`/`shapes`: `(N, D)`; `sds`/`seeds`: `(N, M)` noise
/// steps per item, applied in order (a NaN sd skips a step).
#[pyfunction]
pub fn add_noise_to_blocks(
    py: Python<'_>,
    batch: Bound<'_, PyAny>,
    origins: numpy::PyReadonlyArray2<'_, i64>,
    shapes: numpy::PyReadonlyArray2<'_, i64>,
    sds: numpy::PyReadonlyArray2<'_, f64>,
    seeds: numpy::PyReadonlyArray2<'_, u64>,
) -> PyResult<()> {
    use pyo3::exceptions::PyValueError;
    const OP: &str = "deferred noise";
    let (o, s, sd, se) = (
        origins.as_array(),
        shapes.as_array(),
        sds.as_array(),
        seeds.as_array(),
    );
    let (n, dims) = o.dim();
    if s.dim() != (n, dims) || sd.nrows() != n || se.dim() != sd.dim() || !(2..=3).contains(&dims) {
        return Err(PyValueError::new_err(format!(
            "{OP}: expected origins and shapes of shape (N, 2 or 3) and sds, seeds of shape (N, M); got {:?}, {:?}, {:?}, {:?}",
            o.dim(), s.dim(), sd.dim(), se.dim()
        )));
    }
    let mut origins3 = Vec::with_capacity(n);
    let mut shapes3 = Vec::with_capacity(n);
    let mut ops = Vec::with_capacity(n);
    for i in 0..n {
        let (mut a, mut b) = ([0usize; 3], [1usize; 3]);
        for d in 0..dims {
            if o[[i, d]] < 0 || s[[i, d]] < 1 {
                return Err(PyValueError::new_err(format!(
                    "{OP}: item {i} has a negative origin or empty shape"
                )));
            }
            a[d] = o[[i, d]] as usize;
            b[d] = s[[i, d]] as usize;
        }
        origins3.push(a);
        shapes3.push(b);
        ops.push(
            sd.row(i)
                .iter()
                .zip(se.row(i).iter())
                .filter(|(v, _)| !v.is_nan())
                .map(|(&sd, &seed)| noise::NoiseOp { sd, seed })
                .collect::<Vec<_>>(),
        );
    }
    macro_rules! run {
        ($o:ty) => {{
            let mut b = borrow_out::<$o>(OP, &batch)?;
            let view = crate::arrays::out_view(OP, b.as_array_mut(), dims + 1, 4)?
                .into_dimensionality::<ndarray::Ix4>()
                .map_err(|e| PyValueError::new_err(format!("{OP}: {e}")))?;
            let pool = pool::pool().map_err(kernel_err)?;
            py.detach(|| {
                pool.install(|| noise::add_gaussian_to_blocks(view, &origins3, &shapes3, &ops))
            })
            .map_err(kernel_err)
        }};
    }
    match out_dtype(OP, &batch)? {
        OutDtype::F32 => run!(f32),
        OutDtype::F64 => run!(f64),
    }
}
