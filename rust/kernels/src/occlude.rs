//! Occluded copies of one image, for occlusion explanations: copy `n` of the image has the block at
//! `origins[n]` replaced by a constant. Built straight into one preallocated batch, in parallel.

use ndarray::{s, ArrayView3, ArrayViewMut4, Axis};
use num_traits::AsPrimitive;
use rayon::prelude::*;

use super::copy::copy_cast_3d;
use super::{fmt_shape, KernelError, Pixel};

/// Fill `out[n]` with `image`, then set the block of `size` at `origins[n]` to `value`.
pub fn occluded_copies<T, O>(
    image: ArrayView3<'_, T>,
    origins: &[[usize; 3]],
    size: [usize; 3],
    value: O,
    mut out: ArrayViewMut4<'_, O>,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel,
{
    const OP: &str = "occlusion";
    let shape = image.shape();
    let expected = [origins.len(), shape[0], shape[1], shape[2]];
    if out.shape() != expected {
        return Err(KernelError::value(
            OP,
            format!(
                "output has shape {}, expected {}",
                fmt_shape(out.shape()),
                fmt_shape(&expected)
            ),
        ));
    }
    for (n, o) in origins.iter().enumerate() {
        if (0..3).any(|d| o[d] + size[d] > shape[d]) {
            return Err(KernelError::value(
                OP,
                format!(
                    "patch {n} at {:?} with size {} falls outside the image of shape {}",
                    o,
                    fmt_shape(&size),
                    fmt_shape(shape)
                ),
            ));
        }
    }
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(origins.par_iter())
        .for_each(|(mut dst, o)| {
            copy_cast_3d(image, dst.view_mut());
            dst.slice_mut(s![
                o[0]..o[0] + size[0],
                o[1]..o[1] + size[1],
                o[2]..o[2] + size[2]
            ])
            .fill(value);
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, Array4, ShapeBuilder};

    #[test]
    fn each_copy_has_exactly_its_patch_replaced() {
        let img = Array::from_shape_fn((6, 5, 4).f(), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
        let origins = [[0, 0, 0], [3, 2, 1]];
        let mut out = Array4::<f32>::zeros((2, 6, 5, 4));
        occluded_copies(img.view(), &origins, [2, 3, 2], -1.0, out.view_mut()).unwrap();
        for (n, o) in origins.iter().enumerate() {
            for ((i, j, k), &v) in out.index_axis(Axis(0), n).indexed_iter() {
                let inside = (o[0]..o[0] + 2).contains(&i)
                    && (o[1]..o[1] + 3).contains(&j)
                    && (o[2]..o[2] + 2).contains(&k);
                assert_eq!(v, if inside { -1.0 } else { img[[i, j, k]] });
            }
        }
        let mut out = Array4::<f32>::zeros((1, 6, 5, 4));
        assert!(occluded_copies(img.view(), &[[5, 0, 0]], [2, 1, 1], 0.0, out.view_mut()).is_err());
    }
}
