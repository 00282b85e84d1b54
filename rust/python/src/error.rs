//! The one place kernel errors become Python exceptions (as polars' `error.rs` does): each variant of
//! `KernelError` maps to one exception type, the message is the error's text.

use nitrain_kernels::KernelError;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::PyErr;

create_exception!(
    nitrain._core,
    NiftiDamagedError,
    PyOSError,
    "A NIfTI file is short, or its compressed data or checksums do not match."
);

/// A `KernelError` on its way to Python (the orphan rule forbids `From<KernelError> for PyErr` here, so
/// `?` converts through this wrapper: `kernel(...).map_err(PyKernelError)?`).
#[derive(Debug)]
pub struct PyKernelError(pub KernelError);

impl From<KernelError> for PyKernelError {
    fn from(e: KernelError) -> Self {
        PyKernelError(e)
    }
}

impl From<PyKernelError> for PyErr {
    fn from(PyKernelError(e): PyKernelError) -> PyErr {
        let msg = e.to_string();
        match e {
            KernelError::Value { .. } | KernelError::ThreadsEnv(_) | KernelError::ZeroThreads => {
                PyValueError::new_err(msg)
            }
            KernelError::PoolStart { .. } | KernelError::PoolPoisoned => {
                PyRuntimeError::new_err(msg)
            }
            KernelError::NiftiIo { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                _ => PyOSError::new_err(msg),
            },
            KernelError::NiftiDamaged { .. } => NiftiDamagedError::new_err(msg),
        }
    }
}

/// `map_err` helper where a `PyErr` is needed directly.
pub fn kernel_err(e: KernelError) -> PyErr {
    PyKernelError(e).into()
}
