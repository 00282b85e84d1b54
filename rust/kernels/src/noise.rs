//! Additive Gaussian noise with counter-based randomness.
//!
//! The deviate added to a voxel depends on `(seed, stream)` and the voxel's Fortran-order linear index (the
//! order of an ANTs image's buffer), so the result is the same on any number of threads and for any
//! memory layout of the input.

use ndarray::{ArrayView, ArrayViewMut, Axis, IxDyn};
use num_traits::AsPrimitive;
use rayon::prelude::*;

use super::random::Counter;
use super::{check_same_shape, KernelError, Pixel};

/// Normals generated per call of `Counter::fill_normals` (a stack buffer).
const RUN: usize = 1024;

/// `d = s + sd * z` for each deviate `z` and the next `(d, s)` pair (computed in f64, stored as `O`). The
/// deviates lead the zip, so exactly `z.len()` pairs are taken from `pairs`.
#[inline(always)]
fn add_deviates<'a, T, O>(z: &[f32], pairs: impl Iterator<Item = (&'a mut O, T)>, sd: f64)
where
    T: AsPrimitive<f64>,
    O: Pixel + 'a,
    f64: AsPrimitive<O>,
{
    for (&z, (d, s)) in z.iter().zip(pairs) {
        *d = (s.as_() + sd * z as f64).as_();
    }
}

/// Each element with its current value, for adding to it in place.
#[inline(always)]
fn in_place<'a, O: Copy + 'a>(
    values: impl Iterator<Item = &'a mut O>,
) -> impl Iterator<Item = (&'a mut O, O)> {
    values.map(|v| {
        let s = *v;
        (v, s)
    })
}

/// `dst = src + sd * N(0, 1)`: the deviates are f32, the sum is computed in f64 and stored as `O`.
pub fn add_gaussian<T, O>(
    src: ArrayView<'_, T, IxDyn>,
    dst: ArrayViewMut<'_, O, IxDyn>,
    sd: f64,
    seed: u64,
    stream: u64,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<f64>,
    O: Pixel,
    f64: AsPrimitive<O>,
{
    const OP: &str = "gaussian noise";
    check_same_shape(OP, src.shape(), dst.shape())?;
    if !(sd.is_finite() && sd >= 0.0) {
        return Err(KernelError::value(
            OP,
            format!("sd must be a finite number >= 0, got {sd}"),
        ));
    }
    if src.is_empty() {
        return Ok(());
    }
    let rng = Counter::new(seed, stream);
    // Fortran order = C order of the reversed axes; chunks are the first reversed axis (the slowest).
    let src = src.reversed_axes();
    let dst = dst.reversed_axes();
    let (src, mut dst) = if src.ndim() == 0 {
        (src.insert_axis(Axis(0)), dst.insert_axis(Axis(0)))
    } else {
        (src, dst)
    };
    let chunk_len = (src.len() / src.shape()[0]) as u64;
    dst.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(src.axis_iter(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(c, (mut d, s))| {
            let base = c as u64 * chunk_len;
            let mut normals = [0f32; RUN];
            match (d.as_slice_mut(), s.as_slice()) {
                (Some(d), Some(s)) => {
                    for (r, (d, s)) in d.chunks_mut(RUN).zip(s.chunks(RUN)).enumerate() {
                        let z = &mut normals[..d.len()];
                        rng.fill_normals(base + (r * RUN) as u64, z);
                        add_deviates(z, d.iter_mut().zip(s.iter().copied()), sd);
                    }
                }
                _ => {
                    let len = chunk_len as usize;
                    let mut pairs = d.iter_mut().zip(s.iter().copied());
                    for start in (0..len).step_by(RUN) {
                        let z = &mut normals[..RUN.min(len - start)];
                        rng.fill_normals(base + start as u64, z);
                        add_deviates(z, pairs.by_ref(), sd);
                    }
                }
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array, Array4, ArrayD, IxDyn, ShapeBuilder};

    #[test]
    fn deferred_noise_equals_noise_then_gather() {
        let img =
            Array::from_shape_fn((7, 6, 5).f(), |(i, j, k)| (i * 30 + j * 5 + k) as f32).into_dyn();
        let mut noisy = ArrayD::<f32>::zeros(IxDyn(&[7, 6, 5]).f());
        add_gaussian(img.view(), noisy.view_mut(), 0.7, 99, 0).unwrap();
        let mut twice = ArrayD::<f32>::zeros(IxDyn(&[7, 6, 5]).f());
        add_gaussian(noisy.view(), twice.view_mut(), 0.2, 5, 0).unwrap();
        let origins = [[1, 2, 0], [0, 0, 3]];
        let mut batch = Array4::<f32>::zeros((2, 4, 3, 2));
        for (n, o) in origins.iter().enumerate() {
            batch.slice_mut(s![n, .., .., ..]).assign(&img.slice(s![
                o[0]..o[0] + 4,
                o[1]..o[1] + 3,
                o[2]..o[2] + 2
            ]));
        }
        let ops = vec![NoiseOp { sd: 0.7, seed: 99 }, NoiseOp { sd: 0.2, seed: 5 }];
        add_gaussian_to_blocks(
            batch.view_mut(),
            &origins,
            &[[7, 6, 5]; 2],
            &[ops.clone(), ops],
        )
        .unwrap();
        for (n, o) in origins.iter().enumerate() {
            let want = twice.slice(s![o[0]..o[0] + 4, o[1]..o[1] + 3, o[2]..o[2] + 2]);
            assert_eq!(batch.slice(s![n, .., .., ..]), want);
        }
    }

    #[test]
    fn noise_is_layout_and_thread_independent() {
        let f = Array::from_shape_fn((9, 8, 7).f(), |(i, j, k)| (i + j + k) as f32).into_dyn();
        let c = f.as_standard_layout().to_owned();
        let run = |src: &ArrayD<f32>, threads: usize| {
            let mut out = ArrayD::<f32>::zeros(IxDyn(&[9, 8, 7]).f());
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| add_gaussian(src.view(), out.view_mut(), 2.0, 11, 3))
                .unwrap();
            out
        };
        let a = run(&f, 1);
        assert_eq!(a, run(&f, 3));
        assert_eq!(a, run(&c, 2));
        assert!(a.iter().zip(f.iter()).any(|(x, y)| x != y));
    }

    #[test]
    fn bad_arguments() {
        let a = ArrayD::<f32>::zeros(IxDyn(&[3, 3]));
        let mut o = ArrayD::<f32>::zeros(IxDyn(&[3, 4]));
        assert!(add_gaussian(a.view(), o.view_mut(), 1.0, 0, 0).is_err());
        let mut o = ArrayD::<f32>::zeros(IxDyn(&[3, 3]));
        assert!(add_gaussian(a.view(), o.view_mut(), -1.0, 0, 0).is_err());
    }
}

/// One deferred noise step: `sd` and the `seed` it was drawn with (stream 0), as `RandomNoise` applies it.
#[derive(Debug, Clone, Copy)]
pub struct NoiseOp {
    pub sd: f64,
    pub seed: u64,
}

/// Add the noise a whole-image `add_gaussian` would have added, but only to the voxels already gathered
/// into a batch: item `n` of `batch` is the block of its image (of `shapes[n]`) at `origins[n]`. The counter
/// of each voxel is its Fortran-order index in the image, so the result is bit-identical to adding noise to
/// the image first and gathering afterwards, without ever writing a noisy copy of the whole image.
pub fn add_gaussian_to_blocks<O>(
    mut batch: ndarray::ArrayViewMut4<'_, O>,
    origins: &[[usize; 3]],
    shapes: &[[usize; 3]],
    ops: &[Vec<NoiseOp>],
) -> Result<(), KernelError>
where
    O: Pixel + AsPrimitive<f64>,
    f64: AsPrimitive<O>,
{
    const OP: &str = "deferred noise";
    let n = batch.shape()[0];
    if origins.len() != n || shapes.len() != n || ops.len() != n {
        return Err(KernelError::value(
            OP,
            format!(
                "batch of {n} items but {} origins, {} shapes, {} op lists",
                origins.len(),
                shapes.len(),
                ops.len()
            ),
        ));
    }
    let size = [batch.shape()[1], batch.shape()[2], batch.shape()[3]];
    for i in 0..n {
        if (0..3).any(|d| origins[i][d] + size[d] > shapes[i][d]) {
            return Err(KernelError::value(
                OP,
                format!("item {i} falls outside its image"),
            ));
        }
    }
    batch
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut item)| {
            let [o0, o1, o2] = origins[i];
            let [s0, s1, _] = shapes[i];
            let dims = [item.dim().0, item.dim().1, item.dim().2];
            let image_stride = [1u64, s0 as u64, (s0 * s1) as u64];
            // Runs along the item's axis that is contiguous in the batch (any axis works: a voxel's
            // deviate depends on its image index only), so the additions are contiguous.
            let strides = item.strides();
            let run = (0..3)
                .filter(|&a| dims[a] > 1)
                .min_by_key(|&a| strides[a].unsigned_abs())
                .unwrap_or(0);
            let rest = [(run + 1) % 3, (run + 2) % 3];
            let rest = [rest[0].min(rest[1]), rest[0].max(rest[1])]; // in axis order, as lanes_mut goes
            let mut normals = vec![0f32; dims[run]];
            for op in &ops[i] {
                let rng = Counter::new(op.seed, 0);
                for (k, mut lane) in item.lanes_mut(Axis(run)).into_iter().enumerate() {
                    let mut c = [0usize; 3];
                    c[rest[0]] = k / dims[rest[1]];
                    c[rest[1]] = k % dims[rest[1]];
                    let base = (o0 + c[0]) + s0 * ((o1 + c[1]) + s1 * (o2 + c[2]));
                    rng.fill_normals_strided(base as u64, image_stride[run], &mut normals);
                    match lane.as_slice_mut() {
                        // A slice iterates without per-element layout checks (and vectorises).
                        Some(lane) => add_deviates(&normals, in_place(lane.iter_mut()), op.sd),
                        None => add_deviates(&normals, in_place(lane.iter_mut()), op.sd),
                    }
                }
            }
        });
    Ok(())
}
