//! Inflating `.nii.gz` data with libdeflate, whole gzip members at a time, every CRC32 and ISIZE checked.

use std::ptr::NonNull;

use super::{parse_header, Fault};
use crate::buffers::{self, AlignedBuf};
use libdeflate_sys as ld;

/// A libdeflate decompressor.
struct Inflater(NonNull<ld::libdeflate_decompressor>);

enum Inflated {
    Done { used_in: usize, used_out: usize },
    Bad,
    Full,
}

impl Inflater {
    fn new() -> Result<Self, Fault> {
        // SAFETY: plain allocation; a null result is handled.
        let p = unsafe { ld::libdeflate_alloc_decompressor() };
        NonNull::new(p)
            .map(Inflater)
            .ok_or_else(|| Fault::Io(std::io::Error::from(std::io::ErrorKind::OutOfMemory)))
    }

    /// Inflate one raw DEFLATE stream from the start of `input` into `out..out + avail`.
    ///
    /// # Safety
    /// `out` must be valid for writes of `avail` bytes.
    unsafe fn inflate(&mut self, input: &[u8], out: *mut u8, avail: usize) -> Inflated {
        let (mut used_in, mut used_out) = (0usize, 0usize);
        // SAFETY: the decompressor is live, `input` is a valid slice, `out` is writable for `avail`
        // bytes (the caller's promise), and both result pointers point at locals.
        let r = unsafe {
            ld::libdeflate_deflate_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.cast(),
                avail,
                &mut used_in,
                &mut used_out,
            )
        };
        match r {
            ld::libdeflate_result_LIBDEFLATE_SUCCESS => Inflated::Done { used_in, used_out },
            ld::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Inflated::Full,
            _ => Inflated::Bad,
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { ld::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

fn crc32(data: &[u8]) -> u32 {
    // SAFETY: `data` is a valid slice.
    unsafe { ld::libdeflate_crc32(0, data.as_ptr().cast(), data.len()) }
}

/// Where decompressed data goes: `buf[PAD..PAD + len]`, growing when needed. `PAD` puts the voxels
/// after the usual 352-byte (and NIfTI-2's 544-byte) header at a 64-byte boundary.
pub(super) struct Out {
    pub(super) buf: AlignedBuf,
    pub(super) len: usize,
}

pub(super) const PAD: usize = 32;

impl Out {
    fn new(capacity: usize) -> Self {
        Out {
            buf: buffers::take(PAD + capacity.max(1)),
            len: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.buf.bytes() - PAD
    }

    /// The data inflated so far.
    pub(super) fn data(&self) -> &[u8] {
        self.data_to(self.len)
    }

    /// The first `end` bytes (`end` within the capacity; bytes past `len` only once written).
    fn data_to(&self, end: usize) -> &[u8] {
        debug_assert!(end <= self.capacity());
        // SAFETY: within the buffer; the caller reads only bytes the inflater has written.
        unsafe { std::slice::from_raw_parts(self.buf.as_mut_ptr().add(PAD), end) }
    }

    fn grow_to(&mut self, capacity: usize) {
        if capacity <= self.capacity() {
            return;
        }
        let bigger = buffers::take(PAD + capacity);
        // SAFETY: both buffers hold at least PAD + len bytes and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.buf.as_mut_ptr().add(PAD),
                bigger.as_mut_ptr().add(PAD),
                self.len,
            );
        }
        buffers::give_back(std::mem::replace(&mut self.buf, bigger));
    }
}

/// The length of the gzip member header at the start of `d` (RFC 1952).
fn gzip_header(d: &[u8], member: usize) -> Result<usize, String> {
    let short = || {
        format!("the gzip stream ends early, inside the header of gzip member {member}: the file is truncated")
    };
    if d.len() < 10 {
        return Err(short());
    }
    if d[0] != 0x1f || d[1] != 0x8b {
        return Err(format!(
            "gzip member {member} does not start with the gzip magic"
        ));
    }
    if d[2] != 8 || d[3] & 0xe0 != 0 {
        return Err(format!(
            "gzip member {member} has compression method {} and flags {:#x}: not DEFLATE gzip",
            d[2], d[3]
        ));
    }
    let flags = d[3];
    let mut at = 10;
    if flags & 4 != 0 {
        let n = d.get(at..at + 2).ok_or_else(short)?;
        at += 2 + usize::from(u16::from_le_bytes([n[0], n[1]]));
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            let end = d.get(at..).and_then(|r| r.iter().position(|&b| b == 0));
            at += end.ok_or_else(short)? + 1;
        }
    }
    if flags & 2 != 0 {
        at += 2;
    }
    if at > d.len() {
        return Err(short());
    }
    Ok(at)
}

/// Inflate every gzip member of `data`, checking each one's CRC32 and ISIZE; the data and the number
/// of members.
pub(super) fn gunzip(data: &[u8]) -> Result<(Out, usize), Fault> {
    if data.is_empty() {
        return Err(Fault::Damaged("the file is empty".into()));
    }
    // The last ISIZE is the size of a one-member file; bounded by DEFLATE's greatest ratio (1032:1).
    let n = data.len();
    let last = if n >= 4 {
        u32::from_le_bytes([data[n - 4], data[n - 3], data[n - 2], data[n - 1]]) as usize
    } else {
        0
    };
    let mut out = Out::new(last.min(n.saturating_mul(1032)).max(4096));
    let mut inflater = Inflater::new()?;
    let (mut pos, mut member, mut sized) = (0usize, 0usize, false);
    loop {
        member += 1;
        let start = pos + gzip_header(&data[pos..], member).map_err(Fault::Damaged)?;
        let (used_in, used_out) = loop {
            let avail = out.capacity() - out.len;
            // SAFETY: the buffer holds PAD + capacity bytes, so `avail` bytes from PAD + len.
            let r = unsafe {
                inflater.inflate(
                    &data[start..],
                    out.buf.as_mut_ptr().add(PAD + out.len),
                    avail,
                )
            };
            match r {
                Inflated::Done { used_in, used_out } => break (used_in, used_out),
                Inflated::Bad => {
                    return Err(Fault::Damaged(format!(
                        "damaged or truncated compressed data in gzip member {member} (after {} \
                         decompressed bytes)",
                        out.len
                    )))
                }
                Inflated::Full => {
                    // The last ISIZE was not this stream's size (several members, or padding).
                    let more = out.capacity().max(1 << 20).max(n.saturating_mul(4));
                    out.grow_to(out.capacity().saturating_add(more));
                }
            }
        };
        let produced = &out.data_to(out.len + used_out)[out.len..];
        let trailer = start + used_in;
        let Some(t) = data.get(trailer..trailer + 8) else {
            return Err(Fault::Damaged(format!(
                "the gzip stream ends early, after {} decompressed bytes: the file is truncated",
                out.len + used_out
            )));
        };
        if crc32(produced) != u32::from_le_bytes([t[0], t[1], t[2], t[3]]) {
            return Err(Fault::Damaged(format!(
                "CRC32 mismatch in gzip member {member}: the data is damaged"
            )));
        }
        if used_out as u32 != u32::from_le_bytes([t[4], t[5], t[6], t[7]]) {
            return Err(Fault::Damaged(format!(
                "ISIZE mismatch in gzip member {member}: the data is damaged"
            )));
        }
        out.len += used_out;
        pos = trailer + 8;
        // Once the header is in, the whole size is known: one growth instead of several.
        if !sized {
            if let Ok(h) = parse_header(out.data()) {
                sized = true;
                if let Some(size) = h.size_from_bitpix() {
                    out.grow_to(size.min(n.saturating_mul(1032)));
                }
            }
        }
        let rest = &data[pos..];
        if rest.iter().all(|&b| b == 0) {
            return Ok((out, member));
        }
        if !rest.starts_with(&[0x1f, 0x8b]) {
            return Err(Fault::Damaged(format!(
                "unexpected data after gzip member {member} (not zero padding)"
            )));
        }
    }
}
