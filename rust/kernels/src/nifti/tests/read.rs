use super::*;

// -- voxels --------------------------------------------------------------------------------------------

#[test]
fn voxels_convert_as_itk_does() {
    let mut dst = [0f32; 3];
    convert(
        &[0x80, 0x00, 0x7f, 0xff, 0x00, 0x05],
        Dtype::I16,
        true,
        None,
        &mut dst,
    );
    assert_eq!(dst, [-32768.0, 32767.0, 5.0]);
    let f64s: Vec<u8> = [f64::NAN, f64::INFINITY, 0.1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    convert(&f64s, Dtype::F64, false, None, &mut dst);
    assert_eq!(dst, [0.0, 0.0, 0.1f64 as f32]);
    convert(
        &[0, 255, 3],
        Dtype::U8,
        false,
        Some((1.0 / 255.0, 0.5)),
        &mut dst,
    );
    let want = |v: u8| ((v as f32) as f64 * (1.0 / 255.0) + 0.5) as f32;
    assert_eq!(dst, [want(0), want(255), want(3)]);
    let mut one = [0f32];
    convert(
        &16_777_217i32.to_le_bytes(),
        Dtype::I32,
        false,
        None,
        &mut one,
    );
    assert_eq!(one, [16_777_216.0]); // rounded to nearest, as static_cast<float>
    let mut data = [f32::NEG_INFINITY, 2.0, f32::NAN];
    fix_f32_in_place(&mut data, false, Some((2.0, 1.0)));
    assert_eq!(data, [1.0, 5.0, 1.0]);
}

// -- files ---------------------------------------------------------------------------------------------

#[test]
fn raw_and_gzip_files_read_identically_in_both_byte_orders() {
    for big in [false, true] {
        let (bytes, values) = volume(big);
        let raw = read_ok(&temp("v.nii", &bytes));
        assert_eq!(voxels(&raw), values);
        assert_eq!((raw.offset, raw.members), (0, 0));
        let gz = read_ok(&temp("v.nii.gz", &gzip(&bytes, 6)));
        assert_eq!(voxels(&gz), values);
        assert_eq!(gz.offset, PAD + 352);
        assert_eq!(gz.offset % 64, 0); // the voxels used where they were inflated
        assert_eq!(gz.members, 1);
        assert_eq!(gz.plan, raw.plan);
    }
}

#[test]
fn integer_data_is_converted_into_a_new_buffer() {
    let mut h = H1::new(&[10, 10], 4, 16, false);
    h.f32(112, 2.0);
    let mut bytes = h.b.clone();
    for i in 0..100i16 {
        bytes.extend_from_slice(&(i - 50).to_le_bytes());
    }
    let img = read_ok(&temp("i.nii.gz", &gzip(&bytes, 1)));
    assert_eq!(img.offset, 0);
    let want: Vec<f32> = (0..100).map(|i| ((i - 50) * 2) as f32).collect();
    assert_eq!(voxels(&img), want);
}

#[test]
fn several_gzip_members_and_zero_padding_are_read() {
    let (bytes, values) = volume(false);
    let mut data = gzip(&bytes[..100], 6);
    data.extend(gzip(&bytes[100..400], 0));
    data.extend(gzip(&bytes[400..], 9));
    data.extend([0u8; 16]);
    let img = read_ok(&temp("m.nii.gz", &data));
    assert_eq!(voxels(&img), values);
    assert_eq!(img.members, 3);
    data.extend(b"junk");
    let msg = read_err(&temp("m.nii.gz", &data));
    assert!(msg.contains("unexpected data after gzip member 3"), "{msg}");
}

#[test]
fn truncated_gzip_streams_are_errors_at_every_cut() {
    let (bytes, _) = volume(false);
    let data = gzip(&bytes, 6);
    for cut in [
        1,
        5,
        12,
        data.len() / 2,
        data.len() - 9,
        data.len() - 8,
        data.len() - 1,
    ] {
        let msg = read_err(&temp("t.nii.gz", &data[..cut]));
        assert!(
            msg.contains("truncated") || msg.contains("does not start with"),
            "cut {cut}: {msg}"
        );
    }
    let mut two = gzip(&bytes[..500], 6);
    let second = gzip(&bytes[500..], 1);
    two.extend(&second[..second.len() - 30]);
    let msg = read_err(&temp("t2.nii.gz", &two));
    assert!(msg.contains("gzip member 2"), "{msg}");
}

#[test]
fn checksum_and_length_mismatches_are_errors() {
    let (bytes, _) = volume(false);
    let mut stored = gzip(&bytes, 0);
    let mid = stored.len() / 2;
    stored[mid] ^= 0xff; // a stored block: still valid DEFLATE, the CRC no longer matches
    let msg = read_err(&temp("c.nii.gz", &stored));
    assert!(msg.contains("CRC32 mismatch in gzip member 1"), "{msg}");
    let mut sized = gzip(&bytes, 6);
    let n = sized.len();
    sized[n - 4] ^= 1;
    let msg = read_err(&temp("s.nii.gz", &sized));
    assert!(msg.contains("ISIZE mismatch in gzip member 1"), "{msg}");
    let mut bad = gzip(&bytes, 6);
    for b in &mut bad[20..40] {
        *b ^= 0x5a;
    }
    let msg = read_err(&temp("d.nii.gz", &bad));
    assert!(msg.contains("gzip member 1"), "{msg}");
}

#[test]
fn short_and_empty_files_are_errors_naming_them() {
    let (bytes, _) = volume(false);
    let msg = read_err(&temp("short.nii", &bytes[..bytes.len() - 10]));
    assert!(
        msg.contains("the file has 822 bytes but its NIfTI header needs 832 (352 of header and 480 of voxels): the file is truncated"),
        "{msg}"
    );
    let msg = read_err(&temp("short.nii.gz", &gzip(&bytes[..bytes.len() - 10], 6)));
    assert!(msg.contains("the decompressed data has 822 bytes"), "{msg}");
    let msg = read_err(&temp("head.nii", &bytes[..200]));
    assert!(
        msg.contains("ends inside the NIfTI header (200 bytes)"),
        "{msg}"
    );
    let msg = read_err(&temp("empty.nii.gz", b""));
    assert!(msg.ends_with("the file is empty"), "{msg}");
    assert!(matches!(
        read(Path::new("/nonexistent/x.nii"), false),
        Err(KernelError::NiftiIo { .. })
    ));
}

#[test]
fn files_left_to_itk_are_reported_without_error() {
    let (bytes, _) = volume(false);
    let gz_named_nii = temp("g.nii", &gzip(&bytes, 6));
    assert!(
        matches!(read(&gz_named_nii, false), Ok(Outcome::Unsupported(m)) if m.contains("not named .gz"))
    );
    let raw_named_gz = read_ok(&temp("r.nii.gz", &bytes)); // ITK reads it uncompressed too
    assert_eq!(raw_named_gz.members, 0);
    let mut four = H1::new(&[4, 5, 3, 2], 16, 32, false).b;
    four.extend(vec![0u8; 4 * 5 * 3 * 2 * 4]);
    assert!(
        matches!(read(&temp("4d.nii", &four), false), Ok(Outcome::Unsupported(m)) if m.contains("4-D"))
    );
}
