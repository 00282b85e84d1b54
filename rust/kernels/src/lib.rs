//! nitrain's kernels: pure Rust over ndarray views and slices, with the thread pool they run on and the
//! recycled buffers they write into. This crate does not depend on pyo3 or numpy, so
//! `cargo test -p nitrain-kernels` needs no Python; the extension crate (`rust/python`) binds it.

pub mod aggregate;
pub mod buffers;
pub mod copy;
pub mod error;
pub mod intensity;
pub mod nifti;
pub mod noise;
pub mod occlude;
pub mod patch;
pub mod pool;
pub mod random;
pub mod recycle;
pub mod scratch;
pub mod slice;
pub mod smooth;
pub mod warp;

pub use error::KernelError;

/// Define `$name`, which runs `$imp` (an `#[inline(always)]` function) compiled for AVX-512F or AVX2
/// when the CPU has them, else for the baseline target. The body is the same code either way, and with
/// no fused multiply-add the results are the same bits; only the vector width differs. Generic
/// parameters are listed bare (`<'x, T, F>`); their bounds go in the bracketed `where`.
macro_rules! simd_versions {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$($g:tt),*>($($a:ident: $t:ty),*) -> $r:ty
     where [$($w:tt)*] = $imp:ident;) => {
        $(#[$m])*
        $vis fn $name<$($g),*>($($a: $t),*) -> $r where $($w)* {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn wide<$($g),*>($($a: $t),*) -> $r where $($w)* {
                    $imp($($a),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn narrow<$($g),*>($($a: $t),*) -> $r where $($w)* {
                    $imp($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { wide($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { narrow($($a),*) };
                }
            }
            $imp($($a),*)
        }
    };
}
pub(crate) use simd_versions;

/// Element types the kernels read. Anything numpy can hand us as a plain number.
pub trait Pixel: Copy + Default + Send + Sync + 'static {}
impl<T: Copy + Default + Send + Sync + 'static> Pixel for T {}

/// Pixel types the statistics read: compared as they are, summed as f64.
pub trait Scalar: Pixel + PartialOrd + num_traits::AsPrimitive<f64> {}
impl<T: Pixel + PartialOrd + num_traits::AsPrimitive<f64>> Scalar for T {}

/// Format a shape the way numpy prints it: `(4, 5)`, `(7,)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// A voxel-wise kernel's output must have its input's shape.
pub fn check_same_shape(
    op: &'static str,
    input: &[usize],
    output: &[usize],
) -> Result<(), KernelError> {
    if input != output {
        return Err(KernelError::value(
            op,
            format!(
                "output shape {} differs from input shape {}",
                fmt_shape(output),
                fmt_shape(input)
            ),
        ));
    }
    Ok(())
}

/// The number of dimensions of a 2-D or 3-D `src` whose output `dst` has its shape; an error naming `op`
/// otherwise (the image-to-image kernels: smoothing, warps).
pub fn image_pair_dims(
    op: &'static str,
    src: &[usize],
    dst: &[usize],
) -> Result<usize, KernelError> {
    let nd = src.len();
    if nd != 2 && nd != 3 {
        return Err(KernelError::value(
            op,
            format!("expected a 2-D or 3-D image, got shape {}", fmt_shape(src)),
        ));
    }
    check_same_shape(op, src, dst)?;
    Ok(nd)
}

/// An error naming `op` unless the output `dst` is a contiguous Fortran-ordered array (the layout of an
/// ANTs image's buffer, which the image-to-image kernels write in strips).
pub fn check_fortran_out<T, D: ndarray::Dimension>(
    op: &'static str,
    dst: &ndarray::ArrayViewMut<'_, T, D>,
) -> Result<(), KernelError> {
    if dst.view().reversed_axes().is_standard_layout() {
        Ok(())
    } else {
        Err(KernelError::value(
            op,
            "the output must be a Fortran-ordered contiguous array",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_shape;

    #[test]
    fn shapes_print_like_numpy() {
        assert_eq!(fmt_shape(&[4, 5]), "(4, 5)");
        assert_eq!(fmt_shape(&[7]), "(7,)");
        assert_eq!(fmt_shape(&[]), "()");
    }
}
