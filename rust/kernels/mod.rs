//! Pure-Rust kernels over ndarray views. No pyo3 types here: `cargo test` exercises them without Python.

pub mod copy;
pub mod error;
pub mod intensity;
pub mod noise;
pub mod occlude;
pub mod patch;
pub mod random;
pub mod scratch;
pub mod slice;
pub mod smooth;

pub use error::KernelError;

/// Element types the kernels read. Anything numpy can hand us as a plain number.
pub trait Pixel: Copy + Default + Send + Sync + 'static {}
impl<T: Copy + Default + Send + Sync + 'static> Pixel for T {}

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
