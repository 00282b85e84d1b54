//! Separable Gaussian smoothing of 2-D and 3-D images, matching `scipy.ndimage.gaussian_filter`
//! (mode 'reflect', kernel radius `int(truncate * sigma + 0.5)`).
//!
//! The three axes in one fused pass over strips of columns (see `gaussian`): a strip of each plane is
//! smoothed along axes 0 and 1 as it enters a window of strip-planes that stays in cache, then the window
//! is combined along axis 2. The sums are scaled contiguous runs, which the compiler vectorises; each
//! output strip is computed by one thread from inputs nobody writes, so results do not depend on the
//! thread count.

use ndarray::{s, ArrayView3, ArrayViewMut, Axis, IxDyn};
use num_traits::{AsPrimitive, Float};
use rayon::prelude::*;

use super::scratch::Scratch;
use super::{simd_versions, KernelError, Pixel};

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

simd_versions! {
    /// `out[i] = sum_t w[t] * src(t)[i]`, taps added in order from a zero start. The output is built in
    /// register-sized blocks (each block of `out` is written once, not once per tap). On x86-64 CPUs
    /// with AVX-512 or AVX2 the same loop is compiled 16 or 8 floats wide; no version fuses multiply and
    /// add, so all give the same bits.
    fn weighted_sum<'x, O, S>(out: &mut [O], w: &[O], src: S) -> ()
    where [O: Float + 'x, S: Fn(usize) -> &'x [O]] = weighted_sum_portable;
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

/// Smooths one strip of columns (`j0..j1`) of single planes of a 3-D source along axes 0 and 1.
struct StripSmoother<'a, 's, T, O> {
    src: ArrayView3<'s, T>,
    w0: &'a [O],
    w1: &'a [O],
    n0: usize,
    n1: usize,
}

/// Work buffers of one strip: the axis-0 result with the axis-1 halo, and one padded source column.
struct StripScratch<O: Copy + Send + 'static> {
    tmp: Scratch<O>,
    padded: Scratch<O>,
}

impl<T, O> StripSmoother<'_, '_, T, O>
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel + Float,
{
    /// Columns `j0..j1` of plane `k`, smoothed along axis 0 (into `scratch.tmp`, which also holds the
    /// `r1` reflected neighbour columns on each side) then along axis 1 (into `out`, `n0 * (j1 - j0)`).
    fn smooth(&self, k: usize, j0: usize, j1: usize, out: &mut [O], scratch: &mut StripScratch<O>) {
        let n0 = self.n0;
        let r0 = self.w0.len() / 2;
        let r1 = self.w1.len() / 2;
        let StripScratch { tmp, padded } = scratch;
        let ext = j1 - j0 + 2 * r1;
        for (c, tmp_col) in tmp[..ext * n0].chunks_mut(n0).enumerate() {
            let j = reflect(j0 as isize - r1 as isize + c as isize, self.n1);
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
        // Along axis 1 the strip's columns, halo included, sit next to each other in `tmp`: tap `t` of
        // the whole strip is one contiguous run, `t` columns further on.
        let len = (j1 - j0) * n0;
        let tmp: &[O] = tmp;
        weighted_sum(&mut out[..len], self.w1, |t| &tmp[t * n0..t * n0 + len]);
    }
}

/// The output buffer, shared by the strip tasks, each of which writes only its own columns.
struct SharedOut<O>(*mut O, usize);
// SAFETY: tasks write disjoint regions (see `region`), and the buffer outlives them.
unsafe impl<O: Send> Send for SharedOut<O> {}
unsafe impl<O: Send> Sync for SharedOut<O> {}

impl<O> SharedOut<O> {
    /// `len` elements from `start`.
    ///
    /// # Safety
    /// No two live regions may overlap, and `start + len` must not exceed the buffer.
    #[allow(clippy::mut_from_ref)]
    unsafe fn region(&self, start: usize, len: usize) -> &mut [O] {
        assert!(start + len <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Bytes of smoothed planes a strip keeps for the axis-2 pass: small enough to stay in a core's L2.
const STRIP_RING_BYTES: usize = 512 * 1024;

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
    let nd = crate::image_pair_dims(OP, src.shape(), dst.shape())?;
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
    crate::check_fortran_out(OP, &dst)?;
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

    // All three passes fused. The planes are cut into strips of whole columns (a strip of plane `k` is
    // one contiguous run of the output); each task owns strips and slides a window of `2 * r2 + 1`
    // smoothed strip-planes along axis 2. A strip-plane entering the window is smoothed along axes 0 and
    // 1 straight from the source (with `r1` halo columns), so nothing bigger than the window is
    // allocated, each voxel is written once, and the window stays in cache. Every output value is
    // computed by the same operations in the same order whatever the strips or threads.
    let r2 = (w2.len() / 2) as isize;
    let r1 = w1.len() / 2;
    let window = w2.len();
    let mut dst_rev = dst.view_mut().reversed_axes();
    let Some(out) = dst_rev.as_slice_mut() else {
        return Err(KernelError::value(
            OP,
            "the output must be a Fortran-ordered contiguous array",
        ));
    };
    let threads = rayon::current_num_threads().max(1);
    let cols = (STRIP_RING_BYTES / (window * n0 * std::mem::size_of::<O>())).clamp(8, n1.max(8));
    let strips = n1.div_ceil(cols).max(threads.min(n1)).div_ceil(threads) * threads;
    let strips = strips.min(n1);
    let cols = n1.div_ceil(strips);
    let shared = SharedOut(out.as_mut_ptr(), out.len());
    let smoother = StripSmoother {
        src: src3,
        w0: &w0,
        w1: &w1,
        n0,
        n1,
    };
    (0..n1.div_ceil(cols)).into_par_iter().for_each(|strip| {
        let (j0, j1) = (strip * cols, ((strip + 1) * cols).min(n1));
        let len = (j1 - j0) * n0;
        let mut ring: Vec<Scratch<O>> =
            (0..window).map(|_| Scratch::take(len, O::zero())).collect();
        let mut scratch = StripScratch {
            tmp: Scratch::take((j1 - j0 + 2 * r1) * n0, O::zero()),
            padded: Scratch::take(n0 + w0.len(), O::zero()),
        };
        let slot = |v: isize| v.rem_euclid(window as isize) as usize;
        for v in -r2..r2 {
            smoother.smooth(reflect(v, n2), j0, j1, &mut ring[slot(v)], &mut scratch);
        }
        for k in 0..n2 as isize {
            let entering = slot(k + r2);
            smoother.smooth(
                reflect(k + r2, n2),
                j0,
                j1,
                &mut ring[entering],
                &mut scratch,
            );
            let taps: Vec<&[O]> = (0..window)
                .map(|t| &ring[slot(k - r2 + t as isize)][..len])
                .collect();
            // SAFETY: strip `strip` of plane `k` is written by this task only, and lies inside `out`.
            let out_strip = unsafe { shared.region(k as usize * plane + j0 * n0, len) };
            weighted_sum(out_strip, &w2, |t| taps[t]);
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
