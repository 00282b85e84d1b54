//! Separable Gaussian smoothing of 2-D and 3-D images, matching `scipy.ndimage.gaussian_filter`
//! (mode 'reflect', kernel radius `int(truncate * sigma + 0.5)`).
//!
//! Three passes, one per axis, through Fortran-ordered work buffers. Every pass is written as sums of
//! scaled contiguous runs (columns, then planes), which the compiler vectorises; each output line or plane
//! is computed by one thread from inputs nobody writes, so results do not depend on the thread count.

use ndarray::{s, ArrayView3, ArrayViewMut, Axis, IxDyn};
use num_traits::{AsPrimitive, Float};
use rayon::prelude::*;

use super::{fmt_shape, KernelError, Pixel};

/// Normalised Gaussian weights, as scipy computes them.
pub fn gaussian_weights(sigma: f64, truncate: f64) -> Vec<f64> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let radius = (truncate * sigma + 0.5) as isize;
    let w: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|v| v / total).collect()
}

/// scipy's 'reflect' boundary (half-sample symmetric: d c b a | a b c d | d c b a), any distance.
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let m = i.rem_euclid(2 * n);
    (if m >= n { 2 * n - 1 - m } else { m }) as usize
}

/// `out += w * x`, elementwise.
#[inline]
fn axpy<O: Float>(out: &mut [O], w: O, x: &[O]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = *o + w * v;
    }
}

/// Smooth `src` (2-D or 3-D, any layout) with per-axis `sigma` (in voxels) into `dst`, which must be
/// Fortran-contiguous with the same shape.
pub fn gaussian<T, O>(
    src: ndarray::ArrayView<'_, T, IxDyn>,
    mut dst: ArrayViewMut<'_, O, IxDyn>,
    sigma: &[f64],
    truncate: f64,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel + Float + 'static,
    f64: AsPrimitive<O>,
{
    const OP: &str = "gaussian smoothing";
    let nd = src.ndim();
    if nd != 2 && nd != 3 {
        return Err(KernelError::value(
            OP,
            format!(
                "expected a 2-D or 3-D image, got shape {}",
                fmt_shape(src.shape())
            ),
        ));
    }
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
    if sigma.len() != nd || sigma.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
        return Err(KernelError::value(
            OP,
            format!("sigma must be {nd} finite numbers >= 0, got {sigma:?}"),
        ));
    }
    if !(truncate.is_finite() && truncate > 0.0) {
        return Err(KernelError::value(
            OP,
            format!("truncate must be a positive number, got {truncate}"),
        ));
    }
    if src.is_empty() {
        return Ok(());
    }
    let src3: ArrayView3<'_, T> = {
        let v = if nd == 2 {
            src.insert_axis(Axis(2))
        } else {
            src
        };
        v.into_dimensionality()
            .map_err(|e| KernelError::value(OP, format!("internal shape error: {e}")))?
    };
    let (n0, n1, n2) = src3.dim();
    let plane = n0 * n1;
    let weights = |a: usize| -> Vec<O> {
        let s = sigma.get(a).copied().unwrap_or(0.0);
        gaussian_weights(s, truncate)
            .into_iter()
            .map(|w| w.as_())
            .collect()
    };
    let (w0, w1, w2) = (weights(0), weights(1), weights(2));

    // Pass 1: along axis 0, from the source (any layout) into Fortran-ordered `a`.
    let mut a = vec![O::zero(); plane * n2];
    let r0 = (w0.len() / 2) as isize;
    a.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(k, out_plane)| {
            let mut padded = vec![O::zero(); n0 + 2 * r0 as usize];
            for (j, out_col) in out_plane.chunks_mut(n0).enumerate() {
                let line = src3.slice(s![.., j, k]);
                match line.as_slice() {
                    Some(l) => {
                        for (p, v) in padded.iter_mut().enumerate() {
                            *v = l[reflect(p as isize - r0, n0)].as_();
                        }
                    }
                    None => {
                        for (p, v) in padded.iter_mut().enumerate() {
                            *v = line[reflect(p as isize - r0, n0)].as_();
                        }
                    }
                }
                out_col.iter_mut().for_each(|o| *o = O::zero());
                for (t, &w) in w0.iter().enumerate() {
                    axpy(out_col, w, &padded[t..t + n0]);
                }
            }
        });

    // Pass 2: along axis 1, plane by plane, as sums of whole columns.
    let mut b = vec![O::zero(); plane * n2];
    let r1 = (w1.len() / 2) as isize;
    b.par_chunks_mut(plane)
        .zip(a.par_chunks(plane))
        .for_each(|(out_plane, in_plane)| {
            for (j, out_col) in out_plane.chunks_mut(n0).enumerate() {
                for (t, &w) in w1.iter().enumerate() {
                    let jj = reflect(j as isize - r1 + t as isize, n1);
                    axpy(out_col, w, &in_plane[jj * n0..(jj + 1) * n0]);
                }
            }
        });
    drop(a);

    // Pass 3: along axis 2, each output plane a sum of whole input planes, written into `dst`.
    let r2 = (w2.len() / 2) as isize;
    let mut dst_rev = dst.view_mut().reversed_axes();
    let Some(out) = dst_rev.as_slice_mut() else {
        return Err(KernelError::value(
            OP,
            "the output must be a Fortran-ordered contiguous array",
        ));
    };
    out.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(k, out_plane)| {
            out_plane.iter_mut().for_each(|o| *o = O::zero());
            for (t, &w) in w2.iter().enumerate() {
                let kk = reflect(k as isize - r2 + t as isize, n2);
                axpy(out_plane, w, &b[kk * plane..(kk + 1) * plane]);
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder};

    #[test]
    fn weights_match_scipy_radius_and_sum_to_one() {
        let w = gaussian_weights(1.5, 4.0);
        assert_eq!(w.len(), 2 * 6 + 1);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(gaussian_weights(0.0, 4.0), vec![1.0]);
        assert_eq!(gaussian_weights(1e-238, 4.0), vec![1.0]);
    }

    #[test]
    fn reflect_is_half_sample_symmetric() {
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
        assert_eq!(reflect(-9, 1), 0);
    }

    #[test]
    fn constant_images_stay_constant_and_mass_is_kept_on_an_impulse() {
        let c = ArrayD::<f32>::from_elem(IxDyn(&[6, 7, 5]), 3.0);
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[6, 7, 5]).f());
        gaussian(c.view(), out.view_mut(), &[1.0, 2.0, 0.5], 4.0).unwrap();
        assert!(out.iter().all(|v| (v - 3.0).abs() < 1e-5));
        let mut imp = Array::<f32, _>::zeros((21, 21, 21).f()).into_dyn();
        imp[[10, 10, 10]] = 1.0;
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[21, 21, 21]).f());
        gaussian(imp.view(), out.view_mut(), &[1.0, 1.5, 2.0], 4.0).unwrap();
        assert!((out.sum() - 1.0).abs() < 1e-4);
        assert_eq!(out[[10, 10, 10]], out.iter().cloned().fold(0.0, f32::max));
    }

    #[test]
    fn bad_arguments() {
        let a = ArrayD::<f32>::zeros(IxDyn(&[4, 4, 4]));
        let mut o = ArrayD::<f32>::zeros(IxDyn(&[4, 4, 4]).f());
        assert!(gaussian(a.view(), o.view_mut(), &[1.0, -1.0, 1.0], 4.0).is_err());
        assert!(gaussian(a.view(), o.view_mut(), &[1.0, 1.0], 4.0).is_err());
        let mut c = ArrayD::<f32>::zeros(IxDyn(&[4, 4, 4]));
        let err = gaussian(a.view(), c.view_mut(), &[1.0, 1.0, 1.0], 4.0).unwrap_err();
        assert!(err.to_string().contains("Fortran"));
    }
}
