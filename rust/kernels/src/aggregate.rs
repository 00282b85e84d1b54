//! Sliding-window aggregation: a model's outputs for overlapping blocks of a volume, each weighted by a
//! blending window, summed into whole-volume outputs with the sum of the weights alongside (the caller
//! divides one by the other). Parallel over planes of the output's last axis; every voxel sums its
//! blocks in block order, so the result does not depend on the thread count.

use ndarray::{s, ArrayView3, ArrayView5, ArrayViewMut3, ArrayViewMut4, Axis, Zip};
use rayon::prelude::*;

use super::{fmt_shape, KernelError};

/// `out[c, o + i] += window[i] * blocks[n, c, i]` and `weights[o + i] += window[i]` for every block `n`
/// at corner `o = origins[n]`. Shapes: blocks `(N, C, b0, b1, b2)`, window `(b0, b1, b2)`, out
/// `(C, X, Y, Z)`, weights `(X, Y, Z)`; any strides.
pub fn accumulate_blocks(
    blocks: ArrayView5<'_, f32>,
    origins: &[[usize; 3]],
    window: ArrayView3<'_, f32>,
    mut out: ArrayViewMut4<'_, f32>,
    mut weights: ArrayViewMut3<'_, f32>,
) -> Result<(), KernelError> {
    const OP: &str = "block aggregation";
    let (n, c) = (blocks.shape()[0], blocks.shape()[1]);
    let b = [blocks.shape()[2], blocks.shape()[3], blocks.shape()[4]];
    if n != origins.len() {
        return Err(KernelError::value(
            OP,
            format!("{n} blocks but {} origins", origins.len()),
        ));
    }
    if window.shape() != b {
        return Err(KernelError::value(
            OP,
            format!(
                "window has shape {}, the blocks {}",
                fmt_shape(window.shape()),
                fmt_shape(&b)
            ),
        ));
    }
    let vol = [out.shape()[1], out.shape()[2], out.shape()[3]];
    if out.shape()[0] != c {
        return Err(KernelError::value(
            OP,
            format!("output has {} channels, the blocks {c}", out.shape()[0]),
        ));
    }
    if weights.shape() != vol {
        return Err(KernelError::value(
            OP,
            format!(
                "weights have shape {}, the output volume {}",
                fmt_shape(weights.shape()),
                fmt_shape(&vol)
            ),
        ));
    }
    for (k, o) in origins.iter().enumerate() {
        if (0..3).any(|d| o[d] + b[d] > vol[d]) {
            return Err(KernelError::value(
                OP,
                format!(
                    "block {k} at {:?} with size {} falls outside the volume of shape {}",
                    o,
                    fmt_shape(&b),
                    fmt_shape(&vol)
                ),
            ));
        }
    }
    out.axis_iter_mut(Axis(3))
        .into_par_iter()
        .zip(weights.axis_iter_mut(Axis(2)).into_par_iter())
        .enumerate()
        .for_each(|(z, (mut plane, mut wplane))| {
            for (k, o) in origins.iter().enumerate() {
                if z < o[2] || z >= o[2] + b[2] {
                    continue;
                }
                let kz = z - o[2];
                let win = window.index_axis(Axis(2), kz);
                let mut wdst = wplane.slice_mut(s![o[0]..o[0] + b[0], o[1]..o[1] + b[1]]);
                wdst += &win;
                for ch in 0..c {
                    let src = blocks.slice(s![k, ch, .., .., kz]);
                    let dst = plane.slice_mut(s![ch, o[0]..o[0] + b[0], o[1]..o[1] + b[1]]);
                    Zip::from(dst)
                        .and(&src)
                        .and(&win)
                        .for_each(|d, &v, &w| *d += w * v);
                }
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, Array4, Array5, ShapeBuilder};

    fn reference(
        blocks: &Array5<f32>,
        origins: &[[usize; 3]],
        window: &Array3<f32>,
        vol: [usize; 3],
    ) -> (Array4<f32>, Array3<f32>) {
        let c = blocks.shape()[1];
        let mut out = Array4::<f32>::zeros((c, vol[0], vol[1], vol[2]));
        let mut w = Array3::<f32>::zeros((vol[0], vol[1], vol[2]));
        for (k, o) in origins.iter().enumerate() {
            for ((i, j, l), &wv) in window.indexed_iter() {
                w[[o[0] + i, o[1] + j, o[2] + l]] += wv;
                for ch in 0..c {
                    out[[ch, o[0] + i, o[1] + j, o[2] + l]] += wv * blocks[[k, ch, i, j, l]];
                }
            }
        }
        (out, w)
    }

    #[test]
    fn overlapping_blocks_sum_with_their_weights_on_any_thread_count() {
        let origins = [[0, 0, 0], [2, 1, 3], [3, 3, 1], [0, 3, 3]];
        let blocks = Array5::from_shape_fn((4, 2, 4, 3, 5), |(k, c, i, j, l)| {
            (k * 1000 + c * 100 + i * 10 + j) as f32 + l as f32 * 0.5
        });
        let window = Array3::from_shape_fn((4, 3, 5), |(i, j, l)| 1.0 + (i + j + l) as f32 * 0.25);
        let vol = [7, 6, 8];
        let (want, want_w) = reference(&blocks, &origins, &window, vol);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // a Fortran-ordered volume per channel, as the caller allocates it
            let mut out = Array4::<f32>::zeros((2, 7, 6, 8).f());
            let mut w = Array3::<f32>::zeros((7, 6, 8).f());
            pool.install(|| {
                accumulate_blocks(
                    blocks.view(),
                    &origins,
                    window.view(),
                    out.view_mut(),
                    w.view_mut(),
                )
                .unwrap()
            });
            assert_eq!(out, want);
            assert_eq!(w, want_w);
        }
    }

    #[test]
    fn a_block_outside_the_volume_is_an_error() {
        let blocks = Array5::<f32>::zeros((1, 1, 4, 4, 4));
        let window = Array3::<f32>::ones((4, 4, 4));
        let mut out = Array4::<f32>::zeros((1, 5, 5, 5));
        let mut w = Array3::<f32>::zeros((5, 5, 5));
        let err = accumulate_blocks(
            blocks.view(),
            &[[2, 0, 0]],
            window.view(),
            out.view_mut(),
            w.view_mut(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("falls outside the volume"));
    }
}
