//! Strided, casting copies between views of any layout (C, Fortran, transposed, negative strides).
//!
//! The copy is organised so that the innermost loop walks the destination's unit-stride axis, and when the
//! source's unit-stride axis differs, the plane spanned by both is copied in small square tiles that stay
//! in L1 (a cache-blocked transpose). This is what makes a Fortran-ordered ANTs view land in a C-ordered
//! batch at memory speed.

use ndarray::ShapeBuilder;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use num_traits::AsPrimitive;

use super::Pixel;

const TILE: usize = 32;

/// Copy `src` into `dst` (same shape), casting each element.
pub fn copy_cast_2d<T, O>(src: ArrayView2<'_, T>, dst: ArrayViewMut2<'_, O>)
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel,
{
    debug_assert_eq!(src.dim(), dst.dim());
    // Make axis 1 the destination's fastest axis.
    let (src, mut dst) = if dst.strides()[0].unsigned_abs() < dst.strides()[1].unsigned_abs() {
        (src.reversed_axes(), dst.reversed_axes())
    } else {
        (src, dst)
    };
    let (h, w) = src.dim();
    if h == 0 || w == 0 {
        return;
    }
    let src_inner_unit = src.strides()[1] == 1 || w == 1;
    let dst_inner_unit = dst.strides()[1] == 1 || w == 1;
    if src_inner_unit && dst_inner_unit {
        for (srow, mut drow) in src.rows().into_iter().zip(dst.rows_mut()) {
            match (srow.as_slice(), drow.as_slice_mut()) {
                (Some(s), Some(d)) => {
                    for (d, s) in d.iter_mut().zip(s) {
                        *d = s.as_();
                    }
                }
                _ => drow.zip_mut_with(&srow, |d, s| *d = s.as_()),
            }
        }
        return;
    }
    let (ss0, ss1) = (src.strides()[0], src.strides()[1]);
    let (ds0, ds1) = (dst.strides()[0], dst.strides()[1]);
    let sp = src.as_ptr();
    let dp = dst.as_mut_ptr();
    if ss0 == 1 && ds1 == 1 {
        // SAFETY: the pointers and strides describe two valid (h, w) views, the source unit-strided
        // along axis 0 and the destination along axis 1, as `transpose` requires.
        unsafe { transpose(sp, ss1, dp, ds0, h, w) };
        return;
    }
    // General case: square tiles; inner loop along the destination's fastest axis.
    for i0 in (0..h).step_by(TILE) {
        let i1 = (i0 + TILE).min(h);
        for j0 in (0..w).step_by(TILE) {
            let j1 = (j0 + TILE).min(w);
            for i in i0..i1 {
                for j in j0..j1 {
                    let (i, j) = (i as isize, j as isize);
                    // SAFETY: 0 <= i < h and 0 <= j < w, so both offsets address elements of the views,
                    // whose pointers and strides come from ndarray (negative strides included).
                    unsafe {
                        *dp.offset(i * ds0 + j * ds1) = (*sp.offset(i * ss0 + j * ss1)).as_();
                    }
                }
            }
        }
    }
}

const MICRO: usize = 8;

/// `dst[i, j] = src[i, j]` where `src[i, j] = *sp.offset(i + j * ss1)` and
/// `dst[i, j] = *dp.offset(i * ds0 + j)`: a transpose between the two memory layouts. Full 8x8 micro-tiles
/// are read as eight contiguous source runs into registers and written as eight contiguous destination
/// runs, which the compiler turns into vector shuffles.
///
/// # Safety
/// Both pointers with their strides must address valid, non-overlapping (h, w) arrays.
unsafe fn transpose<T, O>(sp: *const T, ss1: isize, dp: *mut O, ds0: isize, h: usize, w: usize)
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel,
{
    // Strips of 8 destination rows, swept along the destination's contiguous axis. Only 8 destination
    // lines are live at once, which matters when the destination's row stride is a power of two (a
    // 64^3 block: 16 KiB), where wider tiles map every row to one L1 set and thrash it.
    let mut ib = 0;
    while ib < h {
        let ie = (ib + MICRO).min(h);
        let mut jb = 0;
        while jb < w {
            let je = (jb + MICRO).min(w);
            if ie - ib == MICRO && je - jb == MICRO {
                // rows[ii][jj] = src[ib + ii, jb + jj]: filled column by column from contiguous source
                // runs, then written row by row as contiguous destination runs.
                let mut rows = [[O::default(); MICRO]; MICRO];
                for jj in 0..MICRO {
                    // SAFETY: rows ib..ib+8 of column jb+jj lie inside the (h, w) source.
                    let run = unsafe {
                        std::slice::from_raw_parts(
                            sp.offset(ib as isize + (jb + jj) as isize * ss1),
                            MICRO,
                        )
                    };
                    for (row, s) in rows.iter_mut().zip(run) {
                        row[jj] = s.as_();
                    }
                }
                for (ii, row) in rows.iter().enumerate() {
                    // SAFETY: columns jb..jb+8 of row ib+ii lie inside the (h, w) destination.
                    let run = unsafe {
                        std::slice::from_raw_parts_mut(
                            dp.offset((ib + ii) as isize * ds0 + jb as isize),
                            MICRO,
                        )
                    };
                    run.copy_from_slice(row);
                }
            } else {
                for i in ib..ie {
                    for j in jb..je {
                        let (i, j) = (i as isize, j as isize);
                        // SAFETY: i < h and j < w.
                        unsafe { *dp.offset(i * ds0 + j) = (*sp.offset(i + j * ss1)).as_() };
                    }
                }
            }
            jb += MICRO;
        }
        ib += MICRO;
    }
}

/// Copy a 3-D `src` into `dst` (same shape), casting each element.
///
pub fn copy_cast_3d<T, O>(src: ArrayView3<'_, T>, mut dst: ArrayViewMut3<'_, O>)
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel,
{
    debug_assert_eq!(src.dim(), dst.dim());
    let outer = outer_axis(src.shape(), src.strides());
    for (s, d) in src
        .axis_iter(Axis(outer))
        .zip(dst.axis_iter_mut(Axis(outer)))
    {
        copy_cast_2d(s, d);
    }
}

/// `copy_cast_3d` for a block that changes memory order (the source's fastest axis is not the
/// destination's): first a same-order copy into `scratch` (long contiguous reads), padded so that its
/// rows do not alias in the cache, then a cache-blocked transpose out of `scratch`, which is small enough
/// to stay in L2. Other cases go straight to `copy_cast_3d`.
pub fn copy_block<T, O>(src: ArrayView3<'_, T>, dst: ArrayViewMut3<'_, O>, scratch: &mut Vec<T>)
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel,
{
    let shape = [src.shape()[0], src.shape()[1], src.shape()[2]];
    let fastest = |st: &[isize]| (0..3).min_by_key(|&a| st[a].unsigned_abs()).unwrap_or(0);
    let (fs, fd) = (fastest(src.strides()), fastest(dst.strides()));
    if shape.contains(&1) || fs == fd || src.strides()[fs].unsigned_abs() != 1 {
        copy_cast_3d(src, dst);
        return;
    }
    let other = 3 - fs - fd;
    // Scratch in the source's order: fs fastest (padded by one), then fd, then the other axis.
    let mut strides = [0usize; 3];
    strides[fs] = 1;
    strides[fd] = shape[fs] + 1;
    strides[other] = strides[fd] * shape[fd];
    let len = strides[other] * shape[other];
    if scratch.len() < len {
        scratch.resize(len, T::default());
    }
    let Ok(mut tmp) = ArrayViewMut3::from_shape(
        ndarray::Ix3(shape[0], shape[1], shape[2])
            .strides(ndarray::Ix3(strides[0], strides[1], strides[2])),
        &mut scratch[..len],
    ) else {
        copy_cast_3d(src, dst);
        return;
    };
    // Stage 1: runs along the source's contiguous axis, copied as slices.
    for (sl, mut dl) in src.lanes(Axis(fs)).into_iter().zip(tmp.lanes_mut(Axis(fs))) {
        match (sl.as_slice(), dl.as_slice_mut()) {
            (Some(a), Some(b)) => b.copy_from_slice(a),
            _ => dl.assign(&sl),
        }
    }
    let mut dst = dst;
    for (s, d) in tmp
        .axis_iter(Axis(other))
        .zip(dst.axis_iter_mut(Axis(other)))
    {
        copy_cast_2d(s, d);
    }
}

/// Pick the axis to loop over outermost: a length-1 axis if there is one (a slice), else the source's
/// slowest axis, so each 2-D copy below reads a compact region of the source (measured on 64^3 blocks
/// from a Fortran-ordered 197x233x189 volume into a C-ordered batch: 1.7x faster than looping over the
/// middle axis).
fn outer_axis(shape: &[usize], src_strides: &[isize]) -> usize {
    if let Some(a) = (0..3).find(|&a| shape[a] == 1) {
        return a;
    }
    (0..3)
        .max_by_key(|&a| src_strides[a].unsigned_abs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array, Array2, Array3, ShapeBuilder};

    fn ramp3(shape: (usize, usize, usize), fortran: bool) -> Array3<i16> {
        let n = shape.0 * shape.1 * shape.2;
        let v: Vec<i16> = (0..n as i16).collect();
        if fortran {
            Array::from_shape_vec(shape.f(), v).unwrap()
        } else {
            Array::from_shape_vec(shape, v).unwrap()
        }
    }

    #[test]
    fn copy_2d_all_layouts_match_elementwise() {
        let f = |(i, j): (usize, usize)| (i * 100 + j) as u8 as f64;
        let c_order = Array2::from_shape_fn((37, 70), f);
        let f_order = Array2::from_shape_fn((37, 70).f(), f);
        let views = [
            c_order.view(),
            f_order.view(),
            f_order.slice(s![..;-1, ..]),
            c_order.slice(s![.., ..;-2]),
            f_order.slice(s![3..35, 1..]),
        ];
        for src in views {
            for fortran in [false, true] {
                let mut out = if fortran {
                    Array2::<f32>::zeros(src.dim().f())
                } else {
                    Array2::<f32>::zeros(src.dim())
                };
                copy_cast_2d(src, out.view_mut());
                assert_eq!(out, src.mapv(|x| x as f32));
            }
        }
    }

    #[test]
    fn copy_3d_fortran_to_c_and_back() {
        for fortran in [false, true] {
            let a = ramp3((33, 5, 40), fortran);
            let src = a.slice(s![1..30, .., ..;-1]);
            let mut out = Array3::<f32>::zeros(src.dim());
            copy_cast_3d(src, out.view_mut());
            assert_eq!(out, src.mapv(|x| x as f32));
            let mut back = Array3::<f64>::zeros(src.dim().f());
            copy_cast_3d(out.view(), back.view_mut());
            assert_eq!(back, src.mapv(|x| x as f64));
        }
    }

    #[test]
    fn outer_axis_is_a_length_one_axis_else_the_slowest_source_axis() {
        assert_eq!(outer_axis(&[8, 8, 8], &[1, 8, 64]), 2);
        assert_eq!(outer_axis(&[8, 8, 8], &[64, 8, -1]), 0);
        assert_eq!(outer_axis(&[8, 1, 8], &[1, 8, 8]), 1);
    }
}
