//! Reading NIfTI images (`.nii`, `.nii.gz`) as `ants.image_read` does, every byte verified.
//!
//! `ants.image_read` (antspyx 0.6, ITK 5.4's `NiftiImageIO` over nifti1_io) gives a float32 image whose
//! geometry follows ITK's rules; this module reproduces them:
//!
//! - dimensions: `dim[0]`, less trailing length-1 axes above the third; 2-D and 3-D are handled here.
//! - voxels: converted to float32 as ITK and antspyx do (`static_cast`, round to nearest); NaN and
//!   infinities in float data become 0 (nifti1_io's `nifti_read_buffer`); with `scl_slope`/`scl_inter`
//!   ITK computes `float(double(v) * slope + inter)`, from `v` first cast to float for integer data.
//! - spacing: `pixdim[1..]` (0 or not finite: 1), scaled by the spatial unit (m, mm, um); a negative
//!   spacing is made positive and its direction negated (ITK's `ImageFileReader`).
//! - origin and direction: from the sform or the qform, chosen by ITK's rules
//!   (`SetImageIOOrientationFromNIfTI`), converted from RAS to LPS; neither: origin 0, identity.
//!   Where ITK's choice rests on comparing singular vectors that the two forms could give differently,
//!   and the two forms would give different geometry, the file is left to ITK ([`Outcome::Unsupported`]).
//!
//! A `.nii.gz` is inflated with libdeflate, whole members at a time, straight into the buffer that becomes
//! the image (float32 data is then used where it lies). Measured on the MNI152 T1 written by ANTs (2.4 MB
//! inflating to 34.7 MB): libdeflate 8.8 ms against 20.3 ms for zlib-rs (flate2's fastest backend),
//! streaming, into the same warm buffer. Every gzip member's CRC32
//! and ISIZE are checked, zero bytes after the last member are padding and anything else there is an
//! error, as is a stream that ends early or holds fewer bytes than the header says; a raw `.nii` must be
//! as long as its header says. Files this module does not handle (4-D and more, vectors, complex, RGB,
//! 64-bit integers, Analyze and two-file NIfTI, gzip data in a file not named `.gz`, ...) are reported as
//! [`Outcome::Unsupported`] with the reason, before any voxel is read where the header says so up front.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::buffers::{self, AlignedBuf};
use crate::KernelError;

mod convert;
mod geometry;
mod gzip;
mod header;
mod plan;
#[cfg(test)]
mod tests;

use gzip::{gunzip, PAD};

pub use convert::{convert, fix_f32_in_place};
pub use header::{parse_header, Dtype, Header, HeaderFault};
pub use plan::{plan, Plan, Transform};

/// A failure before the file name is attached.
enum Fault {
    Io(std::io::Error),
    Damaged(String),
    Unsupported(String),
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Self {
        Fault::Io(e)
    }
}

// -- reading a file ----------------------------------------------------------------------------------------

/// A NIfTI image read: float32 voxels (x fastest) at `buf[offset..]`, and how ITK reads the header.
pub struct Image {
    pub buf: AlignedBuf,
    pub offset: usize,
    pub header: Header,
    pub plan: Plan,
    /// gzip members inflated (0: a raw file).
    pub members: usize,
}

pub enum Outcome {
    Image(Box<Image>),
    /// A file this module leaves to ITK, and why.
    Unsupported(String),
}

/// Read `path` (`.nii`, or gzip-compressed when its name ends in `.gz`) as `ants.image_read` would.
pub fn read(path: &Path, sform_permissive: bool) -> Result<Outcome, KernelError> {
    let name = path.display().to_string();
    match read_inner(path, sform_permissive) {
        Ok(image) => Ok(Outcome::Image(Box::new(image))),
        Err(Fault::Unsupported(why)) => Ok(Outcome::Unsupported(why)),
        Err(Fault::Io(source)) => Err(KernelError::NiftiIo { path: name, source }),
        Err(Fault::Damaged(msg)) => Err(KernelError::NiftiDamaged { path: name, msg }),
    }
}

fn header_of(head: &[u8], what: &str) -> Result<Header, Fault> {
    parse_header(head).map_err(|e| match e {
        HeaderFault::Short(n) => Fault::Damaged(format!(
            "{what} ends inside the NIfTI header ({n} bytes): the file is truncated"
        )),
        HeaderFault::NotNifti(why) => Fault::Unsupported(why),
    })
}

fn short(have: usize, plan: &Plan, what: &str) -> Fault {
    Fault::Damaged(format!(
        "{what} has {have} bytes but its NIfTI header needs {} ({} of header and {} of voxels): the file \
         is truncated",
        plan.data_offset + plan.data_bytes,
        plan.data_offset,
        plan.data_bytes
    ))
}

fn read_inner(path: &Path, sform_permissive: bool) -> Result<Image, Fault> {
    let mut file = File::open(path)?;
    let size = usize::try_from(file.metadata()?.len())
        .map_err(|_| Fault::Unsupported("the file is too big".into()))?;
    if size == 0 {
        return Err(Fault::Damaged("the file is empty".into()));
    }
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic)?;
    let gzip = got == 2 && magic == [0x1f, 0x8b];
    let named_gz = path
        .to_str()
        .is_some_and(|s| s.to_ascii_lowercase().ends_with(".gz"));
    if gzip && !named_gz {
        return Err(Fault::Unsupported(
            "gzip data in a file not named .gz (ITK reads such a file uncompressed)".into(),
        ));
    }
    file.seek(SeekFrom::Start(0))?;
    if gzip {
        let mut data = Vec::with_capacity(size);
        file.read_to_end(&mut data)?;
        drop(file);
        let (out, members) = gunzip(&data)?;
        drop(data);
        let header = header_of(out.data(), "the decompressed data")?;
        let plan = plan(&header, sform_permissive).map_err(Fault::Unsupported)?;
        if out.len < plan.data_offset + plan.data_bytes {
            return Err(short(out.len, &plan, "the decompressed data"));
        }
        finish(out.buf, PAD + plan.data_offset, header, plan, members)
    } else {
        let mut head = [0u8; 540];
        let got = read_up_to(&mut file, &mut head)?;
        let header = header_of(&head[..got], "the file")?;
        let plan = plan(&header, sform_permissive).map_err(Fault::Unsupported)?;
        if size < plan.data_offset + plan.data_bytes {
            return Err(short(size, &plan, "the file"));
        }
        file.seek(SeekFrom::Start(plan.data_offset as u64))?;
        let buf = buffers::take(plan.data_bytes);
        // SAFETY: the buffer holds at least `data_bytes` bytes; `read_exact` only writes to them.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr(), plan.data_bytes) };
        file.read_exact(dst)?;
        finish(buf, 0, header, plan, 0)
    }
}

/// Turn the raw voxels at `buf[at..]` into float32: where they lie for float32 data (4-byte aligned),
/// else into a new buffer.
fn finish(
    buf: AlignedBuf,
    at: usize,
    header: Header,
    plan: Plan,
    members: usize,
) -> Result<Image, Fault> {
    let big = header.big_endian;
    if plan.dtype == Dtype::F32 && at.is_multiple_of(4) {
        // SAFETY: `buf[at..at + data_bytes]` holds the voxels (checked against the header), 4-byte aligned.
        let data = unsafe {
            std::slice::from_raw_parts_mut(buf.as_mut_ptr().add(at).cast::<f32>(), plan.voxels)
        };
        fix_f32_in_place(data, big, plan.scale);
        return Ok(Image {
            buf,
            offset: at,
            header,
            plan,
            members,
        });
    }
    let out = buffers::take(plan.voxels * 4);
    {
        // SAFETY: the source holds the voxels at `at` (checked); the new buffer holds `voxels` floats,
        // is 64-byte aligned and distinct from the source.
        let (src, dst) = unsafe {
            (
                std::slice::from_raw_parts(buf.as_mut_ptr().add(at), plan.data_bytes),
                std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), plan.voxels),
            )
        };
        convert(src, plan.dtype, big, plan.scale, dst);
    }
    buffers::give_back(buf);
    Ok(Image {
        buf: out,
        offset: 0,
        header,
        plan,
        members,
    })
}

/// Read until `buf` is full or the file ends; the bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
