//! Warps by a cubic B-spline displacement field (elastic deformation), on `warp`'s resampling rules.

use ndarray::{ArrayView, ArrayViewMut, Axis, Ix3, Ix4, IxDyn};
use rayon::prelude::*;

use super::{rows_per_task, Grid, Interpolation, WarpPixel};
use crate::{fmt_shape, simd_versions, KernelError};

/// One axis of a cubic B-spline control grid: for each voxel, the first control point it depends on and
/// the weights of that one and the next three.
///
/// `m` control points span `n` voxels as ITK's `BSplineTransform` mesh does: `m - 3` intervals between
/// the first and the last voxel centre, one control point beyond each end. An axis the grid does not
/// cover (the added axis of a 2-D image) has one control point and weight 1.
#[derive(Debug, Clone)]
struct SplineAxis {
    first: Vec<usize>,
    weights: Vec<[f64; 4]>,
    /// 4, or 1 for an axis the grid does not cover.
    taps: usize,
}

impl SplineAxis {
    fn new(n: usize, m: usize) -> Self {
        if m == 1 {
            return SplineAxis {
                first: vec![0; n],
                weights: vec![[1.0, 0.0, 0.0, 0.0]; n],
                taps: 1,
            };
        }
        let per_voxel = if n > 1 {
            (m - 3) as f64 / (n - 1) as f64
        } else {
            0.0
        };
        let (mut first, mut weights) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let u = i as f64 * per_voxel;
            let k = (u.floor() as usize).min(m - 4);
            let t = u - k as f64;
            let s = 1.0 - t;
            first.push(k);
            weights.push([
                s * s * s / 6.0,
                (3.0 * t * t * t - 6.0 * t * t + 4.0) / 6.0,
                (-3.0 * t * t * t + 3.0 * t * t + 3.0 * t + 1.0) / 6.0,
                t * t * t / 6.0,
            ]);
        }
        SplineAxis {
            first,
            weights,
            taps: 4,
        }
    }
}

/// What the rows of a B-spline warp share.
struct Spline<'a, 's, T> {
    image: &'a Grid<'s, T>,
    /// Control displacements in voxels, `(m0, m1, m2, component)`.
    grid: ndarray::ArrayView4<'a, f64>,
    axes: &'a [SplineAxis; 3],
    /// Components: the image's dimension.
    nd: usize,
}

simd_versions! {
    /// Output rows `first_row..` of a B-spline warp into `out` (whole rows), compiled for AVX-512F or
    /// AVX2 when the CPU has them (no fused multiply-add: the same bits).
    fn spline_rows<'a, 's, T>(spline: &Spline<'a, 's, T>, first_row: usize, out: &mut [T]) -> ()
    where [T: WarpPixel] = spline_rows_portable;
}

#[inline(always)]
fn spline_rows_portable<T: WarpPixel>(spline: &Spline<'_, '_, T>, first_row: usize, out: &mut [T]) {
    let Spline {
        image,
        grid,
        axes,
        nd,
    } = spline;
    let (nd, [n0, n1, _]) = (*nd, image.n);
    let m0 = grid.dim().0;
    // The row's 1-D spline along axis 0: coefficient `a` of component `d` at `coef[a * 3 + d]`.
    let mut coef = vec![0.0f64; m0 * 3];
    for (r, row) in out.chunks_mut(n0).enumerate() {
        let r = first_row + r;
        let (j, k) = (r % n1, r / n1);
        let (f1, w1) = (axes[1].first[j], axes[1].weights[j]);
        let (f2, w2) = (axes[2].first[k], axes[2].weights[k]);
        coef.fill(0.0);
        for (a, c) in coef.chunks_mut(3).enumerate() {
            for (tb, wb) in w1.iter().enumerate().take(axes[1].taps) {
                for (tc, wc) in w2.iter().enumerate().take(axes[2].taps) {
                    let w = wb * wc;
                    for (d, v) in c.iter_mut().enumerate().take(nd) {
                        *v += w * grid[[a, f1 + tb, f2 + tc, d]];
                    }
                }
            }
        }
        let (jf, kf) = (j as f64, k as f64);
        for (i, o) in row.iter_mut().enumerate() {
            let (f0, w0) = (axes[0].first[i], axes[0].weights[i]);
            let taps: &[f64; 12] = coef[f0 * 3..f0 * 3 + 12].try_into().unwrap_or(&[0.0; 12]); // always 12 values: f0 + 3 < m0
            let mut shift = [0.0f64; 3];
            for (ta, wa) in w0.iter().enumerate() {
                for d in 0..3 {
                    shift[d] += wa * taps[ta * 3 + d];
                }
            }
            *o = image.sample_at([i as f64 + shift[0], jf + shift[1], kf + shift[2]]);
        }
    }
}

/// Resample `src` (2-D or 3-D, any strides) into `dst` (its shape, Fortran-ordered and contiguous) at
/// points displaced by a cubic B-spline: `dst[x] = src(x + d(x))`, `d` the B-spline through the control
/// point displacements `grid` (shape `(m0, m1[, m2], ndim)`, at least 4 points per axis, in voxels; see
/// `SplineAxis` for where they lie). Same rules as `affine_warp` (the fill outside, ITK's linear or
/// nearest-neighbour interpolation). The displacement is evaluated along each output row from the row's
/// 1-D coefficients, so no dense field is made.
pub fn bspline_warp<T: WarpPixel>(
    src: ArrayView<'_, T, IxDyn>,
    mut dst: ArrayViewMut<'_, T, IxDyn>,
    grid: ArrayView<'_, f64, IxDyn>,
    interpolation: Interpolation,
    fill: T,
) -> Result<(), KernelError> {
    const OP: &str = "B-spline warp";
    let nd = crate::image_pair_dims(OP, src.shape(), dst.shape())?;
    let gs = grid.shape();
    if grid.ndim() != nd + 1 || gs[nd] != nd || gs[..nd].iter().any(|&m| m < 4) {
        return Err(KernelError::value(
            OP,
            format!(
                "the control grid of a {nd}-D image must have shape (m0, ..., {nd}) with at least 4 \
                 points per axis, got {}",
                fmt_shape(gs)
            ),
        ));
    }
    if grid.iter().any(|v| !v.is_finite()) {
        return Err(KernelError::value(
            OP,
            "the control displacements must be finite",
        ));
    }
    crate::check_fortran_out(OP, &dst)?;
    if src.is_empty() {
        return Ok(());
    }
    let internal =
        |e: ndarray::ShapeError| KernelError::value(OP, format!("internal shape error: {e}"));
    let (src3, grid4) = if nd == 2 {
        (src.insert_axis(Axis(2)), grid.insert_axis(Axis(2)))
    } else {
        (src, grid)
    };
    let src3 = src3.into_dimensionality::<Ix3>().map_err(internal)?;
    let grid4 = grid4.into_dimensionality::<Ix4>().map_err(internal)?;
    let identity = [[1., 0., 0., 0.], [0., 1., 0., 0.], [0., 0., 1., 0.]];
    let image = Grid::new(src3, identity, interpolation, fill, false);
    let [n0, n1, n2] = image.n;
    let (m0, m1, m2, _) = grid4.dim();
    let axes = [
        SplineAxis::new(n0, m0),
        SplineAxis::new(n1, m1),
        SplineAxis::new(n2, m2),
    ];
    let mut dst_rev = dst.view_mut().reversed_axes();
    let Some(out) = dst_rev.as_slice_mut() else {
        return Err(KernelError::value(
            OP,
            "the output must be a Fortran-ordered contiguous array",
        ));
    };
    let spline = Spline {
        image: &image,
        grid: grid4,
        axes: &axes,
        nd,
    };
    let per_task = rows_per_task(n1 * n2, n0);
    out.par_chunks_mut(per_task * n0)
        .enumerate()
        .for_each(|(t, chunk)| spline_rows(&spline, t * per_task, chunk));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ramp, reference};
    use super::*;
    use ndarray::{Array, ArrayD, ShapeBuilder};

    #[test]
    fn spline_axes_reproduce_linear_functions() {
        // Control values (a - 1) * h (their positions in voxels) give each voxel its own index.
        for (n, m) in [(20, 7), (9, 4), (33, 12), (1, 5)] {
            let axis = SplineAxis::new(n, m);
            let h = if n > 1 {
                (n - 1) as f64 / (m - 3) as f64
            } else {
                0.0
            };
            for i in 0..n {
                let v: f64 = (0..4)
                    .map(|t| axis.weights[i][t] * ((axis.first[i] + t) as f64 - 1.0) * h)
                    .sum();
                assert!((v - i as f64).abs() < 1e-9, "n {n} m {m} i {i}: {v}");
                assert!((axis.weights[i].iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(axis.first[i] + 3 < m);
            }
        }
    }

    #[test]
    fn spline_warps_follow_the_affine_rules() {
        let src = ramp((17, 13, 11));
        let (n0, n1, n2) = src.dim();
        let (m0, m1, m2) = (6, 5, 7);
        // Control displacements linear in the control positions: the field is that linear map, so the
        // warp is the affine warp of matrix I + L (plus a shift).
        let l = [[0.05, -0.1, 0.02], [0.08, 0.03, -0.04], [-0.02, 0.06, 0.01]];
        let shift = [1.3, -0.7, 0.4];
        let h = [
            (n0 - 1) as f64 / (m0 - 3) as f64,
            (n1 - 1) as f64 / (m1 - 3) as f64,
            (n2 - 1) as f64 / (m2 - 3) as f64,
        ];
        let grid = Array::from_shape_fn((m0, m1, m2, 3), |(a, b, c, d)| {
            let pos = [
                (a as f64 - 1.0) * h[0],
                (b as f64 - 1.0) * h[1],
                (c as f64 - 1.0) * h[2],
            ];
            shift[d] + (0..3).map(|e| l[d][e] * pos[e]).sum::<f64>()
        });
        let mut m = [0.0; 12];
        for d in 0..3 {
            for e in 0..3 {
                m[4 * d + e] = l[d][e] + if d == e { 1.0 } else { 0.0 };
            }
            m[4 * d + 3] = shift[d];
        }
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let want = reference(&src, &m, interp);
            let mut out = ArrayD::<f32>::zeros(ndarray::IxDyn(&[n0, n1, n2]).f());
            let (s, g) = (src.view().into_dyn(), grid.view().into_dyn());
            bspline_warp(s, out.view_mut(), g, interp, 0.0).unwrap();
            let p = Array::from_shape_fn((n0, n1, n2), |(i, j, k)| {
                let q = [i as f64, j as f64, k as f64, 1.0];
                (0..3)
                    .map(|d| (0..4).map(|c| m[4 * d + c] * q[c]).sum::<f64>())
                    .collect::<Vec<_>>()
            });
            for ((g, w), p) in out.iter().zip(want.iter()).zip(p.iter()) {
                // positions within rounding of a tie or the border may go either way
                let near = p.iter().any(|v| (v - v.floor() - 0.5).abs() < 1e-6);
                if !near {
                    assert!(
                        (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{interp:?}: {g} vs {w}"
                    );
                }
            }
        }
        // A zero grid gives the input; a 2-D image takes a (m0, m1, 2) grid.
        let flat = Array::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as u8);
        let zero = ndarray::Array3::<f64>::zeros((4, 5, 2));
        let mut out = ArrayD::<u8>::zeros(ndarray::IxDyn(&[6, 5]).f());
        let lin = Interpolation::Linear;
        bspline_warp(
            flat.view().into_dyn(),
            out.view_mut(),
            zero.view().into_dyn(),
            lin,
            0,
        )
        .unwrap();
        assert_eq!(out, flat.clone().into_dyn());
        let small = ndarray::Array3::<f64>::zeros((3, 5, 2));
        let e = bspline_warp(
            flat.view().into_dyn(),
            out.view_mut(),
            small.view().into_dyn(),
            lin,
            0,
        );
        assert!(e.unwrap_err().to_string().contains("at least 4"));
    }
}
