//! The NIfTI-1 and NIfTI-2 headers, read through one table of where each version keeps each field.

/// The header fields that matter for reading, as stored (floats widened to f64).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// 1 (348-byte header) or 2 (540 bytes).
    pub version: u8,
    pub big_endian: bool,
    pub dim: [i64; 8],
    pub datatype: i32,
    pub bitpix: i32,
    pub pixdim: [f64; 8],
    pub vox_offset: f64,
    pub scl_slope: f64,
    pub scl_inter: f64,
    pub xyzt_units: i32,
    pub intent_code: i32,
    pub qform_code: i32,
    pub sform_code: i32,
    pub quatern: [f64; 3],
    pub qoffset: [f64; 3],
    pub srow: [[f64; 4]; 3],
    /// `n+1\0`, `ni1\0`, `n+2\0`, ... (anything else: Analyze 7.5).
    pub magic: [u8; 4],
}

/// How a header stores a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    U8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl Word {
    fn width(self) -> usize {
        match self {
            Word::U8 => 1,
            Word::I16 => 2,
            Word::I32 | Word::F32 => 4,
            Word::I64 | Word::F64 => 8,
        }
    }
}

/// Where one header version keeps each field read here (byte offsets), and how it stores them. The two
/// versions differ only in this table; `parse_header` reads both through it.
struct Layout {
    version: u8,
    /// `sizeof_hdr`, and the header's length in bytes.
    size: usize,
    /// The floating-point fields: pixdim, scaling, quaternion, offsets and sform rows.
    real: Word,
    /// `dim[0..8]`, stored as `dim_word`.
    dim: usize,
    dim_word: Word,
    datatype: usize,
    bitpix: usize,
    /// `pixdim[0..8]`.
    pixdim: usize,
    vox_offset: (usize, Word),
    scl_slope: usize,
    scl_inter: usize,
    xyzt_units: (usize, Word),
    intent_code: (usize, Word),
    qform_code: (usize, Word),
    sform_code: (usize, Word),
    /// `quatern_b, quatern_c, quatern_d`, then `qoffset_x, _y, _z`.
    quatern: usize,
    /// `srow_x`, `srow_y`, `srow_z`, four numbers each.
    srow: usize,
    magic: usize,
}

const NIFTI1: Layout = Layout {
    version: 1,
    size: 348,
    real: Word::F32,
    dim: 40,
    dim_word: Word::I16,
    datatype: 70,
    bitpix: 72,
    pixdim: 76,
    vox_offset: (108, Word::F32),
    scl_slope: 112,
    scl_inter: 116,
    xyzt_units: (123, Word::U8),
    intent_code: (68, Word::I16),
    qform_code: (252, Word::I16),
    sform_code: (254, Word::I16),
    quatern: 256,
    srow: 280,
    magic: 344,
};

const NIFTI2: Layout = Layout {
    version: 2,
    size: 540,
    real: Word::F64,
    dim: 16,
    dim_word: Word::I64,
    datatype: 12,
    bitpix: 14,
    pixdim: 104,
    vox_offset: (168, Word::I64),
    scl_slope: 176,
    scl_inter: 184,
    xyzt_units: (500, Word::I32),
    intent_code: (504, Word::I32),
    qform_code: (344, Word::I32),
    sform_code: (348, Word::I32),
    quatern: 352,
    srow: 400,
    magic: 4,
};

/// Fixed-width fields of one byte order.
struct Fields<'a> {
    b: &'a [u8],
    big: bool,
}

impl Fields<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b[at..at + N]);
        if self.big {
            a.reverse();
        }
        a
    }

    /// The number stored as `word` at `at`, widened to f64 (integers converted).
    fn real(&self, (at, word): (usize, Word)) -> f64 {
        match word {
            Word::F32 => f32::from_le_bytes(self.bytes(at)).into(),
            Word::F64 => f64::from_le_bytes(self.bytes(at)),
            _ => self.int((at, word)) as f64,
        }
    }

    /// The integer stored as `word` at `at`, widened to i64 (a float word is truncated; no table has one).
    fn int(&self, (at, word): (usize, Word)) -> i64 {
        match word {
            Word::U8 => self.b[at].into(),
            Word::I16 => i16::from_le_bytes(self.bytes(at)).into(),
            Word::I32 => i32::from_le_bytes(self.bytes(at)).into(),
            Word::I64 => i64::from_le_bytes(self.bytes(at)),
            Word::F32 | Word::F64 => self.real((at, word)) as i64,
        }
    }

    /// `N` consecutive numbers stored as `word` from `at`.
    fn reals<const N: usize>(&self, at: usize, word: Word) -> [f64; N] {
        std::array::from_fn(|i| self.real((at + i * word.width(), word)))
    }
}

/// Why `head` (the first bytes of the decompressed data) is not a header this module reads.
pub enum HeaderFault {
    /// Fewer bytes than a header: a damaged file.
    Short(usize),
    /// Not NIfTI-1 or NIfTI-2 (or a `dim[0]` out of range): for ITK to decide.
    NotNifti(String),
}

/// Parse a NIfTI-1 or NIfTI-2 header of either byte order from the start of `head`.
pub fn parse_header(head: &[u8]) -> Result<Header, HeaderFault> {
    if head.len() < NIFTI1.size {
        return Err(HeaderFault::Short(head.len()));
    }
    let size_le = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let size_be = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let layout_of = |size: i32| {
        [&NIFTI1, &NIFTI2]
            .into_iter()
            .find(|l| l.size as i32 == size)
    };
    let (layout, big) = match (layout_of(size_le), layout_of(size_be)) {
        (Some(l), _) => (l, false),
        (None, Some(l)) => (l, true),
        (None, None) => {
            return Err(HeaderFault::NotNifti(format!(
                "not a NIfTI header (sizeof_hdr is {size_le})"
            )))
        }
    };
    if head.len() < layout.size {
        return Err(HeaderFault::Short(head.len()));
    }
    let f = Fields { b: head, big };
    let l = layout;
    let int16 = |at: usize| f.int((at, Word::I16)) as i32;
    let code = |field: (usize, Word)| f.int(field) as i32;
    let real = |at: usize| f.real((at, l.real));
    let row = |r: usize| f.reals::<4>(l.srow + 4 * r * l.real.width(), l.real);
    let mut h = Header {
        version: l.version,
        big_endian: big,
        dim: std::array::from_fn(|i| f.int((l.dim + i * l.dim_word.width(), l.dim_word))),
        datatype: int16(l.datatype),
        bitpix: int16(l.bitpix),
        pixdim: f.reals::<8>(l.pixdim, l.real),
        vox_offset: f.real(l.vox_offset),
        scl_slope: real(l.scl_slope),
        scl_inter: real(l.scl_inter),
        xyzt_units: code(l.xyzt_units),
        intent_code: code(l.intent_code),
        qform_code: code(l.qform_code),
        sform_code: code(l.sform_code),
        quatern: f.reals::<3>(l.quatern, l.real),
        qoffset: f.reals::<3>(l.quatern + 3 * l.real.width(), l.real),
        srow: [row(0), row(1), row(2)],
        magic: [
            head[l.magic],
            head[l.magic + 1],
            head[l.magic + 2],
            head[l.magic + 3],
        ],
    };
    if !(1..=7).contains(&h.dim[0]) {
        return Err(HeaderFault::NotNifti(format!(
            "the NIfTI header's dim[0] is {}, not 1 to 7",
            h.dim[0]
        )));
    }
    // nifti1_io: bad sizes in the defined range become 1 (dim[1] <= 0 is refused below).
    for i in 2..=h.dim[0] as usize {
        if h.dim[i] <= 0 {
            h.dim[i] = 1;
        }
    }
    Ok(h)
}

impl Header {
    fn header_bytes(&self) -> usize {
        if self.version == 1 {
            NIFTI1.size
        } else {
            NIFTI2.size
        }
    }

    /// Where the voxels start: `vox_offset`, but at least the header's size (nifti1_io's rule).
    pub fn data_offset(&self) -> Option<usize> {
        if !self.vox_offset.is_finite() || self.vox_offset < 0.0 || self.vox_offset > 1e15 {
            return None;
        }
        Some((self.vox_offset as usize).max(self.header_bytes()))
    }

    /// Voxels in the data: the product of `dim[1..=dim[0]]`.
    pub fn voxels(&self) -> Option<usize> {
        let n = self.dim[0] as usize;
        self.dim[1..=n].iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
    }

    /// Bytes of header and voxels, `bitpix` bits a voxel, as a complete file holds (`None`: no sense).
    pub fn size_from_bitpix(&self) -> Option<usize> {
        let bits = usize::try_from(self.bitpix).ok().filter(|&b| b > 0)?;
        let bytes = self.voxels()?.checked_mul(bits)?.div_ceil(8);
        self.data_offset()?.checked_add(bytes)
    }
}

// -- ITK's reading of the header ---------------------------------------------------------------------------

/// Data types read here; ITK converts each to float32 the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Dtype {
    pub(super) fn from_code(code: i32) -> Option<Dtype> {
        Some(match code {
            2 => Dtype::U8,
            4 => Dtype::I16,
            8 => Dtype::I32,
            16 => Dtype::F32,
            64 => Dtype::F64,
            256 => Dtype::I8,
            512 => Dtype::U16,
            768 => Dtype::U32,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}
