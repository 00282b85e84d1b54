//! Blocks (3-D from 3-D) and patches (2-D from 2-D, or from slices of 3-D) gathered at given origins into
//! one preallocated batch. Two-dimensional inputs arrive here with a trailing length-1 axis, so one kernel
//! serves every case.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut4, Axis};
use num_traits::AsPrimitive;
use rayon::prelude::*;

use super::copy::copy_block;
use super::scratch::Scratch;
use super::{fmt_shape, KernelError, Pixel};

/// One item of a batch: which image, and the corner of the block inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub image: usize,
    pub origin: [usize; 3],
}

/// Check an `(N, 1 + dims)` table of `[image, o_0, .., o_{dims-1}]` rows against the images and block size,
/// and turn it into items. `dims` (2 or 3) is the dimensionality the caller works in; it only shapes the
/// error messages and the table width.
pub fn items_from_table<T: Pixel>(
    op: &'static str,
    images: &[ArrayView3<'_, T>],
    table: ArrayView2<'_, i64>,
    size: [usize; 3],
    dims: usize,
) -> Result<Vec<Item>, KernelError> {
    if images.is_empty() {
        return Err(KernelError::value(
            op,
            "expected at least one image, got none",
        ));
    }
    let (n, cols) = table.dim();
    if cols != dims + 1 {
        return Err(KernelError::value(
            op,
            format!(
                "expected origins of shape (N, {}) as [image index, {} corner coordinates], got {}",
                dims + 1,
                dims,
                fmt_shape(table.shape())
            ),
        ));
    }
    if n == 0 {
        return Err(KernelError::value(
            op,
            "expected at least one origin, got an empty list",
        ));
    }
    let mut items = Vec::with_capacity(n);
    for (row_index, row) in table.rows().into_iter().enumerate() {
        let img = row[0];
        if img < 0 || img as usize >= images.len() {
            return Err(KernelError::value(
                op,
                format!(
                    "origin {row_index} names image {img}, but there are {} images",
                    images.len()
                ),
            ));
        }
        let image = img as usize;
        let shape = images[image].shape();
        let mut origin = [0usize; 3];
        for d in 0..dims {
            let o = row[d + 1];
            if o < 0 || o as usize + size[d] > shape[d] {
                let corner: Vec<String> = (1..=dims).map(|c| row[c].to_string()).collect();
                return Err(KernelError::value(
                    op,
                    format!(
                        "origin {row_index} ({}) with size {} falls outside image {image} of shape {}",
                        corner.join(", "),
                        fmt_shape(&size[..dims]),
                        fmt_shape(&shape[..dims])
                    ),
                ));
            }
            origin[d] = o as usize;
        }
        items.push(Item { image, origin });
    }
    Ok(items)
}

/// Write block `n` of size `size` at `items[n]` into `out[n]`, in parallel over the batch.
/// `out` must have shape `(items.len(), size[0], size[1], size[2])` (checked).
pub fn gather<T, O>(
    op: &'static str,
    images: &[ArrayView3<'_, T>],
    items: &[Item],
    size: [usize; 3],
    mut out: ArrayViewMut4<'_, O>,
) -> Result<(), KernelError>
where
    T: Pixel + AsPrimitive<O>,
    O: Pixel,
{
    let expected = [items.len(), size[0], size[1], size[2]];
    if out.shape() != expected {
        return Err(KernelError::value(
            op,
            format!(
                "output has shape {}, expected {}",
                fmt_shape(out.shape()),
                fmt_shape(&expected)
            ),
        ));
    }
    for (n, it) in items.iter().enumerate() {
        let inside = it.image < images.len()
            && (0..3).all(|d| it.origin[d] + size[d] <= images[it.image].shape()[d]);
        if !inside {
            return Err(KernelError::value(
                op,
                format!("item {n} ({it:?}) falls outside its image"),
            ));
        }
    }
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(items.par_iter())
        .for_each_init(Scratch::<T>::take_any, |scratch, (dst, it)| {
            let [o0, o1, o2] = it.origin;
            let src = images[it.image].slice(ndarray::s![
                o0..o0 + size[0],
                o1..o1 + size[1],
                o2..o2 + size[2]
            ]);
            copy_block(src, dst, scratch);
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s, Array, Array3, Array4, ShapeBuilder};

    fn volume(shape: (usize, usize, usize), seed: usize) -> Array3<f32> {
        Array::from_shape_fn(shape.f(), |(i, j, k)| {
            (seed * 1000 + i * 100 + j * 10 + k) as f32
        })
    }

    #[test]
    fn blocks_match_slicing() {
        let imgs = [volume((9, 8, 7), 1), volume((6, 8, 9), 2)];
        let views: Vec<_> = imgs.iter().map(|a| a.view()).collect();
        let table = array![[0i64, 0, 0, 0], [1, 2, 3, 4], [0, 5, 4, 3]];
        let size = [4, 4, 3];
        let items = items_from_table("blocks", &views, table.view(), size, 3).unwrap();
        let mut out = Array4::<f64>::zeros((3, 4, 4, 3));
        gather("blocks", &views, &items, size, out.view_mut()).unwrap();
        for (n, row) in table.rows().into_iter().enumerate() {
            let (i, a, b, c) = (
                row[0] as usize,
                row[1] as usize,
                row[2] as usize,
                row[3] as usize,
            );
            let expect = imgs[i]
                .slice(s![a..a + 4, b..b + 4, c..c + 3])
                .mapv(f64::from);
            assert_eq!(out.index_axis(Axis(0), n), expect);
        }
    }

    #[test]
    fn out_of_bounds_origin_names_origin_and_shape() {
        let img = volume((9, 8, 7), 0);
        let views = [img.view()];
        let err = items_from_table(
            "blocks",
            &views,
            array![[0i64, 6, 0, 0]].view(),
            [4, 4, 4],
            3,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("origin 0 (6, 0, 0)"), "{msg}");
        assert!(msg.contains("(9, 8, 7)"), "{msg}");
        let err = items_from_table(
            "blocks",
            &views,
            array![[0i64, -1, 0, 0]].view(),
            [1, 1, 1],
            3,
        )
        .unwrap_err();
        assert!(err.to_string().contains("(-1, 0, 0)"));
    }

    #[test]
    fn bad_tables_are_rejected() {
        let img = volume((4, 4, 4), 0);
        let views = [img.view()];
        let empty = Array::<i64, _>::zeros((0, 4));
        assert!(items_from_table("blocks", &views, empty.view(), [1, 1, 1], 3).is_err());
        let narrow = array![[0i64, 0, 0]];
        assert!(items_from_table("blocks", &views, narrow.view(), [1, 1, 1], 3).is_err());
        let bad_image = array![[1i64, 0, 0, 0]];
        let msg = items_from_table("blocks", &views, bad_image.view(), [1, 1, 1], 3)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("names image 1"), "{msg}");
    }

    #[test]
    fn wrong_output_shape_is_rejected() {
        let img = volume((4, 4, 4), 0);
        let views = [img.view()];
        let items = [Item {
            image: 0,
            origin: [0, 0, 0],
        }];
        let mut out = Array4::<f32>::zeros((1, 2, 2, 3));
        let err = gather("blocks", &views, &items, [2, 2, 2], out.view_mut()).unwrap_err();
        assert!(err.to_string().contains("(1, 2, 2, 3)"));
    }

    #[test]
    fn same_result_on_one_and_many_threads() {
        let imgs = [volume((20, 21, 22), 3)];
        let views: Vec<_> = imgs.iter().map(|a| a.view()).collect();
        let items: Vec<Item> = (0..40)
            .map(|n| Item {
                image: 0,
                origin: [n % 10, (n * 7) % 11, (n * 3) % 12],
            })
            .collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = Array4::<f32>::zeros((40, 10, 10, 10));
            pool.install(|| gather("blocks", &views, &items, [10, 10, 10], out.view_mut()))
                .unwrap();
            out
        };
        assert_eq!(run(1), run(4));
    }
}
