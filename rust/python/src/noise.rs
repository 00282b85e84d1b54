//! Bindings for the noise kernels (`nitrain_kernels::noise`).

use numpy::PyReadonlyArray2;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{borrow_out, kernel_err, kernel_pool, out_dtype, out_view, OutDtype};
use crate::intensity::{pointwise, Pointwise};
use nitrain_kernels::noise;

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

/// Add, to a batch of gathered blocks, the noise `RandomNoise` would have added to their images (see
/// `kernels::noise::add_gaussian_to_blocks`). `origins`/`shapes`: `(N, D)`; `sds`/`seeds`: `(N, M)` noise
/// steps per item, applied in order (a NaN sd skips a step).
#[pyfunction]
pub fn add_noise_to_blocks(
    py: Python<'_>,
    batch: Bound<'_, PyAny>,
    origins: PyReadonlyArray2<'_, i64>,
    shapes: PyReadonlyArray2<'_, i64>,
    sds: PyReadonlyArray2<'_, f64>,
    seeds: PyReadonlyArray2<'_, u64>,
) -> PyResult<()> {
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
            let view = out_view(OP, b.as_array_mut(), dims + 1, 4)?
                .into_dimensionality::<ndarray::Ix4>()
                .map_err(|e| PyValueError::new_err(format!("{OP}: {e}")))?;
            let pool = kernel_pool()?;
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
