//! Separable Gaussian smoothing of 2-D and 3-D images, matching `scipy.ndimage.gaussian_filter`
//! (mode 'reflect', kernel radius `int(truncate * sigma + 0.5)`).
//!
//! Three passes, one per axis, through Fortran-ordered work buffers. Every pass is written as sums of
//! scaled contiguous runs (columns, then planes), which the compiler vectorises; each output line or plane
//! is computed by one thread from inputs nobody writes, so results do not depend on the thread count.

use ndarray::{s, ArrayView3, ArrayViewMut, Axis, IxDyn};
use num_traits::{AsPrimitive, Float};
use rayon::prelude::*;

use super::scratch::Scratch;
use super::{check_same_shape, fmt_shape, KernelError, Pixel};

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

/// `out[i] = sum_t w[t] * src(t)[i]`, taps added in order from a zero start. The output is built in
/// register-sized blocks (each block of `out` is written once, not once per tap). On x86-64 CPUs with
/// AVX2 the same loop is compiled 8 floats wide; neither version fuses multiply and add, so both give the
/// same bits.
#[inline]
fn weighted_sum<'x, O: Float + 'x>(out: &mut [O], w: &[O], src: impl Fn(usize) -> &'x [O]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { weighted_sum_avx2(out, w, src) };
            return;
        }
    }
    weighted_sum_portable(out, w, src);
}

/// Outputs per register block: 256 bytes, eight AVX2 registers (64 f32 or 32 f64), all kept in
/// registers across the taps.
const BLOCK_BYTES: usize = 256;

#[inline(always)]
fn weighted_sum_portable<'x, O: Float + 'x>(
    out: &mut [O],
    w: &[O],
    src: impl Fn(usize) -> &'x [O],
) {
    if std::mem::size_of::<O>() == 4 {
        weighted_sum_blocks::<O, { BLOCK_BYTES / 4 }>(out, w, src)
    } else {
        weighted_sum_blocks::<O, { BLOCK_BYTES / 8 }>(out, w, src)
    }
}

#[inline(always)]
fn weighted_sum_blocks<'x, O: Float + 'x, const BLOCK: usize>(
    out: &mut [O],
    w: &[O],
    src: impl Fn(usize) -> &'x [O],
) {
    let n = out.len();
    let mut b = 0;
    while b + BLOCK <= n {
        let mut acc = [O::zero(); BLOCK];
        for (t, &wt) in w.iter().enumerate() {
            let x: &[O; BLOCK] = src(t)[b..b + BLOCK].try_into().unwrap();
            for k in 0..BLOCK {
                acc[k] = acc[k] + wt * x[k];
            }
        }
        out[b..b + BLOCK].copy_from_slice(&acc);
        b += BLOCK;
    }
    if b < n {
        let len = n - b;
        let mut acc = [O::zero(); BLOCK];
        for (t, &wt) in w.iter().enumerate() {
            let x = &src(t)[b..n];
            for (a, &v) in acc[..len].iter_mut().zip(x) {
                *a = *a + wt * v;
            }
        }
        out[b..n].copy_from_slice(&acc[..len]);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn weighted_sum_avx2<'x, O: Float + 'x>(
    out: &mut [O],
    w: &[O],
    src: impl Fn(usize) -> &'x [O],
) {
    weighted_sum_portable(out, w, src);
}

/// Smooths single planes of a 3-D source along axes 0 and 1.
struct PlaneSmoother<'a, 's, T, O> {
    src: ArrayView3<'s, T>,
    w0: &'a [O],
    w1: &'a [O],
    n0: usize,
    n1: usize,
}

impl<T, O> PlaneSmoother<'_, '_, T, O>
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel + Float,
{
    /// Plane `k` of the source, smoothed along axis 0 (into `scratch.0`) then axis 1 (into `out`).
    fn smooth(&self, k: usize, out: &mut [O], scratch: &mut (Vec<O>, Vec<O>)) {
        let (n0, n1) = (self.n0, self.n1);
        let r0 = self.w0.len() / 2;
        let r1 = (self.w1.len() / 2) as isize;
        let (tmp, padded) = scratch;
        for (j, tmp_col) in tmp.chunks_mut(n0).enumerate() {
            let line = self.src.slice(s![.., j, k]);
            match line.as_slice() {
                Some(l) => {
                    for (p, &v) in padded[r0..r0 + n0].iter_mut().zip(l) {
                        *p = v.as_();
                    }
                }
                None => {
                    for (p, &v) in padded[r0..r0 + n0].iter_mut().zip(line.iter()) {
                        *p = v.as_();
                    }
                }
            }
            // The borders, reflected (any kernel radius, even wider than the line).
            for p in (0..r0).chain(r0 + n0..n0 + 2 * r0) {
                padded[p] = padded[r0 + reflect(p as isize - r0 as isize, n0)];
            }
            let padded: &[O] = padded;
            weighted_sum(tmp_col, self.w0, |t| &padded[t..t + n0]);
        }
        // The source rows of each output column are looked up once per column, not once per block of
        // outputs (`reflect` divides).
        let tmp: &[O] = tmp;
        let mut taps: Vec<&[O]> = Vec::with_capacity(self.w1.len());
        for (j, out_col) in out.chunks_mut(n0).enumerate() {
            taps.clear();
            taps.extend((0..self.w1.len()).map(|t| {
                let jj = reflect(j as isize - r1 + t as isize, n1);
                &tmp[jj * n0..(jj + 1) * n0]
            }));
            weighted_sum(out_col, self.w1, |t| taps[t]);
        }
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
    O: Pixel + Float,
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
    check_same_shape(OP, src.shape(), dst.shape())?;
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

    // All three passes fused. Each task owns a contiguous range of output planes and slides a window of
    // `2 * r2 + 1` planes along axis 2; a plane entering the window is smoothed along axes 0 and 1 straight
    // from the source. Nothing bigger than the window is allocated, and each voxel is read from and
    // written to memory once (plus the window's halo at the range ends). Every output value is computed
    // by the same operations in the same order whatever the split, so threads do not change results.
    let r2 = (w2.len() / 2) as isize;
    let window = w2.len();
    let mut dst_rev = dst.view_mut().reversed_axes();
    let Some(out) = dst_rev.as_slice_mut() else {
        return Err(KernelError::value(
            OP,
            "the output must be a Fortran-ordered contiguous array",
        ));
    };
    let tasks = rayon::current_num_threads().clamp(1, n2);
    let per_task = n2.div_ceil(tasks);
    let planes_xy = PlaneSmoother {
        src: src3,
        w0: &w0,
        w1: &w1,
        n0,
        n1,
    };
    out.par_chunks_mut(plane * per_task)
        .enumerate()
        .for_each(|(task, out_range)| {
            let k_start = task * per_task;
            let mut ring: Vec<Scratch<O>> = (0..window)
                .map(|_| Scratch::take(plane, O::zero()))
                .collect();
            let mut scratch = (vec![O::zero(); plane], vec![O::zero(); n0 + w0.len()]);
            let slot = |v: isize| v.rem_euclid(window as isize) as usize;
            for v in (k_start as isize - r2)..(k_start as isize + r2) {
                planes_xy.smooth(reflect(v, n2), &mut ring[slot(v)], &mut scratch);
            }
            for (dk, out_plane) in out_range.chunks_mut(plane).enumerate() {
                let k = (k_start + dk) as isize;
                planes_xy.smooth(reflect(k + r2, n2), &mut ring[slot(k + r2)], &mut scratch);
                let taps: Vec<&[O]> = (0..window)
                    .map(|t| &ring[slot(k - r2 + t as isize)][..])
                    .collect();
                weighted_sum(out_plane, &w2, |t| taps[t]);
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
