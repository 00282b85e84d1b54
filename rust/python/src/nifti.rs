//! Binding for reading NIfTI files (`nitrain_kernels::nifti`): the file is read and verified without the
//! GIL, into a recycled buffer that becomes the image's voxels.

use std::path::PathBuf;

use ndarray::{ArrayView, IxDyn, ShapeBuilder};
use numpy::PyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::{NiftiDamagedError, PyKernelError};
use nitrain_kernels::buffers::{self, AlignedBuf};
use nitrain_kernels::nifti::{self, Outcome};

/// Owns the memory of an image read here; gives it back for reuse when the array dies.
#[pyclass(frozen, module = "nitrain._core")]
struct NiftiBuffer {
    buf: Option<AlignedBuf>,
}

impl Drop for NiftiBuffer {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            buffers::give_back(buf);
        }
    }
}

/// ITK reads a skewed sform (as an orthogonalised one) when `ITK_NIFTI_SFORM_PERMISSIVE` says so.
fn sform_permissive() -> bool {
    std::env::var("ITK_NIFTI_SFORM_PERMISSIVE")
        .map(|v| !matches!(v.to_uppercase().as_str(), "NO" | "OFF" | "FALSE"))
        .unwrap_or(false)
}

/// Read a `.nii` or `.nii.gz` as `ants.image_read` would, verified complete (gzip CRC32 and ISIZE of
/// every member, sizes against the header). Returns a dict: `array` (float32, Fortran-ordered, over a
/// recycled buffer), `spacing`, `origin`, `direction` (rows), `transform` ('sform', 'qform' or 'none'),
/// `datatype`, `version`, `members` (gzip members; 0: uncompressed), `scl_slope`, `scl_inter`,
/// `qform_code`, `sform_code`; or, for a file left to ITK, only `unsupported` (the reason).
/// Raises `NiftiDamagedError` (an `OSError`) for a damaged file, `OSError` when it cannot be read; both
/// name the file.
#[pyfunction]
pub fn read_nifti<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let permissive = sform_permissive();
    let outcome = py
        .detach(|| nifti::read(&path, permissive))
        .map_err(PyKernelError)?;
    let out = PyDict::new(py);
    let img = match outcome {
        Outcome::Unsupported(why) => {
            out.set_item("unsupported", why)?;
            return Ok(out);
        }
        Outcome::Image(img) => img,
    };
    let nifti::Image {
        buf,
        offset,
        header,
        plan,
        members,
    } = *img;
    let dims = plan.shape.len();
    // SAFETY: `buf` holds `plan.voxels` float32 values at `offset`, 4-byte aligned (`nifti::read`), and
    // lives as long as `owner`, which the new array keeps as its base. Nothing else refers to it.
    let view = unsafe {
        ArrayView::from_shape_ptr(
            IxDyn(&plan.shape).f(),
            buf.as_mut_ptr().add(offset) as *const f32,
        )
    };
    let owner = Bound::new(py, NiftiBuffer { buf: Some(buf) })?;
    // SAFETY: as above; the array is writable and the only user of this buffer.
    let array = unsafe { PyArrayDyn::<f32>::borrow_from_array(&view, owner.into_any()) };
    let rows: Vec<Vec<f64>> = plan.direction.chunks(dims).map(<[f64]>::to_vec).collect();
    out.set_item("array", array)?;
    out.set_item("spacing", plan.spacing)?;
    out.set_item("origin", plan.origin)?;
    out.set_item("direction", rows)?;
    out.set_item("transform", plan.transform.name())?;
    out.set_item("datatype", header.datatype)?;
    out.set_item("version", header.version)?;
    out.set_item("members", members)?;
    out.set_item("scl_slope", header.scl_slope)?;
    out.set_item("scl_inter", header.scl_inter)?;
    out.set_item("qform_code", header.qform_code)?;
    out.set_item("sform_code", header.sform_code)?;
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_nifti, m)?)?;
    m.add("NiftiDamagedError", m.py().get_type::<NiftiDamagedError>())?;
    Ok(())
}
