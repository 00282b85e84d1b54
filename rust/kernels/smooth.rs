//! Separable Gaussian smoothing of 2-D and 3-D images, matching `scipy.ndimage.gaussian_filter`
//! (mode 'reflect', kernel radius `int(truncate * sigma + 0.5)`).
//!
//! Three passes, one per axis, through Fortran-ordered work buffers. Every pass is written as sums of
//! scaled contiguous runs (columns, then planes), which the compiler vectorises; each output line or plane
//! is computed by one thread from inputs nobody writes, so results do not depend on the thread count.

use ndarray::{s, ArrayView3, ArrayViewMut, Axis, IxDyn};
use num_traits::{AsPrimitive, Float};
use rayon::prelude::*;
use std::sync::Mutex;

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

/// Work buffers kept between calls. A fresh 35 MB buffer costs more than the smoothing itself: every
/// first write to one of its zero pages is a copy-on-write fault with a TLB shoot-down across CPUs.
pub trait Scratch: Sized + Copy + Send + 'static {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;

    /// A buffer of length `n` (contents unspecified: callers overwrite it).
    fn take(n: usize, fill: Self) -> Vec<Self> {
        let mut v = Self::pool()
            .lock()
            .ok()
            .and_then(|mut p| {
                let i = p.iter().position(|b| b.capacity() >= n)?;
                Some(p.swap_remove(i))
            })
            .unwrap_or_default();
        if v.len() >= n {
            v.truncate(n);
        } else {
            v.resize(n, fill);
        }
        v
    }

    fn give(v: Vec<Self>) {
        if let Ok(mut p) = Self::pool().lock() {
            if p.len() < 4 {
                p.push(v);
            }
        }
    }
}

impl Scratch for f32 {
    fn pool() -> &'static Mutex<Vec<Vec<f32>>> {
        static P: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
        &P
    }
}

impl Scratch for f64 {
    fn pool() -> &'static Mutex<Vec<Vec<f64>>> {
        static P: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());
        &P
    }
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
    O: Pixel + Float + Scratch,
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
    if !dst.view().reversed_axes().is_standard_layout() {
        return Err(KernelError::value(
            OP,
            "the output must be a Fortran-ordered contiguous array",
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

    // Passes 1 and 2, fused plane by plane: along axis 0 from the source (any layout) into a plane-sized
    // buffer that stays in L2, then along axis 1 (sums of whole columns) into the Fortran-ordered `b`.
    let mut b = O::take(plane * n2, O::zero());
    let (r0, r1) = ((w0.len() / 2) as isize, (w1.len() / 2) as isize);
    let r = r0 as usize;
    b.par_chunks_mut(plane).enumerate().for_each_init(
        || (vec![O::zero(); plane], vec![O::zero(); n0 + 2 * r]),
        |(tmp, padded), (k, out_plane)| {
            for (j, tmp_col) in tmp.chunks_mut(n0).enumerate() {
                let line = src3.slice(s![.., j, k]);
                match line.as_slice() {
                    Some(l) => {
                        for (p, &v) in padded[r..r + n0].iter_mut().zip(l) {
                            *p = v.as_();
                        }
                    }
                    None => {
                        for (p, &v) in padded[r..r + n0].iter_mut().zip(line.iter()) {
                            *p = v.as_();
                        }
                    }
                }
                // The borders, reflected (any kernel radius, even wider than the line).
                for p in (0..r).chain(r + n0..n0 + 2 * r) {
                    padded[p] = padded[r + reflect(p as isize - r0, n0)];
                }
                tmp_col.iter_mut().for_each(|o| *o = O::zero());
                for (t, &w) in w0.iter().enumerate() {
                    axpy(tmp_col, w, &padded[t..t + n0]);
                }
            }
            for (j, out_col) in out_plane.chunks_mut(n0).enumerate() {
                out_col.iter_mut().for_each(|o| *o = O::zero());
                for (t, &w) in w1.iter().enumerate() {
                    let jj = reflect(j as isize - r1 + t as isize, n1);
                    axpy(out_col, w, &tmp[jj * n0..(jj + 1) * n0]);
                }
            }
        },
    );

    // Pass 3: along axis 2. Each output plane is a weighted sum of whole input planes; planes are taken in
    // groups and swept in blocks of the plane so the input planes a group needs stay in L2.
    let r2 = (w2.len() / 2) as isize;
    let mut dst_rev = dst.view_mut().reversed_axes();
    let Some(out) = dst_rev.as_slice_mut() else {
        return Err(KernelError::value(
            OP,
            "the output must be a Fortran-ordered contiguous array",
        ));
    };
    const GROUP: usize = 8;
    const BLOCK: usize = 2048;
    out.par_chunks_mut(plane * GROUP)
        .enumerate()
        .for_each(|(g, out_group)| {
            let k0 = g * GROUP;
            for b0 in (0..plane).step_by(BLOCK) {
                let b1 = (b0 + BLOCK).min(plane);
                for (dk, out_plane) in out_group.chunks_mut(plane).enumerate() {
                    let k = k0 + dk;
                    let seg = &mut out_plane[b0..b1];
                    seg.iter_mut().for_each(|o| *o = O::zero());
                    for (t, &w) in w2.iter().enumerate() {
                        let kk = reflect(k as isize - r2 + t as isize, n2);
                        axpy(seg, w, &b[kk * plane + b0..kk * plane + b1]);
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
