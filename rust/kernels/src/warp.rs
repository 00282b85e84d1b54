//! Affine resampling of 2-D and 3-D images onto their own grid, as ITK's `ResampleImageFilter` does it
//! for ANTs (`ants.apply_ants_transform_to_image`) with a linear or nearest-neighbour interpolator.
//!
//! Output voxel `(i, j, k)` takes the input's value at the continuous index `A @ [i, j, k, 1]` (`A` is 3x4;
//! 2x3 for 2-D images). ITK's rules, followed here:
//!
//! - a point is inside the image when `-0.5 <= p < n - 0.5` on every axis (`ImageFunction::IsInsideBuffer`:
//!   the voxel grid plus half a voxel all round); outside, the output is the fill value (ITK's default
//!   pixel value, 0);
//! - linear: along each axis the lower neighbour is `floor(p)` raised to 0 and the upper one is dropped
//!   when it would lie past the last voxel or when the point sits exactly on the lower one
//!   (`LinearInterpolateImageFunction`), so the half-voxel border repeats the edge voxels. The axes are
//!   combined as `a + (b - a) * w`, first along axis 0, then 1, then 2;
//! - nearest: the index `floor(p + 0.5)` (`Math::RoundHalfIntegerUp`);
//! - the value is cast to the pixel type as `CastPixelWithBoundsChecking` does: clamped to the type's range,
//!   then truncated (C++ `static_cast`), which is what Rust's `as` does for integers.
//!
//! Interpolation is computed in f32 for float32 images and in f64 otherwise (ITK uses double throughout;
//! the difference is an f32 rounding). Positions are f64: ANTs' own transforms are single precision, so it
//! agrees with this kernel to about 1e-5 voxel.
//!
//! Speed: each output row (axis 0, contiguous in the Fortran-ordered output) maps to a straight line in
//! the input. The run of the row inside the image, and the run whose eight neighbours all lie in the
//! image, are found analytically for each row; the second is computed without bounds checks and the rest
//! of the row (at most a few voxels at the image's border) by the general rule. Rows are shared among
//! the pool's threads; every voxel is computed by the same operations whatever the split, so the result
//! does not depend on the thread count.

use ndarray::{ArrayView, ArrayView3, ArrayViewMut, Axis, Ix3, IxDyn};
use num_traits::{Float, Zero};
use rayon::prelude::*;

use super::{check_same_shape, fmt_shape, simd_versions, KernelError, Pixel};

/// How the input is sampled between voxel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Bi- or trilinear (ITK's `LinearInterpolateImageFunction`).
    Linear,
    /// The nearest voxel, ties rounded up (ITK's `NearestNeighborInterpolateImageFunction`).
    Nearest,
}

/// Pixel types the warp reads and writes: a real type to interpolate in, and ITK's cast back.
pub trait WarpPixel: Pixel {
    /// f32 for float32 images, f64 for everything else.
    type Real: Float + Send + Sync + 'static;
    fn real(self) -> Self::Real;
    fn weight(w: f64) -> Self::Real;
    /// ITK's `CastPixelWithBoundsChecking`: clamp to the type's range, then truncate.
    fn from_real(v: Self::Real) -> Self;
    /// The fill value in this pixel type (the same cast).
    fn from_f64(v: f64) -> Self;
}

macro_rules! warp_float {
    ($($t:ty),*) => {$(
        impl WarpPixel for $t {
            type Real = $t;
            #[inline(always)]
            fn real(self) -> $t {
                self
            }
            #[inline(always)]
            fn weight(w: f64) -> $t {
                w as $t
            }
            #[inline(always)]
            fn from_real(v: $t) -> $t {
                v
            }
            fn from_f64(v: f64) -> $t {
                v as $t
            }
        }
    )*};
}

macro_rules! warp_int {
    ($($t:ty),*) => {$(
        impl WarpPixel for $t {
            type Real = f64;
            #[inline(always)]
            fn real(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn weight(w: f64) -> f64 {
                w
            }
            #[inline(always)]
            fn from_real(v: f64) -> $t {
                v as $t // saturating and truncating: clamp to the range, then C's static_cast
            }
            fn from_f64(v: f64) -> $t {
                v as $t
            }
        }
    )*};
}

warp_float!(f32, f64);
warp_int!(i8, u8, i16, u16, i32, u32);

/// Everything a row needs: the source, its geometry and the sampling rule.
struct Grid<'s, T> {
    src: ArrayView3<'s, T>,
    /// Shape of the source (and of the output).
    n: [usize; 3],
    /// Strides of the source, in elements (any sign).
    stride: [isize; 3],
    /// Per axis, the stride to the upper linear neighbour: 0 on a length-1 axis, which has none.
    step: [isize; 3],
    /// Output index -> input continuous index.
    a: [[f64; 4]; 3],
    interpolation: Interpolation,
    fill: T,
    /// Set when the vectorised row loops can run (x86-64 with AVX2, float32, offsets within i32).
    lanes: Option<Lanes>,
    /// Visit each row in the next planes before the next rows of its plane (see `new`).
    planes_inner: bool,
    /// The inside-the-image box: `lo <= p < hi` on every axis.
    inside_lo: [f64; 3],
    inside_hi: [f64; 3],
    /// The box where every linear neighbour is a voxel of the image (on a length-1 axis: index 0, which
    /// has no upper neighbour).
    inner_lo: [f64; 3],
    inner_hi: [f64; 3],
}

impl<'s, T: WarpPixel> Grid<'s, T> {
    fn new(
        src: ArrayView3<'s, T>,
        a: [[f64; 4]; 3],
        interpolation: Interpolation,
        fill: T,
        vectorise: bool,
    ) -> Self {
        let (n0, n1, n2) = src.dim();
        let n = [n0, n1, n2];
        let s = src.strides();
        let stride = [s[0], s[1], s[2]];
        let mut step = [0isize; 3];
        let (mut inside_lo, mut inside_hi) = ([0.0; 3], [0.0; 3]);
        let (mut inner_lo, mut inner_hi) = ([0.0; 3], [0.0; 3]);
        for d in 0..3 {
            let len = n[d] as f64;
            inside_lo[d] = -0.5;
            inside_hi[d] = len - 0.5;
            if n[d] >= 2 {
                step[d] = stride[d];
                inner_lo[d] = 0.0;
                inner_hi[d] = len - 1.0;
            } else {
                // One voxel: inside is index 0 (truncating p in [-0.5, 0.5) gives 0), no upper neighbour.
                inner_lo[d] = -0.5;
                inner_hi[d] = 0.5;
            }
        }
        let lanes = Lanes::detect::<T>(n, stride).filter(|_| vectorise);
        // A row is a line through the source that crosses source rows and planes (axes 1 and 2) at
        // rates |a[1][0]| and |a[2][0]|. The next row visited should move the line along those crossings
        // as little as possible, so that it reads the same cache lines: the next row of the plane moves
        // it by column 1 of the matrix, the same row of the next plane by column 2. Moving across planes
        // costs less than it seems (measured on a 197x233x189 volume with random affine maps, the
        // better order is up to twice as fast, and plane-inner wins until its drift is about twice the
        // other's), hence the factor 2.
        let drift = |col: usize| (1..3).map(|d| (a[d][0] * a[d][col]).abs()).sum::<f64>();
        let planes_inner = drift(2) < 2.0 * drift(1);
        Grid {
            src,
            n,
            stride,
            step,
            a,
            interpolation,
            fill,
            lanes,
            planes_inner,
            inside_lo,
            inside_hi,
            inner_lo,
            inner_hi,
        }
    }

    /// The source point of output voxel `(0, j, k)` and the step along the row.
    fn row_line(&self, j: usize, k: usize) -> ([f64; 3], [f64; 3]) {
        let (jf, kf) = (j as f64, k as f64);
        let a = &self.a;
        let b = [0, 1, 2].map(|d| a[d][3] + jf * a[d][1] + kf * a[d][2]);
        let c = [0, 1, 2].map(|d| a[d][0]);
        (b, c)
    }

    /// Output row `(·, j, k)` into `out` (length `n[0]`).
    #[inline(always)]
    fn row(&self, j: usize, k: usize, out: &mut [T]) {
        let len = out.len();
        let (b, c) = self.row_line(j, k);
        let (start, end) = run(&b, &c, &self.inside_lo, &self.inside_hi, len);
        out[..start].fill(self.fill);
        out[end..].fill(self.fill);
        match self.interpolation {
            Interpolation::Nearest => self.nearest_run(&b, &c, start, &mut out[start..end]),
            Interpolation::Linear => {
                let (lo, hi) = run(&b, &c, &self.inner_lo, &self.inner_hi, len);
                // The inner run lies within the inside run (same points, a smaller box); clamped anyway.
                let lo = lo.clamp(start, end);
                let hi = hi.clamp(lo, end);
                for i in (start..lo).chain(hi..end) {
                    out[i] = self.linear_at(point(&b, &c, i));
                }
                self.linear_run(&b, &c, lo, &mut out[lo..hi]);
            }
        }
    }

    /// ITK's linear rule at a point inside the image (bounds-checked; used at the border).
    fn linear_at(&self, p: [f64; 3]) -> T {
        // Per axis: lower index, upper index, weight, and whether the upper neighbour takes part.
        let mut lower = [0usize; 3];
        let mut upper = [0usize; 3];
        let mut w = [T::Real::zero(); 3];
        for d in 0..3 {
            let fl = p[d].floor();
            let base = if fl > 0.0 { fl as usize } else { 0 };
            let base = base.min(self.n[d] - 1);
            let dist = p[d] - base as f64;
            lower[d] = base;
            upper[d] = base;
            if dist > 0.0 && base + 1 < self.n[d] {
                upper[d] = base + 1;
                w[d] = T::weight(dist);
            }
        }
        let at = |x: usize, y: usize, z: usize| self.src[[x, y, z]].real();
        let lerp = |a: T::Real, b: T::Real, w: T::Real| a + (b - a) * w;
        let along_x = |y: usize, z: usize| {
            let v = at(lower[0], y, z);
            if upper[0] != lower[0] {
                lerp(v, at(upper[0], y, z), w[0])
            } else {
                v
            }
        };
        let along_y = |z: usize| {
            let v = along_x(lower[1], z);
            if upper[1] != lower[1] {
                lerp(v, along_x(upper[1], z), w[1])
            } else {
                v
            }
        };
        let v = along_y(lower[2]);
        let v = if upper[2] != lower[2] {
            lerp(v, along_y(upper[2]), w[2])
        } else {
            v
        };
        T::from_real(v)
    }

    /// Linear interpolation of the output run starting at `first`, all of whose neighbours are voxels.
    #[inline(always)]
    fn linear_run(&self, b: &[f64; 3], c: &[f64; 3], first: usize, out: &mut [T]) {
        let ptr = self.src.as_ptr();
        let done = match self.lanes {
            // SAFETY: `lanes` is set only on a CPU with AVX2, for float32 images whose offsets fit in
            // i32; the positions are those of the run `run` gave (see below).
            Some(lanes) => unsafe { lanes.linear(ptr, self.step, b, c, first, out) },
            None => 0,
        };
        let (first, out) = (first + done, &mut out[done..]);
        let mut fi = first as f64;
        for o in out.iter_mut() {
            let p = [b[0] + fi * c[0], b[1] + fi * c[1], b[2] + fi * c[2]];
            fi += 1.0;
            // SAFETY: `run` gave only positions inside the inner box.
            *o = unsafe { self.linear_inner(ptr, p) };
        }
    }

    /// Linear interpolation at `p`, without bounds checks.
    ///
    /// # Safety
    /// `p` lies in the inner box (`inner_lo <= p < inner_hi` on every axis) and `ptr` is the source's.
    #[inline(always)]
    unsafe fn linear_inner(&self, ptr: *const T, p: [f64; 3]) -> T {
        let [s0, s1, s2] = self.stride;
        let [t0, t1, t2] = self.step;
        let [x, y, z] = p;
        // SAFETY (the conversions): 0 <= p < n - 1 (or -0.5 <= p < 0.5 on a length-1 axis), finite and
        // well within `isize`; truncation is then the lower index (0 on a length-1 axis).
        let (ix, iy, iz) = unsafe {
            (
                x.to_int_unchecked::<isize>(),
                y.to_int_unchecked::<isize>(),
                z.to_int_unchecked::<isize>(),
            )
        };
        let wx = T::weight(x - ix as f64);
        let wy = T::weight(y - iy as f64);
        let wz = T::weight(z - iz as f64);
        let off = ix * s0 + iy * s1 + iz * s2;
        // SAFETY: the lower index is in `0..n` and the upper one (`+ step`, 0 on a length-1 axis) too:
        // all eight offsets address elements of the source view, whose strides they use.
        let v = unsafe {
            let at = |o: isize| (*ptr.offset(off + o)).real();
            let lerp = |a: T::Real, b: T::Real, w: T::Real| a + (b - a) * w;
            let x00 = lerp(at(0), at(t0), wx);
            let x10 = lerp(at(t1), at(t1 + t0), wx);
            let x01 = lerp(at(t2), at(t2 + t0), wx);
            let x11 = lerp(at(t2 + t1), at(t2 + t1 + t0), wx);
            lerp(lerp(x00, x10, wy), lerp(x01, x11, wy), wz)
        };
        T::from_real(v)
    }

    /// The value at any point: the fill outside the image, else the interpolation (bounds checked where
    /// a neighbour may be missing).
    #[inline(always)]
    fn sample_at(&self, p: [f64; 3]) -> T {
        let within = |lo: &[f64; 3], hi: &[f64; 3]| (0..3).all(|d| p[d] >= lo[d] && p[d] < hi[d]);
        if !within(&self.inside_lo, &self.inside_hi) {
            return self.fill;
        }
        match self.interpolation {
            Interpolation::Nearest => {
                // inside: p + 0.5 is in [0, n], so the floor is an index once capped at n - 1
                let at = |d: usize| (((p[d] + 0.5).floor()) as usize).min(self.n[d] - 1);
                self.src[[at(0), at(1), at(2)]]
            }
            Interpolation::Linear => {
                if within(&self.inner_lo, &self.inner_hi) {
                    // SAFETY: `p` is in the inner box, just checked.
                    unsafe { self.linear_inner(self.src.as_ptr(), p) }
                } else {
                    self.linear_at(p)
                }
            }
        }
    }

    /// Nearest-neighbour sampling of the output run starting at `first`, all inside the image.
    #[inline(always)]
    fn nearest_run(&self, b: &[f64; 3], c: &[f64; 3], first: usize, out: &mut [T]) {
        let ptr = self.src.as_ptr();
        let done = match self.lanes {
            // SAFETY: as in `linear_run`.
            Some(lanes) => unsafe { lanes.nearest(ptr, b, c, first, out) },
            None => 0,
        };
        let (first, out) = (first + done, &mut out[done..]);
        let [s0, s1, s2] = self.stride;
        let last = self.n.map(|n| n as isize - 1);
        let mut fi = first as f64;
        for o in out.iter_mut() {
            let x = b[0] + fi * c[0];
            let y = b[1] + fi * c[1];
            let z = b[2] + fi * c[2];
            fi += 1.0;
            // SAFETY (the conversions): `run` gave only positions with -0.5 <= p < n - 0.5 on every axis,
            // finite and well within `isize`; p + 0.5 >= 0, so truncation is the floor. The `min` guards
            // p + 0.5 rounding up to n.
            let (ix, iy, iz) = unsafe {
                (
                    (x + 0.5).to_int_unchecked::<isize>().min(last[0]),
                    (y + 0.5).to_int_unchecked::<isize>().min(last[1]),
                    (z + 0.5).to_int_unchecked::<isize>().min(last[2]),
                )
            };
            // SAFETY: `run` gave only positions with -0.5 <= p < n - 0.5 on every axis, so each index is
            // in 0..n and the offset addresses an element of the source view.
            *o = unsafe { *ptr.offset(ix * s0 + iy * s1 + iz * s2) };
        }
    }
}

/// The vectorised row loops: float32 images on x86-64 CPUs with AVX2, eight output voxels at a time, their
/// source voxels fetched with gathers. They compute every voxel with the scalar loops' operations in the
/// scalar loops' order (f64 positions, truncation, f32 weights and `a + (b - a) * w`, no fused
/// multiply-add), so they give the same bits.
#[derive(Debug, Clone, Copy)]
struct Lanes {
    /// Source strides, in elements (i32: the gathers' offsets).
    stride: [i32; 3],
    /// The last index on each axis.
    last: [i32; 3],
}

impl Lanes {
    /// `Some` when `T` is f32, the CPU has AVX2 and every voxel's offset (plus the neighbour steps) fits
    /// in an i32.
    fn detect<T: 'static>(n: [usize; 3], stride: [isize; 3]) -> Option<Lanes> {
        if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx2") {
                return None;
            }
            // The largest offset magnitude an index (or index + 1) reaches.
            let span: u128 = (0..3)
                .map(|d| stride[d].unsigned_abs() as u128 * n[d] as u128)
                .sum();
            if span >= i32::MAX as u128 || n.iter().any(|&v| v == 0 || v > i32::MAX as usize) {
                return None;
            }
            Some(Lanes {
                stride: stride.map(|v| v as i32),
                last: n.map(|v| v as i32 - 1),
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (n, stride);
            None
        }
    }

    /// `Grid::linear_run`'s loop over whole groups of eight voxels of `out`; returns how many it filled.
    ///
    /// # Safety
    /// `self` comes from `detect::<T>` (so `T` is f32 and the CPU has AVX2), `ptr` and `step` are the
    /// grid's, and every position of the run satisfies the linear inner box (see `Grid::linear_run`).
    #[inline(always)]
    unsafe fn linear<T>(
        &self,
        ptr: *const T,
        step: [isize; 3],
        b: &[f64; 3],
        c: &[f64; 3],
        first: usize,
        out: &mut [T],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let out32 = std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len());
            avx2::linear(self, ptr.cast::<f32>(), step, b, c, first, out32)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (ptr, step, b, c, first, out);
            0
        }
    }

    /// `Grid::nearest_run`'s loop over whole groups of eight voxels; returns how many it filled.
    ///
    /// # Safety
    /// As for `linear`, with the inside box.
    #[inline(always)]
    unsafe fn nearest<T>(
        &self,
        ptr: *const T,
        b: &[f64; 3],
        c: &[f64; 3],
        first: usize,
        out: &mut [T],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let out32 = std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len());
            avx2::nearest(self, ptr.cast::<f32>(), b, c, first, out32)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (ptr, b, c, first, out);
            0
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;

/// The point `b + i c`, computed as the row loops compute it.
#[inline(always)]
fn point(b: &[f64; 3], c: &[f64; 3], i: usize) -> [f64; 3] {
    let fi = i as f64;
    [b[0] + fi * c[0], b[1] + fi * c[1], b[2] + fi * c[2]]
}

/// The positions `i` in `0..len` whose point `b + i c` lies in the box `lo <= p < hi`: one run
/// `start..end` (empty: `start == end`). Each coordinate of the point is monotone in `i`, even rounded,
/// so the positions form one run; it is estimated by division, then its ends are moved onto the exact
/// boundaries by testing the points themselves (computed as the row loops compute them).
#[inline(always)]
fn run(b: &[f64; 3], c: &[f64; 3], lo: &[f64; 3], hi: &[f64; 3], len: usize) -> (usize, usize) {
    let ok = |i: usize| {
        let p = point(b, c, i);
        (0..3).all(|d| p[d] >= lo[d] && p[d] < hi[d])
    };
    let (mut first, mut past) = (0.0f64, len as f64);
    for d in 0..3 {
        if c[d] > 0.0 {
            first = first.max(((lo[d] - b[d]) / c[d]).ceil());
            past = past.min(((hi[d] - b[d]) / c[d]).ceil());
        } else if c[d] < 0.0 {
            first = first.max(((hi[d] - b[d]) / c[d]).floor() + 1.0);
            past = past.min(((lo[d] - b[d]) / c[d]).floor() + 1.0);
        } else if !(b[d] >= lo[d] && b[d] < hi[d]) {
            return (0, 0);
        }
    }
    let to_index = |v: f64| {
        if v.is_nan() {
            0
        } else {
            v.clamp(0.0, len as f64) as usize
        }
    };
    let mut start = to_index(first);
    let mut end = to_index(past).max(start);
    while start < end && !ok(start) {
        start += 1;
    }
    while start > 0 && ok(start - 1) {
        start -= 1;
    }
    end = end.max(start);
    while end > start && !ok(end - 1) {
        end -= 1;
    }
    while end < len && ok(end) {
        end += 1;
    }
    (start, end)
}

simd_versions! {
    /// Output rows `first_row..` (row `r` is `(·, r % n1, r / n1)`) into `out`, whole rows. Compiled for
    /// AVX-512F or AVX2 when the CPU has them: no fused multiply-add either way, so the same bits.
    fn warp_rows<'g, 's, T>(grid: &'g Grid<'s, T>, first_row: usize, out: &mut [T]) -> ()
    where [T: WarpPixel] = warp_rows_portable;
}

/// Rows of one plane visited together before moving to the next plane (when rows are visited plane by
/// plane; see `Grid::planes_inner`).
const TILE_ROWS: usize = 16;

/// Output rows `first_row..first_row + out.len() / n0` in the order that best keeps the source in cache:
/// either each row followed by the same row of the next planes, or tiles of `TILE_ROWS` rows of a plane
/// followed by the same tile in the next planes (`Grid::planes_inner`). The order does not change any
/// value.
#[inline(always)]
fn warp_rows_portable<T: WarpPixel>(grid: &Grid<'_, T>, first_row: usize, out: &mut [T]) {
    let [n0, n1, _] = grid.n;
    let rows = out.len() / n0;
    if rows == 0 {
        return;
    }
    let past_row = first_row + rows;
    let (k_first, k_last) = (first_row / n1, (past_row - 1) / n1);
    let tile = if grid.planes_inner { 1 } else { TILE_ROWS };
    for j_start in (0..n1).step_by(tile) {
        let j_past = (j_start + tile).min(n1);
        for k in k_first..=k_last {
            let lo = (k * n1 + j_start).max(first_row);
            let hi = (k * n1 + j_past).min(past_row);
            for r in lo..hi {
                let at = (r - first_row) * n0;
                grid.row(r % n1, k, &mut out[at..at + n0]);
            }
        }
    }
}

/// Rows per task, aiming at several tasks per thread (the split does not change the result).
fn rows_per_task(rows: usize, n0: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_threads = rows.div_ceil(threads * 8);
    // At least ~16k voxels per task so that small images are not cut into crumbs.
    let by_size = (16 * 1024usize).div_ceil(n0.max(1));
    by_threads.max(by_size).clamp(1, rows.max(1))
}

/// Resample `src` (2-D or 3-D, any strides) into `dst` (its shape, Fortran-ordered and contiguous):
/// `dst[i, j, k] = src(A @ [i, j, k, 1])`, where `matrix` is `A` row by row: 3x4 for a 3-D image, 2x3 for
/// a 2-D one. Points outside the image (see the module documentation) get `fill`.
pub fn affine_warp<T: WarpPixel>(
    src: ArrayView<'_, T, IxDyn>,
    dst: ArrayViewMut<'_, T, IxDyn>,
    matrix: &[f64],
    interpolation: Interpolation,
    fill: T,
) -> Result<(), KernelError> {
    warp_with(src, dst, matrix, interpolation, fill, true)
}

/// `affine_warp`, with the vectorised row loops allowed or not (the tests compare the two).
fn warp_with<T: WarpPixel>(
    src: ArrayView<'_, T, IxDyn>,
    mut dst: ArrayViewMut<'_, T, IxDyn>,
    matrix: &[f64],
    interpolation: Interpolation,
    fill: T,
    vectorise: bool,
) -> Result<(), KernelError> {
    const OP: &str = "affine warp";
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
    if matrix.len() != nd * (nd + 1) {
        return Err(KernelError::value(
            OP,
            format!(
                "a {nd}-D image takes a {nd}x{} matrix ({} numbers), got {} numbers",
                nd + 1,
                nd * (nd + 1),
                matrix.len()
            ),
        ));
    }
    if matrix.iter().any(|v| !v.is_finite()) {
        return Err(KernelError::value(
            OP,
            format!("the matrix must be finite, got {matrix:?}"),
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
    let mut a = [[0.0f64; 4]; 3];
    if nd == 3 {
        for (r, row) in a.iter_mut().enumerate() {
            row.copy_from_slice(&matrix[4 * r..4 * r + 4]);
        }
    } else {
        // [[a00, a01, t0], [a10, a11, t1]] -> 3x4 with the (length-1) axis 2 mapped to itself.
        for r in 0..2 {
            a[r] = [matrix[3 * r], matrix[3 * r + 1], 0.0, matrix[3 * r + 2]];
        }
        a[2] = [0.0, 0.0, 1.0, 0.0];
    }
    let src3 = if nd == 2 {
        src.insert_axis(Axis(2))
    } else {
        src
    };
    let src3 = src3
        .into_dimensionality::<Ix3>()
        .map_err(|e| KernelError::value(OP, format!("internal shape error: {e}")))?;
    let grid = Grid::new(src3, a, interpolation, fill, vectorise);
    let [n0, n1, n2] = grid.n;
    let mut dst_rev = dst.view_mut().reversed_axes();
    let Some(out) = dst_rev.as_slice_mut() else {
        return Err(KernelError::value(
            OP,
            "the output must be a Fortran-ordered contiguous array",
        ));
    };
    let per_task = rows_per_task(n1 * n2, n0);
    out.par_chunks_mut(per_task * n0)
        .enumerate()
        .for_each(|(t, chunk)| warp_rows(&grid, t * per_task, chunk));
    Ok(())
}

mod spline;
pub use spline::bspline_warp;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, Array3, ArrayD, ShapeBuilder};

    const IDENTITY: [f64; 12] = [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.];

    pub(super) fn ramp(shape: (usize, usize, usize)) -> Array3<f32> {
        Array::from_shape_fn(shape, |(i, j, k)| {
            (i as f32 * 1.5 + (j * j) as f32 * 0.25 - k as f32 * 3.0 + ((i * j * k) % 7) as f32)
                .sin()
                * 100.0
        })
    }

    fn warp3<T: WarpPixel>(
        src: ndarray::ArrayView3<'_, T>,
        m: &[f64],
        interp: Interpolation,
    ) -> ArrayD<T> {
        let mut out = ArrayD::<T>::from_elem(src.shape().f(), T::default());
        affine_warp(src.into_dyn(), out.view_mut(), m, interp, T::from_f64(0.0)).unwrap();
        out
    }

    /// The module's rules written out per voxel: inside test, ITK's linear and nearest rules, in f64.
    pub(super) fn reference(src: &Array3<f32>, m: &[f64], interp: Interpolation) -> Array3<f64> {
        let (n0, n1, n2) = src.dim();
        let n = [n0, n1, n2];
        Array::from_shape_fn((n0, n1, n2), |(i, j, k)| {
            let q = [i as f64, j as f64, k as f64, 1.0];
            let p: Vec<f64> = (0..3)
                .map(|r| (0..4).map(|c| m[4 * r + c] * q[c]).sum())
                .collect();
            if (0..3).any(|d| !(p[d] >= -0.5 && p[d] < n[d] as f64 - 0.5)) {
                return 0.0;
            }
            if interp == Interpolation::Nearest {
                let ix: Vec<usize> = (0..3).map(|d| (p[d] + 0.5).floor() as usize).collect();
                return src[[ix[0], ix[1], ix[2]]] as f64;
            }
            let mut total = 0.0;
            for corner in 0..8 {
                let mut w = 1.0;
                let mut ix = [0usize; 3];
                for d in 0..3 {
                    let fl = p[d].floor();
                    let f = p[d] - fl;
                    let (lo, hi) = (
                        (fl.max(0.0) as usize).min(n[d] - 1),
                        ((fl + 1.0).max(0.0) as usize).min(n[d] - 1),
                    );
                    let up = corner >> d & 1 == 1;
                    ix[d] = if up { hi } else { lo };
                    w *= if up { f } else { 1.0 - f };
                }
                total += w * src[[ix[0], ix[1], ix[2]]] as f64;
            }
            total
        })
    }

    #[test]
    fn identity_gives_the_input() {
        let src = ramp((7, 6, 5));
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let out = warp3(src.view(), &IDENTITY, interp);
            assert_eq!(out, src.clone().into_dyn());
        }
    }

    #[test]
    fn integer_translations_shift_the_array() {
        let src = ramp((9, 8, 7));
        // out[i, j, k] = src[i + 2, j - 1, k + 3]
        let m = [1., 0., 0., 2., 0., 1., 0., -1., 0., 0., 1., 3.];
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let out = warp3(src.view(), &m, interp);
            for ((i, j, k), v) in out
                .view()
                .into_dimensionality::<Ix3>()
                .unwrap()
                .indexed_iter()
            {
                let (si, sj, sk) = (i + 2, j as isize - 1, k + 3);
                let want = if si < 9 && sj >= 0 && sk < 7 {
                    src[[si, sj as usize, sk]]
                } else {
                    0.0
                };
                assert_eq!(*v, want, "at {:?}", (i, j, k));
            }
        }
    }

    #[test]
    fn trilinear_value_by_hand() {
        // f(i, j, k) = i + 10 j + 100 k is reproduced exactly by trilinear interpolation.
        let src = Array::from_shape_fn((4, 4, 4), |(i, j, k)| (i + 10 * j + 100 * k) as f64);
        let m = [0., 0., 0., 1.25, 0., 0., 0., 2.5, 0., 0., 0., 0.75];
        let out = warp3(src.view(), &m, Interpolation::Linear);
        assert!(out
            .iter()
            .all(|&v| (v - (1.25 + 25.0 + 75.0)).abs() < 1e-12));
        // A corner's neighbourhood with distinct values: (0.5, 0.25, 0.75) of the cube 0/1.
        let mut cube = Array3::<f32>::zeros((2, 2, 2));
        let vals = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
        for (n, v) in vals.iter().enumerate() {
            cube[[n & 1, n >> 1 & 1, n >> 2 & 1]] = *v;
        }
        let m = [0., 0., 0., 0.5, 0., 0., 0., 0.25, 0., 0., 0., 0.75];
        let out = warp3(cube.view(), &m, Interpolation::Linear);
        let mut want = 0.0f64;
        for (n, v) in vals.iter().enumerate() {
            let wx = 0.5;
            let wy = if n >> 1 & 1 == 1 { 0.25 } else { 0.75 };
            let wz = if n >> 2 & 1 == 1 { 0.75 } else { 0.25 };
            want += wx * wy * wz * *v as f64;
        }
        assert!(
            (out[[0, 0, 0]] as f64 - want).abs() < 1e-5,
            "{out:?} {want}"
        );
    }

    #[test]
    fn border_rules_follow_itk() {
        let src = Array::from_shape_fn((5, 1, 1), |(i, _, _)| (i * i) as f32);
        let at = |x: f64, interp| {
            let m = [0., 0., 0., x, 0., 0., 0., 0., 0., 0., 0., 0.];
            warp3(src.view(), &m, interp)[[0, 0, 0]]
        };
        use Interpolation::{Linear, Nearest};
        assert_eq!(at(-0.5, Linear), 0.0); // inside, clamped to voxel 0
        assert_eq!(at(-0.51, Nearest), 0.0); // outside: the fill
        assert_eq!(at(4.3, Linear), 16.0); // the last voxel repeated
        assert_eq!(at(4.5, Linear), 0.0); // past the half voxel: the fill
        assert_eq!(at(3.5, Linear), 12.5);
        assert_eq!(at(2.5, Nearest), 9.0); // ties round up
        assert_eq!(at(1.49, Nearest), 1.0);
        let src1 = Array::from_shape_fn((1, 1, 1), |_| 7.0f32);
        let m = [0., 0., 0., 0.4, 0., 0., 0., -0.4, 0., 0., 0., 0.1];
        assert_eq!(warp3(src1.view(), &m, Linear)[[0, 0, 0]], 7.0);
    }

    #[test]
    fn random_matrices_match_the_reference_for_any_layout() {
        let src = ramp((13, 11, 9));
        let mut state = 12345u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for trial in 0..20 {
            let mut m = [0.0; 12];
            for r in 0..3 {
                for c in 0..3 {
                    m[4 * r + c] = if r == c { 0.8 } else { 0.0 } + 0.4 * uniform() - 0.2;
                }
                m[4 * r + 3] = 6.0 * uniform() - 2.0;
            }
            if trial == 0 {
                m = [
                    0.0, 1.1, 0.0, -0.3, -0.9, 0.0, 0.0, 12.0, 0.0, 0.0, 1.0, 0.0,
                ];
            }
            for interp in [Interpolation::Linear, Interpolation::Nearest] {
                let want = reference(&src, &m, interp);
                let fortran = {
                    let mut f = Array3::<f32>::zeros((13, 11, 9).f());
                    f.assign(&src);
                    f
                };
                let flipped_src = {
                    // a negative-stride view with the same values: flip the data, then view it flipped
                    let mut f = src.clone();
                    f.invert_axis(Axis(1));
                    let mut owned = Array3::<f32>::zeros((13, 11, 9));
                    owned.assign(&f);
                    owned
                };
                let mut flipped_view = flipped_src.view();
                flipped_view.invert_axis(Axis(1));
                for view in [src.view(), fortran.view(), flipped_view] {
                    let got = warp3(view, &m, interp);
                    for (g, w) in got.iter().zip(want.iter()) {
                        assert!(
                            (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "trial {trial} {interp:?}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn two_d_images() {
        let src = Array::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as u8);
        // out[i, j] = src[j, i] on the square part (a transpose), 0 elsewhere
        let m = [0., 1., 0., 1., 0., 0.];
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let mut out = ArrayD::<u8>::zeros(ndarray::IxDyn(&[6, 5]).f());
            affine_warp(src.view().into_dyn(), out.view_mut(), &m, interp, 0).unwrap();
            for i in 0..6 {
                for j in 0..5 {
                    let want = if i < 5 { src[[j, i]] } else { 0 };
                    assert_eq!(out[[i, j]], want);
                }
            }
        }
        // Integers truncate as ITK's cast does: 5 + 0.3 * (10 - 5) = 6.5 -> 6; at 1.3 the last voxel.
        let m = [1., 0., 0., 0., 1., 0.3];
        let src = Array::from_shape_fn((2, 2), |(_, j)| (5 + 5 * j) as u8);
        let mut out = ArrayD::<u8>::zeros(ndarray::IxDyn(&[2, 2]).f());
        affine_warp(
            src.view().into_dyn(),
            out.view_mut(),
            &m,
            Interpolation::Linear,
            0,
        )
        .unwrap();
        assert_eq!(out[[0, 0]], 6);
        assert_eq!(out[[0, 1]], 10);
    }

    #[test]
    fn thread_count_does_not_change_the_result() {
        let src = ramp((40, 37, 23));
        let m = [
            0.95, 0.2, -0.05, 1.3, -0.18, 1.02, 0.1, -2.0, 0.07, -0.1, 0.9, 3.1,
        ];
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let runs: Vec<ArrayD<f32>> = [1, 2, 5]
                .iter()
                .map(|&n| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .unwrap()
                        .install(|| warp3(src.view(), &m, interp))
                })
                .collect();
            assert!(runs.iter().all(|r| *r == runs[0]));
        }
    }

    #[test]
    fn vectorised_loops_give_the_scalar_bits() {
        // Fortran (pair gathers), C order and negative strides (eight gathers), odd row lengths.
        let c_order = ramp((37, 29, 23));
        let mut fortran = Array3::<f32>::zeros((37, 29, 23).f());
        fortran.assign(&c_order);
        let mut flipped = c_order.view();
        flipped.invert_axis(Axis(0));
        let m = [
            0.95, 0.2, -0.05, 1.3, -0.18, 1.02, 0.1, -2.0, 0.07, -0.1, 0.9, 3.1,
        ];
        for view in [c_order.view(), fortran.view(), flipped] {
            for interp in [Interpolation::Linear, Interpolation::Nearest] {
                let run = |vectorise| {
                    let mut out = ArrayD::<f32>::zeros(ndarray::IxDyn(&[37, 29, 23]).f());
                    warp_with(view.into_dyn(), out.view_mut(), &m, interp, 0.0, vectorise).unwrap();
                    out
                };
                let (fast, slow) = (run(true), run(false));
                assert!(fast
                    .iter()
                    .zip(slow.iter())
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }

    #[test]
    fn extreme_matrices_fill_without_overflow() {
        let src = ramp((20, 9, 8));
        let mut fortran = Array3::<f32>::zeros((20, 9, 8).f());
        fortran.assign(&src);
        for m in [
            [1e12, 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.],
            [1e-300, 0., 0., 3.2, 0., 1., 0., 0., 0., 0., 1., 0.],
            [1., 0., 0., -1e300, 0., 1., 0., 0., 0., 0., 1., 0.],
            [-1e15, 1e15, 0., 1e15, 0., 1., 0., 0., 0., 0., -1., 7.],
        ] {
            for interp in [Interpolation::Linear, Interpolation::Nearest] {
                for view in [src.view(), fortran.view()] {
                    let got = warp3(view, &m, interp);
                    let want = reference(&src, &m, interp);
                    for (g, w) in got.iter().zip(want.iter()) {
                        assert!(
                            (*g as f64 - w).abs() <= 1e-3 * (1.0 + w.abs()),
                            "{m:?}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_arguments() {
        let src = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 4]));
        let mut out = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 4]).f());
        let lin = Interpolation::Linear;
        let e = affine_warp(src.view(), out.view_mut(), &[1.0; 6], lin, 0.0).unwrap_err();
        assert!(e.to_string().contains("3x4"), "{e}");
        let mut bad = IDENTITY;
        bad[3] = f64::NAN;
        assert!(affine_warp(src.view(), out.view_mut(), &bad, lin, 0.0).is_err());
        let mut c_order = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 4]));
        let e = affine_warp(src.view(), c_order.view_mut(), &IDENTITY, lin, 0.0).unwrap_err();
        assert!(e.to_string().contains("Fortran"));
        let mut small = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 3]).f());
        assert!(affine_warp(src.view(), small.view_mut(), &IDENTITY, lin, 0.0).is_err());
    }

    #[test]
    fn runs_are_exact() {
        // Every position in the run satisfies the box test and its neighbours outside do not.
        let (lo, hi) = ([0.0; 3], [9.0, 9.0, 9.0]);
        for (b, c) in [
            ([-3.0, 2.0, 4.0], [0.5, 0.0, 0.0]),
            ([12.0, 2.0, 4.0], [-0.3, 0.1, 0.0]),
            ([1.0 / 3.0, 2.0, 4.0], [1.0 / 3.0, 1e-300, -1e-17]),
            ([0.0, 9.0, 0.0], [1.0, 0.0, 0.0]),
        ] {
            let (s, e) = run(&b, &c, &lo, &hi, 40);
            let ok = |i: usize| {
                let p = point(&b, &c, i);
                (0..3).all(|d| p[d] >= lo[d] && p[d] < hi[d])
            };
            let all: Vec<usize> = (0..40).filter(|&i| ok(i)).collect();
            assert_eq!((s..e).collect::<Vec<_>>(), all, "{b:?} {c:?}");
        }
    }
}
