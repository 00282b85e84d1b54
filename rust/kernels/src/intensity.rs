//! Intensity statistics and linear rescaling: the kernels behind range normalisation and z-scoring.
//!
//! Work is split into fixed chunks (one per index of the slowest axis), never per thread, and partial
//! results are combined in chunk order: the same input gives the same bits on 1 or N threads.
//! NaN voxels are left out of the statistics and stay NaN in the output.

use ndarray::{ArrayView, ArrayViewMut, Axis, IxDyn, Zip};
use num_traits::AsPrimitive;
use rayon::prelude::*;

use super::{check_same_shape, simd_versions, KernelError, Pixel, Scalar};

/// Min, max, mean and population standard deviation over the finite-or-infinite (non-NaN) voxels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub sd: f64,
    pub count: u64,
}

#[derive(Clone, Copy)]
struct Partial {
    min: f64,
    max: f64,
    sum: f64,
    sumsq: f64,
    count: u64,
}

impl Partial {
    const EMPTY: Partial = Partial {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        sumsq: 0.0,
        count: 0,
    };

    fn merge(self, p: Partial) -> Partial {
        Partial {
            min: self.min.min(p.min),
            max: self.max.max(p.max),
            sum: self.sum + p.sum,
            sumsq: self.sumsq + p.sumsq,
            count: self.count + p.count,
        }
    }
}

fn slowest_axis(strides: &[isize]) -> usize {
    (0..strides.len())
        .max_by_key(|&a| strides[a].unsigned_abs())
        .unwrap_or(0)
}

const LANES: usize = 16;

/// Min, max, shifted sum and sum of squares of a run, in `LANES` independent accumulators (so the
/// compiler vectorises it), combined in a fixed order. NaN fails every comparison and is masked out.
/// Counts are kept as f64 lanes (exact below 2^53) so that the whole loop stays in vector registers.
#[inline(always)]
fn accumulate_any<T: Pixel + AsPrimitive<f64>>(run: &[T], shift: f64) -> Partial {
    let mut mn = [f64::INFINITY; LANES];
    let mut mx = [f64::NEG_INFINITY; LANES];
    let mut s1 = [0.0f64; LANES];
    let mut s2 = [0.0f64; LANES];
    let mut n = [0.0f64; LANES];
    #[inline(always)]
    fn step(
        x: f64,
        shift: f64,
        mn: &mut f64,
        mx: &mut f64,
        s1: &mut f64,
        s2: &mut f64,
        n: &mut f64,
    ) {
        let ok = !x.is_nan();
        *mn = if x < *mn { x } else { *mn };
        *mx = if x > *mx { x } else { *mx };
        let d = if ok { x - shift } else { 0.0 };
        *s1 += d;
        *s2 += d * d;
        *n += if ok { 1.0 } else { 0.0 };
    }
    let chunks = run.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            step(
                c[l].as_(),
                shift,
                &mut mn[l],
                &mut mx[l],
                &mut s1[l],
                &mut s2[l],
                &mut n[l],
            );
        }
    }
    for (l, v) in rest.iter().enumerate() {
        step(
            v.as_(),
            shift,
            &mut mn[l],
            &mut mx[l],
            &mut s1[l],
            &mut s2[l],
            &mut n[l],
        );
    }
    let mut p = Partial::EMPTY;
    for l in 0..LANES {
        p = p.merge(Partial {
            min: mn[l],
            max: mx[l],
            sum: s1[l],
            sumsq: s2[l],
            count: n[l] as u64,
        });
    }
    p
}

simd_versions! {
    fn accumulate<T>(run: &[T], shift: f64) -> Partial where [T: Scalar] = accumulate_any;
}

simd_versions! {
    fn min_max_run<T>(run: &[T], seed: T) -> (T, T) where [T: Scalar] = min_max_any;
}

fn check_not_empty<T>(op: &'static str, src: &ArrayView<'_, T, IxDyn>) -> Result<(), KernelError> {
    if src.is_empty() {
        return Err(KernelError::value(op, "the image has no voxels"));
    }
    Ok(())
}

/// `f` on each fixed chunk of `src` (one per index of its slowest axis), in parallel; the results in chunk
/// order. A chunk is handed over as one run in memory order (an ANTs view is Fortran-ordered), copied
/// first when it is not contiguous. A 0-d image is one chunk of one voxel.
fn per_run<T: Pixel, R: Send>(
    src: ArrayView<'_, T, IxDyn>,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let src = if src.ndim() == 0 {
        src.insert_axis(Axis(0))
    } else {
        src
    };
    let axis = Axis(slowest_axis(src.strides()));
    src.axis_iter(axis)
        .into_par_iter()
        .map(|chunk| match chunk.as_slice_memory_order() {
            Some(run) => f(run),
            None => f(&chunk.iter().copied().collect::<Vec<T>>()),
        })
        .collect()
}

/// Min, max, mean and population sd of the non-NaN voxels in one fused pass. Sums are taken about a
/// shift (the first non-NaN voxel found) so the variance does not cancel catastrophically.
pub fn stats<T: Scalar>(src: ArrayView<'_, T, IxDyn>) -> Result<Stats, KernelError> {
    check_not_empty("intensity statistics", &src)?;
    let shift = src
        .iter()
        .map(|v| -> f64 { v.as_() })
        .find(|x| !x.is_nan())
        .unwrap_or(0.0);
    let partials = per_run(src, |run| accumulate(run, shift));
    let total = partials.iter().fold(Partial::EMPTY, |a, p| a.merge(*p));
    if total.count == 0 {
        return Ok(Stats {
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
            sd: f64::NAN,
            count: 0,
        });
    }
    let n = total.count as f64;
    let m1 = total.sum / n;
    let var = (total.sumsq / n - m1 * m1).max(0.0);
    Ok(Stats {
        min: total.min,
        max: total.max,
        mean: shift + m1,
        sd: var.sqrt(),
        count: total.count,
    })
}

/// Min and max of a run in `MM_LANES` independent lanes, in the pixel type itself (no conversion):
/// `x < lane` is false for NaN, so NaN never enters a lane. Lanes start at `seed`, a non-NaN voxel.
const MM_LANES: usize = 32;

#[inline(always)]
fn min_max_any<T: Pixel + PartialOrd>(run: &[T], seed: T) -> (T, T) {
    let mut mn = [seed; MM_LANES];
    let mut mx = [seed; MM_LANES];
    let chunks = run.chunks_exact(MM_LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..MM_LANES {
            let x = c[l];
            mn[l] = if x < mn[l] { x } else { mn[l] };
            mx[l] = if x > mx[l] { x } else { mx[l] };
        }
    }
    for (l, &x) in rest.iter().enumerate() {
        mn[l] = if x < mn[l] { x } else { mn[l] };
        mx[l] = if x > mx[l] { x } else { mx[l] };
    }
    let lo = mn.iter().fold(seed, |a, &b| if b < a { b } else { a });
    let hi = mx.iter().fold(seed, |a, &b| if b > a { b } else { a });
    (lo, hi)
}

/// Min and max of the non-NaN voxels, in one parallel pass with no arithmetic: what range
/// normalisation needs, at memory speed. `(NaN, NaN)` when every voxel is NaN.
pub fn min_max<T: Scalar>(src: ArrayView<'_, T, IxDyn>) -> Result<(f64, f64), KernelError> {
    check_not_empty("intensity range", &src)?;
    // Any non-NaN voxel seeds every lane (min and max are order-free, so threads do not matter).
    let Some(seed) = src
        .iter()
        .copied()
        .find(|v| !AsPrimitive::<f64>::as_(*v).is_nan())
    else {
        return Ok((f64::NAN, f64::NAN));
    };
    let (lo, hi) = per_run(src, |run| min_max_run(run, seed))
        .into_iter()
        .fold((seed, seed), |(a, b), (c, d)| {
            (if c < a { c } else { a }, if d > b { d } else { b })
        });
    Ok((lo.as_(), hi.as_()))
}

/// `dst = f(src)` elementwise, through f64, for any layout on either side.
pub fn map_into<T, O, F>(
    op: &'static str,
    src: ArrayView<'_, T, IxDyn>,
    mut dst: ArrayViewMut<'_, O, IxDyn>,
    f: F,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<f64>,
    O: Pixel + 'static,
    f64: AsPrimitive<O>,
    F: Fn(f64) -> f64 + Sync,
{
    check_same_shape(op, src.shape(), dst.shape())?;
    if src.ndim() == 0 || src.is_empty() {
        Zip::from(&mut dst)
            .and(&src)
            .for_each(|d, &s| *d = f(s.as_()).as_());
        return Ok(());
    }
    let axis = Axis(slowest_axis(src.strides()));
    dst.axis_iter_mut(axis)
        .into_par_iter()
        .zip(src.axis_iter(axis).into_par_iter())
        .for_each(|(mut d, s)| {
            Zip::from(&mut d)
                .and(&s)
                .for_each(|d, &s| *d = f(s.as_()).as_());
        });
    Ok(())
}

/// `dst = src * scale + offset`.
pub fn rescale<T, O>(
    src: ArrayView<'_, T, IxDyn>,
    dst: ArrayViewMut<'_, O, IxDyn>,
    scale: f64,
    offset: f64,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<f64>,
    O: Pixel + 'static,
    f64: AsPrimitive<O>,
{
    map_into("rescale", src, dst, |x| x * scale + offset)
}

/// `dst = min(max(src, lo), hi)`; NaN stays NaN.
pub fn clip<T, O>(
    src: ArrayView<'_, T, IxDyn>,
    dst: ArrayViewMut<'_, O, IxDyn>,
    lo: f64,
    hi: f64,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<f64>,
    O: Pixel + 'static,
    f64: AsPrimitive<O>,
{
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return Err(KernelError::value(
            "clip",
            format!("expected low <= high, got low={lo}, high={hi}"),
        ));
    }
    // Two selects, not branches: a branch per voxel mispredicts on every noisy image.
    map_into("clip", src, dst, |x| {
        let y = if x < lo { lo } else { x };
        if y > hi {
            hi
        } else {
            y
        }
    })
}

/// Quantiles `qs` (each in [0, 1]) of the non-NaN voxels, with numpy's default 'linear' method
/// (`np.nanquantile`). Exact: order statistics by selection, O(n) per quantile.
pub fn quantiles<T>(src: ArrayView<'_, T, IxDyn>, qs: &[f64]) -> Result<Vec<f64>, KernelError>
where
    T: Pixel + AsPrimitive<f64>,
{
    const OP: &str = "quantiles";
    if let Some(q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        return Err(KernelError::value(
            OP,
            format!("each quantile must be in [0, 1], got {q}"),
        ));
    }
    let mut values: Vec<f64> = src
        .iter()
        .map(|v| v.as_())
        .filter(|x: &f64| !x.is_nan())
        .collect();
    if values.is_empty() {
        return Ok(vec![f64::NAN; qs.len()]);
    }
    let n = values.len();
    let mut out = Vec::with_capacity(qs.len());
    for &q in qs {
        let pos = q * (n - 1) as f64;
        let lo = pos.floor() as usize;
        let frac = pos - lo as f64;
        let (_, &mut a, right) = values.select_nth_unstable_by(lo, f64::total_cmp);
        let b = if frac > 0.0 && !right.is_empty() {
            right.iter().copied().fold(f64::INFINITY, f64::min)
        } else {
            a
        };
        out.push(a + frac * (b - a));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder};

    #[test]
    fn min_max_skips_nan_and_agrees_with_stats() {
        let mut a = Array::from_shape_fn((37, 5, 3).f(), |(i, j, k)| {
            ((i * 7919 + j * 131 + k * 17) % 101) as f32 - 50.0
        })
        .into_dyn();
        a[[0, 0, 0]] = f32::NAN;
        a[[36, 4, 2]] = f32::NAN;
        a[[20, 1, 1]] = -77.5;
        a[[3, 3, 0]] = 61.25;
        assert_eq!(min_max(a.view()).unwrap(), (-77.5, 61.25));
        let s = stats(a.view()).unwrap();
        assert_eq!((s.min, s.max), (-77.5, 61.25));
        // Any layout, integer pixels, all-NaN and empty images.
        assert_eq!(min_max(a.t().into_dyn()).unwrap(), (-77.5, 61.25));
        let ints = Array::from_shape_fn((4, 9), |(i, j)| (i as i16 - 2) * (j as i16)).into_dyn();
        assert_eq!(min_max(ints.view()).unwrap(), (-16.0, 8.0));
        let nans = ArrayD::<f64>::from_elem(IxDyn(&[3, 2]), f64::NAN);
        let (lo, hi) = min_max(nans.view()).unwrap();
        assert!(lo.is_nan() && hi.is_nan());
        assert!(min_max(ArrayD::<f32>::zeros(IxDyn(&[0, 3])).view()).is_err());
    }

    #[test]
    fn stats_match_two_pass_formulas_and_skip_nan() {
        let mut a =
            Array::from_shape_fn((7, 5, 3).f(), |(i, j, k)| (i * 15 + j * 3 + k) as f32).into_dyn();
        a[[0, 0, 0]] = f32::NAN;
        let s = stats(a.view()).unwrap();
        let vals: Vec<f64> = a
            .iter()
            .filter(|x| !x.is_nan())
            .map(|&x| x as f64)
            .collect();
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert_eq!(s.count, 104);
        assert_eq!((s.min, s.max), (1.0, 104.0));
        assert!((s.mean - mean).abs() < 1e-12 && (s.sd - sd).abs() < 1e-12);
    }

    #[test]
    fn rescale_writes_every_voxel_in_any_layout() {
        let a = Array::from_shape_fn((4, 6, 5).f(), |(i, j, k)| (i + 10 * j + 100 * k) as i16)
            .into_dyn();
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[4, 6, 5]));
        rescale(a.view(), out.view_mut(), 0.5, -1.0).unwrap();
        for (o, &x) in out.iter().zip(a.iter()) {
            assert_eq!(*o, x as f32 * 0.5 - 1.0);
        }
        let mut wrong = ArrayD::<f32>::zeros(IxDyn(&[4, 6]));
        assert!(rescale(a.view(), wrong.view_mut(), 1.0, 0.0).is_err());
    }

    #[test]
    fn stats_are_identical_on_one_and_four_threads() {
        let a = Array::from_shape_fn((31, 17, 23), |(i, j, k)| {
            ((i * 7919 + j * 104729 + k * 13) % 1000) as f32 * 0.37
        })
        .into_dyn();
        let run = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
                .install(|| stats(a.view()).unwrap())
        };
        let (one, four) = (run(1), run(4));
        assert_eq!(one.mean.to_bits(), four.mean.to_bits());
        assert_eq!(one.sd.to_bits(), four.sd.to_bits());
    }

    #[test]
    fn quantiles_match_numpy_linear_method() {
        let a = ndarray::Array::from_iter([5.0f32, 1.0, f32::NAN, 3.0, 2.0, 4.0]).into_dyn();
        let q = quantiles(a.view(), &[0.0, 0.25, 0.5, 0.9, 1.0]).unwrap();
        for (got, want) in q.iter().zip([1.0, 2.0, 3.0, 4.6, 5.0]) {
            assert!((got - want).abs() < 1e-12, "{q:?}");
        }
        assert!(quantiles(a.view(), &[1.5]).is_err());
    }

    #[test]
    fn clip_bounds_values_and_rejects_reversed_bounds() {
        let a = ndarray::Array::from_iter([-2.0f64, 0.5, 9.0]).into_dyn();
        let mut o = ArrayD::<f32>::zeros(IxDyn(&[3]));
        clip(a.view(), o.view_mut(), 0.0, 1.0).unwrap();
        assert_eq!(o.as_slice().unwrap(), &[0.0, 0.5, 1.0]);
        assert!(clip(a.view(), o.view_mut(), 1.0, 0.0).is_err());
    }

    #[test]
    fn empty_image_is_an_error() {
        let a = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
        assert!(stats(a.view()).is_err());
    }
}
