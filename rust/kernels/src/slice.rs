//! Whole slices along one axis, gathered from a list of images into one preallocated batch.
//! A slice is a block that spans the image in every axis but one, so this reuses the block kernel.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut3, Axis};
use num_traits::AsPrimitive;

use super::patch::{gather, Item};
use super::{fmt_shape, KernelError, Pixel};

const OP: &str = "slices";

/// The shape of one slice of a `shape` image along `axis`: that axis dropped.
pub fn plane_shape(shape: &[usize], axis: usize) -> [usize; 2] {
    let mut rest = shape
        .iter()
        .enumerate()
        .filter(|&(a, _)| a != axis)
        .map(|(_, &d)| d);
    [rest.next().unwrap_or(1), rest.next().unwrap_or(1)]
}

/// Write slice `table[n] = [image, index]` along `axis` into `out[n]`.
///
/// `images` are 3-D (a 2-D image arrives with a trailing length-1 axis, with `dims = 2`); every image must
/// have the same shape once `axis` is dropped; `out` has shape `(N, p0, p1)` for that plane.
pub fn gather_slices<T, O>(
    images: &[ArrayView3<'_, T>],
    table: ArrayView2<'_, i64>,
    axis: usize,
    dims: usize,
    out: ArrayViewMut3<'_, O>,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel,
{
    if axis >= dims {
        return Err(KernelError::value(
            OP,
            format!(
                "axis {axis} is out of range for {dims}-D images (expected 0..{})",
                dims - 1
            ),
        ));
    }
    let Some(first) = images.first() else {
        return Err(KernelError::value(
            OP,
            "expected at least one image, got none",
        ));
    };
    let plane = plane_shape(first.shape(), axis);
    for (i, img) in images.iter().enumerate().skip(1) {
        let p = plane_shape(img.shape(), axis);
        if p != plane {
            return Err(KernelError::value(
                OP,
                format!(
                    "image {i} has shape {} and image 0 has shape {}: their axis-{axis} slices differ \
                     ({} vs {}), so they cannot share one batch",
                    fmt_shape(&img.shape()[..dims]),
                    fmt_shape(&first.shape()[..dims]),
                    fmt_shape(&p[..dims - 1]),
                    fmt_shape(&plane[..dims - 1]),
                ),
            ));
        }
    }
    let (n, cols) = table.dim();
    if cols != 2 {
        return Err(KernelError::value(
            OP,
            format!(
                "expected an index of shape (N, 2) as [image index, slice index] rows, got {}",
                fmt_shape(table.shape())
            ),
        ));
    }
    if n == 0 {
        return Err(KernelError::value(
            OP,
            "expected at least one slice, got an empty index",
        ));
    }
    let expected = [n, plane[0], plane[1]];
    if out.shape() != expected {
        return Err(KernelError::value(
            OP,
            format!(
                "output has shape {}, expected {}",
                fmt_shape(out.shape()),
                fmt_shape(&expected[..dims])
            ),
        ));
    }
    let mut items = Vec::with_capacity(n);
    for (row_index, row) in table.rows().into_iter().enumerate() {
        let (img, idx) = (row[0], row[1]);
        if img < 0 || img as usize >= images.len() {
            return Err(KernelError::value(
                OP,
                format!(
                    "row {row_index} names image {img}, but there are {} images",
                    images.len()
                ),
            ));
        }
        let image = img as usize;
        let len = images[image].shape()[axis];
        if idx < 0 || idx as usize >= len {
            return Err(KernelError::value(
                OP,
                format!(
                    "row {row_index} asks for slice {idx} along axis {axis} of image {image} with shape {}",
                    fmt_shape(&images[image].shape()[..dims])
                ),
            ));
        }
        let mut origin = [0usize; 3];
        origin[axis] = idx as usize;
        items.push(Item { image, origin });
    }
    let mut size = [0usize; 3];
    let mut rest = plane.iter();
    for (a, s) in size.iter_mut().enumerate() {
        *s = if a == axis {
            1
        } else {
            rest.next().copied().unwrap_or(1)
        };
    }
    gather(OP, images, &items, size, out.insert_axis(Axis(axis + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array, Array3, ShapeBuilder};

    #[test]
    fn slices_match_index_axis_for_every_axis() {
        let a = Array::from_shape_fn((5, 6, 7).f(), |(i, j, k)| (i * 100 + j * 10 + k) as u8);
        let b = a.mapv(|x| x.wrapping_add(1));
        for axis in 0..3 {
            let mut shape = vec![5, 6, 7];
            let len = shape.remove(axis);
            let table = array![[0i64, 0], [1, len as i64 - 1], [0, 2]];
            let mut out = Array3::<f32>::zeros((3, shape[0], shape[1]));
            gather_slices(&[a.view(), b.view()], table.view(), axis, 3, out.view_mut()).unwrap();
            let imgs = [&a, &b];
            for (n, row) in table.rows().into_iter().enumerate() {
                let expect = imgs[row[0] as usize]
                    .index_axis(Axis(axis), row[1] as usize)
                    .mapv(f32::from);
                assert_eq!(out.index_axis(Axis(0), n), expect, "axis {axis} row {n}");
            }
        }
    }

    #[test]
    fn mismatched_planes_name_both_shapes_and_the_image() {
        let a = Array3::<f32>::zeros((5, 6, 7));
        let b = Array3::<f32>::zeros((5, 5, 9));
        let mut out = Array3::<f32>::zeros((1, 5, 6));
        let err = gather_slices(
            &[a.view(), b.view()],
            array![[0i64, 0]].view(),
            2,
            3,
            out.view_mut(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("image 1 has shape (5, 5, 9)"), "{err}");
        assert!(err.contains("(5, 6, 7)"), "{err}");
    }

    #[test]
    fn slice_index_out_of_range_and_bad_axis() {
        let a = Array3::<f32>::zeros((5, 6, 7));
        let mut out = Array3::<f32>::zeros((1, 5, 6));
        let err = gather_slices(&[a.view()], array![[0i64, 7]].view(), 2, 3, out.view_mut())
            .unwrap_err()
            .to_string();
        assert!(err.contains("slice 7 along axis 2"), "{err}");
        let err = gather_slices(&[a.view()], array![[0i64, 0]].view(), 3, 3, out.view_mut())
            .unwrap_err()
            .to_string();
        assert!(err.contains("axis 3 is out of range"), "{err}");
    }
}
