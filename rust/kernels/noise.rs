//! Additive Gaussian noise with counter-based randomness.
//!
//! The deviate added to a voxel depends on `(seed, stream)` and the voxel's Fortran-order linear index (the
//! order of an ANTs image's buffer), so the result is the same on any number of threads and for any
//! memory layout of the input.

use ndarray::{ArrayView, ArrayViewMut, Axis, IxDyn};
use num_traits::AsPrimitive;
use rayon::prelude::*;

use super::random::{tables, Counter};
use super::{fmt_shape, KernelError, Pixel};

/// `dst = src + sd * N(0, 1)`, computed in f64 and stored as `O`.
pub fn add_gaussian<T, O>(
    src: ArrayView<'_, T, IxDyn>,
    dst: ArrayViewMut<'_, O, IxDyn>,
    sd: f64,
    seed: u64,
    stream: u64,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<f64>,
    O: Pixel,
    f64: AsPrimitive<O>,
{
    const OP: &str = "gaussian noise";
    if src.shape() != dst.shape() {
        return Err(KernelError::value(
            OP,
            format!(
                "output shape {} differs from input shape {}",
                fmt_shape(dst.shape()),
                fmt_shape(src.shape())
            ),
        ));
    }
    if !(sd.is_finite() && sd >= 0.0) {
        return Err(KernelError::value(
            OP,
            format!("sd must be a finite number >= 0, got {sd}"),
        ));
    }
    if src.is_empty() {
        return Ok(());
    }
    let rng = Counter::new(seed, stream);
    let zig = tables();
    // Fortran order = C order of the reversed axes; chunks are the first reversed axis (the slowest).
    let src = src.reversed_axes();
    let dst = dst.reversed_axes();
    let (src, mut dst) = if src.ndim() == 0 {
        (src.insert_axis(Axis(0)), dst.insert_axis(Axis(0)))
    } else {
        (src, dst)
    };
    let chunk_len = (src.len() / src.shape()[0]) as u64;
    dst.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(src.axis_iter(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(c, (mut d, s))| {
            let base = c as u64 * chunk_len;
            match (d.as_slice_mut(), s.as_slice()) {
                (Some(d), Some(s)) => {
                    for (i, (d, s)) in d.iter_mut().zip(s).enumerate() {
                        *d = (s.as_() + sd * rng.normal_with(zig, base + i as u64)).as_();
                    }
                }
                _ => {
                    for (i, (d, s)) in d.iter_mut().zip(s.iter()).enumerate() {
                        *d = (s.as_() + sd * rng.normal_with(zig, base + i as u64)).as_();
                    }
                }
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder};

    #[test]
    fn noise_is_layout_and_thread_independent() {
        let f = Array::from_shape_fn((9, 8, 7).f(), |(i, j, k)| (i + j + k) as f32).into_dyn();
        let c = f.as_standard_layout().to_owned();
        let run = |src: &ArrayD<f32>, threads: usize| {
            let mut out = ArrayD::<f32>::zeros(IxDyn(&[9, 8, 7]).f());
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| add_gaussian(src.view(), out.view_mut(), 2.0, 11, 3))
                .unwrap();
            out
        };
        let a = run(&f, 1);
        assert_eq!(a, run(&f, 3));
        assert_eq!(a, run(&c, 2));
        assert!(a.iter().zip(f.iter()).any(|(x, y)| x != y));
    }

    #[test]
    fn bad_arguments() {
        let a = ArrayD::<f32>::zeros(IxDyn(&[3, 3]));
        let mut o = ArrayD::<f32>::zeros(IxDyn(&[3, 4]));
        assert!(add_gaussian(a.view(), o.view_mut(), 1.0, 0, 0).is_err());
        let mut o = ArrayD::<f32>::zeros(IxDyn(&[3, 3]));
        assert!(add_gaussian(a.view(), o.view_mut(), -1.0, 0, 0).is_err());
    }
}
