//! How ITK reads a header: the image it makes (shape, scaling, spacing, origin, direction), or why this
//! module leaves the file to ITK.

use super::geometry::{
    determinant, elementwise_similar, fixed, flip_negative_spacing, geometry_from, quatern_to_mat,
    sform_decomposable, singular_values, within, Mat, Tri,
};
use super::header::{Dtype, Header};

/// Which of the header's transforms gave origin and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Neither: origin 0, identity direction.
    None,
    Qform,
    Sform,
}

impl Transform {
    pub fn name(self) -> &'static str {
        match self {
            Transform::None => "none",
            Transform::Qform => "qform",
            Transform::Sform => "sform",
        }
    }
}

/// The image ITK makes of a header: float32 voxels of `shape` (x fastest) and their geometry (LPS).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub voxels: usize,
    pub data_offset: usize,
    pub data_bytes: usize,
    /// `(slope, intercept)` when ITK rescales.
    pub scale: Option<(f64, f64)>,
    pub spacing: Vec<f64>,
    pub origin: Vec<f64>,
    /// Row-major, `shape.len()` squared; column `j` is axis `j`'s direction.
    pub direction: Vec<f64>,
    pub transform: Transform,
}

/// How ITK 5.4 (antspyx's `ants.image_read`) reads this header, or why this module leaves it to ITK.
/// `sform_permissive`: ITK's `ITK_NIFTI_SFORM_PERMISSIVE` is set.
pub fn plan(h: &Header, sform_permissive: bool) -> Result<Plan, String> {
    let one_file = h.magic[0] == b'n' && h.magic[1] == b'+' && h.magic[3] == 0;
    let versioned = match h.version {
        1 => one_file && h.magic[2] == b'1',
        _ => one_file && h.magic[2] == b'2',
    };
    if !versioned {
        return Err(format!(
            "magic {:?} (not a one-file NIfTI-{}: Analyze or .hdr/.img)",
            String::from_utf8_lossy(&h.magic),
            h.version
        ));
    }
    if h.dim[1] <= 0 {
        return Err(format!("dim[1] is {}", h.dim[1]));
    }
    let dtype = Dtype::from_code(h.datatype)
        .ok_or_else(|| format!("datatype {} is not one of the 8 real types", h.datatype))?;
    if h.bitpix as usize != 8 * dtype.size() {
        return Err(format!(
            "bitpix {} does not match datatype {}",
            h.bitpix, h.datatype
        ));
    }
    if (1004..=1007).contains(&h.intent_code) {
        return Err(format!(
            "intent {} (a vector, matrix or displacement image)",
            h.intent_code
        ));
    }
    // ITK: trailing length-1 axes above the third are dropped.
    let mut dims = h.dim[0] as usize;
    while dims > 3 && h.dim[dims] == 1 {
        dims -= 1;
    }
    if !(2..=3).contains(&dims) {
        return Err(format!("{dims}-D images are not handled"));
    }
    let voxels = h.voxels().ok_or("the image is too big")?;
    let data_offset = h.data_offset().ok_or("vox_offset is not usable")?;
    let data_bytes = voxels
        .checked_mul(dtype.size())
        .ok_or("the image is too big")?;
    let shape: Vec<usize> = (1..=dims).map(|i| h.dim[i] as usize).collect();

    // nifti1_io stores header floats as float, NIfTI-2's as double.
    let round: fn(f64) -> f64 = if h.version == 1 {
        |x| x as f32 as f64
    } else {
        |x| x
    };
    let mut pixdim = h.pixdim;
    for p in pixdim.iter_mut().take(h.dim[0] as usize + 1).skip(1) {
        if *p == 0.0 || !p.is_finite() {
            *p = 1.0;
        }
    }
    let eps = f64::EPSILON;
    let mut slope = fixed(h.scl_slope);
    if slope.abs() < eps {
        slope = 1.0;
    }
    let inter = fixed(h.scl_inter);
    let scale = ((slope - 1.0).abs() > eps || inter.abs() > eps).then_some((slope, inter));

    let unit = match h.xyzt_units & 7 {
        1 => 1e3,
        3 => 1e-3,
        _ => 1.0,
    };
    let spacing_signed: Vec<f64> = (1..=dims).map(|i| pixdim[i] * unit).collect();

    let q_code = h.qform_code.max(0);
    let s_code = h.sform_code.max(0);
    let qto = if q_code > 0 {
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        quatern_to_mat(
            h.quatern.map(fixed),
            h.qoffset.map(fixed),
            pixdim[1],
            pixdim[2],
            pixdim[3],
            qfac,
            round,
        )
    } else {
        let mut m = [[0.0; 4]; 4];
        m[0][0] = pixdim[1];
        m[1][1] = pixdim[2];
        m[2][2] = pixdim[3];
        m[3][3] = 1.0;
        m
    };
    let mut sto = [[0.0; 4]; 4];
    if s_code > 0 {
        for (i, row) in h.srow.iter().enumerate() {
            if row.iter().any(|x| !x.is_finite()) {
                return Err("the sform holds values that are not finite".into());
            }
            sto[i] = *row;
        }
        sto[3][3] = 1.0;
    }
    let chosen = choose(q_code, s_code, &qto, &sto, sform_permissive, |m| {
        geometry_from(m, dims, unit, &spacing_signed)
    })?;
    let (origin, direction) = match chosen {
        Transform::None => {
            let mut d = vec![0.0; dims * dims];
            for i in 0..dims {
                d[i * dims + i] = 1.0;
            }
            flip_negative_spacing(&mut d, dims, &spacing_signed);
            (vec![0.0; dims], d)
        }
        Transform::Qform => geometry_from(&qto, dims, unit, &spacing_signed),
        Transform::Sform => geometry_from(&sto, dims, unit, &spacing_signed),
    };
    let det = determinant(&direction, dims);
    if det.is_nan() || det.abs() <= 1e-3 || origin.iter().any(|x| !x.is_finite()) {
        return Err("the direction is singular or not finite".into());
    }
    Ok(Plan {
        dtype,
        shape,
        voxels,
        data_offset,
        data_bytes,
        scale,
        spacing: spacing_signed.iter().map(|s| s.abs()).collect(),
        origin,
        direction,
        transform: chosen,
    })
}

/// ITK 5.4's choice between the sform and the qform (`SetImageIOOrientationFromNIfTI`).
fn choose(
    q_code: i32,
    s_code: i32,
    qto: &Mat,
    sto: &Mat,
    sform_permissive: bool,
    geometry: impl Fn(&Mat) -> (Vec<f64>, Vec<f64>),
) -> Result<Transform, String> {
    const REFUSED: &str = "ITK refuses it: no orthonormal transform";
    if q_code == 0 && s_code == 0 {
        return Ok(Transform::None);
    }
    if s_code == 0 {
        return Ok(Transform::Qform); // an unset sform is all zeros: neither similar nor decomposable
    }
    match sform_decomposable(sto) {
        Tri::Unsure => Err("the sform is too close to ITK's orthonormality limit to say".into()),
        Tri::Yes if q_code == 0 || s_code == 1 => Ok(Transform::Sform),
        Tri::Yes => {
            // ITK compares the two forms' SVDs (rotation, spacing, offset to 1e-4). Plainly different
            // offsets or singular values: the qform. Otherwise the sform if the two give the same
            // geometry, whichever ITK takes; if they do not, ITK's choice depends on its SVD's signs.
            let offsets = (0..3)
                .map(|i| ((sto[i][3] as f32) - (qto[i][3] as f32)).abs() as f64)
                .fold(0.0, f64::max);
            let (ss, qs) = (singular_values(sto), singular_values(qto));
            let values = (0..3).map(|i| (ss[i] - qs[i]).abs()).fold(0.0, f64::max);
            if within(offsets, 1e-4) == Tri::No || within(values, 1e-4) == Tri::No {
                return Ok(Transform::Qform);
            }
            let (so, sd) = geometry(sto);
            let (qo, qd) = geometry(qto);
            let close = sd.iter().zip(&qd).all(|(a, b)| (a - b).abs() <= 1e-6);
            if so == qo && close {
                Ok(Transform::Sform)
            } else {
                Err("the sform and qform differ slightly; ITK's choice between them is not predictable here".into())
            }
        }
        Tri::No if sform_permissive => {
            Err("ITK_NIFTI_SFORM_PERMISSIVE is set and the sform is skewed".into())
        }
        Tri::No => match elementwise_similar(sto, qto) {
            Tri::Yes => Ok(Transform::Sform),
            Tri::No if q_code > 0 => Ok(Transform::Qform),
            Tri::No => Err(REFUSED.into()),
            Tri::Unsure => {
                Err("the sform and qform are too close to ITK's similarity limit to say".into())
            }
        },
    }
}
