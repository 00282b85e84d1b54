use super::*;
use libdeflate_sys as ld;
use std::sync::atomic::{AtomicUsize, Ordering};

mod read;

/// A NIfTI-1 header of `shape`, `datatype`, `bitpix`, written in the given byte order.
struct H1 {
    b: Vec<u8>,
    big: bool,
}

impl H1 {
    fn new(shape: &[i16], datatype: i16, bitpix: i16, big: bool) -> Self {
        let mut h = H1 {
            b: vec![0u8; 352],
            big,
        };
        h.i32(0, 348);
        h.i16(40, shape.len() as i16);
        for (i, &d) in shape.iter().enumerate() {
            h.i16(42 + 2 * i, d);
        }
        for i in shape.len()..7 {
            h.i16(42 + 2 * i, 1);
        }
        h.i16(70, datatype);
        h.i16(72, bitpix);
        for i in 0..8 {
            h.f32(76 + 4 * i, 1.0);
        }
        h.f32(108, 352.0);
        h.b[123] = 2; // mm
        h.b[344..348].copy_from_slice(b"n+1\0");
        h
    }
    fn put(&mut self, at: usize, mut v: Vec<u8>) {
        if self.big {
            v.reverse();
        }
        self.b[at..at + v.len()].copy_from_slice(&v);
    }
    fn i16(&mut self, at: usize, v: i16) {
        self.put(at, v.to_le_bytes().to_vec());
    }
    fn i32(&mut self, at: usize, v: i32) {
        self.put(at, v.to_le_bytes().to_vec());
    }
    fn f32(&mut self, at: usize, v: f32) {
        self.put(at, v.to_le_bytes().to_vec());
    }
    fn qform(&mut self, code: i16, quatern: [f32; 3], offset: [f32; 3]) {
        self.i16(252, code);
        for i in 0..3 {
            self.f32(256 + 4 * i, quatern[i]);
            self.f32(268 + 4 * i, offset[i]);
        }
    }
    fn sform(&mut self, code: i16, rows: [[f32; 4]; 3]) {
        self.i16(254, code);
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                self.f32(280 + 16 * r + 4 * c, *v);
            }
        }
    }
    fn header(&self) -> Header {
        match parse_header(&self.b) {
            Ok(h) => h,
            Err(_) => panic!("header did not parse"),
        }
    }
    fn plan(&self) -> Result<Plan, String> {
        plan(&self.header(), false)
    }
}

fn gzip(data: &[u8], level: i32) -> Vec<u8> {
    // SAFETY: test-only use of libdeflate's compressor, freed below; buffers sized by its bound.
    unsafe {
        let c = ld::libdeflate_alloc_compressor(level);
        assert!(!c.is_null());
        let bound = ld::libdeflate_gzip_compress_bound(c, data.len());
        let mut out = vec![0u8; bound];
        let n = ld::libdeflate_gzip_compress(
            c,
            data.as_ptr().cast(),
            data.len(),
            out.as_mut_ptr().cast(),
            bound,
        );
        ld::libdeflate_free_compressor(c);
        assert!(n > 0);
        out.truncate(n);
        out
    }
}

/// A file holding `bytes` in a new folder, both removed when dropped.
struct Temp(std::path::PathBuf);

impl std::ops::Deref for Temp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn temp(name: &str, bytes: &[u8]) -> Temp {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nitrain-nifti-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    Temp(path)
}

/// A float32 4x5x6 volume, value = index, as a complete file's bytes.
fn volume(big: bool) -> (Vec<u8>, Vec<f32>) {
    let h = H1::new(&[4, 5, 6], 16, 32, big);
    let values: Vec<f32> = (0..120).map(|i| i as f32 * 0.5 - 7.0).collect();
    let mut bytes = h.b.clone();
    for v in &values {
        let b = if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        bytes.extend_from_slice(&b);
    }
    (bytes, values)
}

fn voxels(img: &Image) -> Vec<f32> {
    // SAFETY: the image holds `voxels` floats at `offset`.
    unsafe {
        std::slice::from_raw_parts(
            img.buf.as_mut_ptr().add(img.offset).cast::<f32>(),
            img.plan.voxels,
        )
    }
    .to_vec()
}

fn read_ok(path: &Path) -> Box<Image> {
    match read(path, false) {
        Ok(Outcome::Image(img)) => img,
        Ok(Outcome::Unsupported(why)) => panic!("unsupported: {why}"),
        Err(e) => panic!("error: {e}"),
    }
}

fn read_err(path: &Path) -> String {
    match read(path, false) {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
            msg
        }
        Ok(_) => panic!("read a damaged file without error"),
    }
}

// -- headers and ITK's geometry ------------------------------------------------------------------------

#[test]
fn headers_parse_in_both_byte_orders() {
    for big in [false, true] {
        let mut h = H1::new(&[7, 8, 9], 4, 16, big);
        h.f32(80, 2.5);
        h.f32(112, 2.0);
        h.f32(116, -3.0);
        let p = h.header();
        assert_eq!(p.version, 1);
        assert_eq!(p.big_endian, big);
        assert_eq!(&p.dim[..4], &[3, 7, 8, 9]);
        assert_eq!((p.datatype, p.bitpix, p.vox_offset), (4, 16, 352.0));
        assert_eq!((p.pixdim[1], p.scl_slope, p.scl_inter), (2.5, 2.0, -3.0));
        assert_eq!(p.data_offset(), Some(352));
        assert_eq!(p.size_from_bitpix(), Some(352 + 7 * 8 * 9 * 2));
    }
}

#[test]
fn nifti2_headers_parse() {
    let mut b = vec![0u8; 544];
    b[..4].copy_from_slice(&540i32.to_le_bytes());
    b[4..12].copy_from_slice(b"n+2\0\r\n\x1a\n");
    b[12..14].copy_from_slice(&16i16.to_le_bytes());
    b[14..16].copy_from_slice(&32i16.to_le_bytes());
    for (i, d) in [2i64, 7, 9, 1, 1, 1, 1, 1].iter().enumerate() {
        b[16 + 8 * i..24 + 8 * i].copy_from_slice(&d.to_le_bytes());
    }
    for i in 0..8 {
        b[104 + 8 * i..112 + 8 * i].copy_from_slice(&0.5f64.to_le_bytes());
    }
    b[168..176].copy_from_slice(&544i64.to_le_bytes());
    b[348..352].copy_from_slice(&1i32.to_le_bytes()); // sform: scanner
    let rows = [
        [-0.5, 0.0, 0.0, 3.0],
        [0.0, 0.5, 0.0, -4.0],
        [0.0, 0.0, 0.5, 5.0],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let at = 400 + 32 * r + 8 * c;
            b[at..at + 8].copy_from_slice(&f64::to_le_bytes(*v));
        }
    }
    let h = parse_header(&b).ok().unwrap();
    assert_eq!((h.version, h.datatype, h.dim[1], h.dim[2]), (2, 16, 7, 9));
    assert_eq!(h.data_offset(), Some(544));
    let p = plan(&h, false).unwrap();
    assert_eq!(p.shape, vec![7, 9]);
    assert_eq!(p.spacing, vec![0.5, 0.5]);
    assert_eq!(p.origin, vec![-3.0, 4.0]);
    assert_eq!(p.direction, vec![1.0, 0.0, 0.0, -1.0]);
}

/// Writes little- or big-endian numbers at the offsets the NIfTI-1 and NIfTI-2 standards give (literal
/// here, independent of the reader's table).
fn put(b: &mut [u8], at: usize, mut v: Vec<u8>, big: bool) {
    if big {
        v.reverse();
    }
    b[at..at + v.len()].copy_from_slice(&v);
}

#[test]
fn every_field_is_read_from_its_offset_in_both_versions() {
    for big in [false, true] {
        // NIfTI-1: 16-bit integers, 32-bit floats.
        let mut b = vec![0u8; 352];
        let i16_at = |b: &mut Vec<u8>, at: usize, v: i16| put(b, at, v.to_le_bytes().to_vec(), big);
        let f32_at = |b: &mut Vec<u8>, at: usize, v: f32| put(b, at, v.to_le_bytes().to_vec(), big);
        put(&mut b, 0, 348i32.to_le_bytes().to_vec(), big);
        for (i, d) in [3i16, 4, 5, 6, 1, 1, 1, 1].iter().enumerate() {
            i16_at(&mut b, 40 + 2 * i, *d);
            f32_at(&mut b, 76 + 4 * i, 0.25 * (i + 1) as f32);
        }
        i16_at(&mut b, 68, 1002);
        i16_at(&mut b, 70, 512);
        i16_at(&mut b, 72, 16);
        f32_at(&mut b, 108, 400.0);
        f32_at(&mut b, 112, 2.5);
        f32_at(&mut b, 116, -1.5);
        b[123] = 10;
        i16_at(&mut b, 252, 2);
        i16_at(&mut b, 254, 3);
        for i in 0..3 {
            f32_at(&mut b, 256 + 4 * i, 0.125 * (i + 1) as f32);
            f32_at(&mut b, 268 + 4 * i, 10.0 + i as f32);
            for c in 0..4 {
                f32_at(&mut b, 280 + 16 * i + 4 * c, (10 * i + c) as f32);
            }
        }
        b[344..348].copy_from_slice(b"n+1\0");
        // NIfTI-2: 64-bit dims, offsets and floats, 32-bit codes.
        let mut b2 = vec![0u8; 544];
        let i16_2 = |b: &mut Vec<u8>, at: usize, v: i16| put(b, at, v.to_le_bytes().to_vec(), big);
        let i32_2 = |b: &mut Vec<u8>, at: usize, v: i32| put(b, at, v.to_le_bytes().to_vec(), big);
        let i64_2 = |b: &mut Vec<u8>, at: usize, v: i64| put(b, at, v.to_le_bytes().to_vec(), big);
        let f64_2 = |b: &mut Vec<u8>, at: usize, v: f64| put(b, at, v.to_le_bytes().to_vec(), big);
        i32_2(&mut b2, 0, 540);
        b2[4..8].copy_from_slice(b"n+2\0");
        i16_2(&mut b2, 12, 512);
        i16_2(&mut b2, 14, 16);
        for (i, d) in [3i64, 4, 5, 6, 1, 1, 1, 1].iter().enumerate() {
            i64_2(&mut b2, 16 + 8 * i, *d);
            f64_2(&mut b2, 104 + 8 * i, 0.25 * (i + 1) as f64);
        }
        i64_2(&mut b2, 168, 400);
        f64_2(&mut b2, 176, 2.5);
        f64_2(&mut b2, 184, -1.5);
        i32_2(&mut b2, 344, 2);
        i32_2(&mut b2, 348, 3);
        for i in 0..3 {
            f64_2(&mut b2, 352 + 8 * i, 0.125 * (i + 1) as f64);
            f64_2(&mut b2, 376 + 8 * i, 10.0 + i as f64);
            for c in 0..4 {
                f64_2(&mut b2, 400 + 32 * i + 8 * c, (10 * i + c) as f64);
            }
        }
        i32_2(&mut b2, 500, 10);
        i32_2(&mut b2, 504, 1002);
        let (h1, h2) = match (parse_header(&b), parse_header(&b2)) {
            (Ok(h1), Ok(h2)) => (h1, h2),
            _ => panic!("a header did not parse"),
        };
        assert_eq!((h1.version, h2.version), (1, 2));
        assert_eq!(h1.magic, *b"n+1\0");
        assert_eq!(h2.magic, *b"n+2\0");
        // Every other field is the same number in both versions.
        let mut h1_as_2 = h1.clone();
        h1_as_2.version = 2;
        h1_as_2.magic = h2.magic;
        assert_eq!(h1_as_2, h2, "big-endian: {big}");
        assert_eq!(h2.big_endian, big);
        assert_eq!(h2.dim, [3, 4, 5, 6, 1, 1, 1, 1]);
        assert_eq!((h2.datatype, h2.bitpix, h2.intent_code), (512, 16, 1002));
        assert_eq!(
            (h2.vox_offset, h2.scl_slope, h2.scl_inter),
            (400.0, 2.5, -1.5)
        );
        assert_eq!((h2.xyzt_units, h2.qform_code, h2.sform_code), (10, 2, 3));
        assert_eq!(h2.pixdim[7], 2.0);
        assert_eq!(h2.quatern, [0.125, 0.25, 0.375]);
        assert_eq!(h2.qoffset, [10.0, 11.0, 12.0]);
        assert_eq!(h2.srow[2], [20.0, 21.0, 22.0, 23.0]);
    }
}

#[test]
fn non_nifti_and_short_headers_are_told_apart() {
    assert!(matches!(
        parse_header(&[0u8; 100]),
        Err(HeaderFault::Short(100))
    ));
    assert!(matches!(
        parse_header(&[0u8; 400]),
        Err(HeaderFault::NotNifti(_))
    ));
    let mut h = H1::new(&[3, 3], 16, 32, false);
    h.i16(40, 9);
    assert!(
        matches!(parse_header(&h.b), Err(HeaderFault::NotNifti(m)) if m.contains("dim[0] is 9"))
    );
    let mut analyze = H1::new(&[3, 3, 3], 16, 32, false);
    analyze.b[344..348].copy_from_slice(&[0; 4]);
    assert!(analyze.plan().unwrap_err().contains("magic"));
}

#[test]
fn no_transform_gives_identity_and_negative_spacing_flips() {
    let mut h = H1::new(&[3, 4, 5], 16, 32, false);
    h.f32(80, -2.0);
    h.f32(84, 0.0); // bad spacings become 1
    h.f32(88, 3.0);
    h.b[123] = 1; // metres
    let p = h.plan().unwrap();
    assert_eq!(p.transform, Transform::None);
    assert_eq!(p.spacing, vec![2000.0, 1000.0, 3000.0]);
    assert_eq!(p.origin, vec![0.0; 3]);
    assert_eq!(
        p.direction,
        vec![-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
}

#[test]
fn a_qform_is_converted_to_lps() {
    // 90 degrees about z: quaternion (cos 45, 0, 0, sin 45); x -> +y, y -> -x (RAS).
    let s = std::f32::consts::FRAC_1_SQRT_2;
    let mut h = H1::new(&[3, 4, 5], 16, 32, false);
    h.f32(80, 2.0);
    h.qform(1, [0.0, 0.0, s], [10.0, -20.0, 30.0]);
    let p = h.plan().unwrap();
    assert_eq!(p.transform, Transform::Qform);
    assert_eq!(p.origin, vec![-10.0, 20.0, 30.0]);
    let want = [0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    for (a, b) in p.direction.iter().zip(want) {
        assert!((a - b).abs() < 1e-7, "{:?}", p.direction);
    }
    // qfac -1 (pixdim[0] < 0) flips z.
    h.f32(76, -1.0);
    assert!((h.plan().unwrap().direction[8] + 1.0).abs() < 1e-7);
}

#[test]
fn itk_rules_choose_between_sform_and_qform() {
    let diag = |o: f32| {
        [
            [2.0, 0.0, 0.0, o],
            [0.0, 1.0, 0.0, 2.0],
            [0.0, 0.0, 1.0, 3.0],
        ]
    };
    let base = || {
        let mut h = H1::new(&[3, 4, 5], 16, 32, false);
        h.f32(80, 2.0);
        h
    };
    // sform only, decomposable: sform.
    let mut h = base();
    h.sform(2, diag(5.0));
    let p = h.plan().unwrap();
    assert_eq!(
        (p.transform, p.origin.clone()),
        (Transform::Sform, vec![-5.0, -2.0, 3.0])
    );
    // sform only, skewed: ITK refuses.
    let mut h = base();
    h.sform(
        2,
        [
            [2.0, 0.5, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
        ],
    );
    assert!(h.plan().unwrap_err().contains("ITK refuses"));
    // ... unless there is a qform.
    h.qform(1, [0.0; 3], [7.0, 8.0, 9.0]);
    assert_eq!(h.plan().unwrap().transform, Transform::Qform);
    // both, sform scanner-anatomical: sform.
    let mut h = base();
    h.qform(2, [0.0; 3], [1.0, 2.0, 3.0]);
    h.sform(1, diag(9.0));
    assert_eq!(h.plan().unwrap().origin, vec![-9.0, -2.0, 3.0]);
    // both aligned, offsets 8 mm apart: qform.
    h.sform(2, diag(9.0));
    assert_eq!(h.plan().unwrap().transform, Transform::Qform);
    // both aligned and the same: either gives the same geometry.
    h.sform(2, diag(1.0));
    assert_eq!(h.plan().unwrap().origin, vec![-1.0, -2.0, 3.0]);
    // both aligned, same offsets, rotations 1 degree apart: ITK's SVD decides; left to ITK.
    let (c, s) = (1f32.to_radians().cos(), 1f32.to_radians().sin());
    h.sform(
        2,
        [
            [2.0 * c, -s, 0.0, 1.0],
            [2.0 * s, c, 0.0, 2.0],
            [0.0, 0.0, 1.0, 3.0],
        ],
    );
    assert!(h.plan().unwrap_err().contains("not predictable"));
}

#[test]
fn dimensions_types_and_intents_outside_the_reader_are_refused() {
    let ok = H1::new(&[3, 4, 5, 1], 4, 16, false).plan().unwrap();
    assert_eq!(ok.shape, vec![3, 4, 5]); // a trailing length-1 fourth axis is dropped
    let flat = H1::new(&[3, 4, 1], 4, 16, false).plan().unwrap();
    assert_eq!(flat.shape, vec![3, 4, 1]); // but not the third
    assert!(H1::new(&[3, 4, 5, 2], 4, 16, false)
        .plan()
        .unwrap_err()
        .contains("4-D"));
    assert!(H1::new(&[3], 4, 16, false)
        .plan()
        .unwrap_err()
        .contains("1-D"));
    assert!(H1::new(&[3, 4], 32, 64, false)
        .plan()
        .unwrap_err()
        .contains("datatype 32"));
    assert!(H1::new(&[3, 4], 4, 8, false)
        .plan()
        .unwrap_err()
        .contains("bitpix"));
    let mut v = H1::new(&[3, 4], 16, 32, false);
    v.i16(68, 1007);
    assert!(v.plan().unwrap_err().contains("intent 1007"));
    let mut two = H1::new(&[3, 4], 16, 32, false);
    two.b[344..348].copy_from_slice(b"ni1\0");
    assert!(two.plan().unwrap_err().contains("magic"));
}

#[test]
fn scaling_follows_itk() {
    let mut h = H1::new(&[3, 4], 2, 8, false);
    assert_eq!(h.plan().unwrap().scale, None); // slope 0: none
    h.f32(112, 1.0);
    assert_eq!(h.plan().unwrap().scale, None);
    h.f32(116, 0.5);
    assert_eq!(h.plan().unwrap().scale, Some((1.0, 0.5)));
    h.f32(112, f32::NAN);
    assert_eq!(h.plan().unwrap().scale, Some((1.0, 0.5))); // not finite: 0, then 1
}
