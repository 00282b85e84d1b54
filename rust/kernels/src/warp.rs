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

use ndarray::{ArrayView, ArrayViewMut, Axis, Ix3, IxDyn};
use num_traits::Float;
use rayon::prelude::*;

use super::{simd_versions, KernelError, Pixel};

#[cfg(target_arch = "x86_64")]
mod avx2;
mod grid;
mod lanes;
mod spline;
#[cfg(test)]
mod tests;

use grid::Grid;
use lanes::Lanes;
pub use spline::bspline_warp;

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
    let nd = crate::image_pair_dims(OP, src.shape(), dst.shape())?;
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
    crate::check_fortran_out(OP, &dst)?;
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
