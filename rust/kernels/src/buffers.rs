//! Big output buffers, recycled between images.
//!
//! Each new image a transform writes needs a fresh buffer, and a fresh multi-megabyte allocation comes
//! from the kernel as untouched pages: the first write to every page faults, and the kernel zeroes it.
//! For a 197x233x189 float32 image that costs more than normalising it. So when an image made here is
//! freed, its buffer is kept (under the byte limit of `recycle`, shared with the work buffers) and handed to the next image of a similar size, whose
//! pages are already mapped. Buffers are never shared: one is in use by one image or sitting here.

use std::alloc::{alloc, dealloc, Layout};
use std::ptr::NonNull;

use crate::recycle::{self, Shelf};

/// Buffers are aligned to a cache line (and to any AVX-512 vector).
const ALIGN: usize = 64;
/// Buffers at least this big are aligned to a 2 MiB huge page and offered to the kernel as huge-page
/// memory: faulting a fresh 35 MB buffer in 4 KiB pages costs twice as much (numpy does the same).
const HUGE_BYTES: usize = 4 << 20;
const HUGE_ALIGN: usize = 2 << 20;
/// Smaller buffers are left to the allocator, which recycles them itself.
pub const MIN_POOLED_BYTES: usize = 1 << 20;
/// Default limit on the bytes kept for reuse (by these and the work buffers together).
pub use crate::recycle::DEFAULT_KEEP_BYTES;

/// An uninitialised, 64-byte aligned heap buffer of `bytes` bytes (at least one).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    bytes: usize,
}

// SAFETY: the buffer is plain memory owned by this value alone.
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    fn layout(bytes: usize) -> Layout {
        let align = if bytes >= HUGE_BYTES {
            HUGE_ALIGN
        } else {
            ALIGN
        };
        Layout::from_size_align(bytes.max(1), align).expect("buffer size overflows")
    }

    /// A new buffer straight from the allocator.
    pub fn new(bytes: usize) -> Self {
        let layout = Self::layout(bytes);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if layout.size() >= HUGE_BYTES {
            // A hint only: where transparent huge pages are off, it fails or does nothing, both fine.
            // SAFETY: the range is this buffer's own, freshly allocated memory.
            unsafe {
                libc::madvise(ptr.as_ptr().cast(), layout.size(), libc::MADV_HUGEPAGE);
            }
        }
        AlignedBuf {
            ptr,
            bytes: layout.size(),
        }
    }

    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.bytes)) }
    }
}

/// Output buffers kept for reuse, under the budget they share with the work buffers (`recycle`).
static KEPT: Shelf<AlignedBuf> = Shelf::new(&recycle::BUDGET, MIN_POOLED_BYTES);

/// A buffer of at least `bytes` bytes: a kept one of between `bytes` and twice that (the smallest such),
/// else a new one. Its contents are unspecified. Never waits for another thread.
pub fn take(bytes: usize) -> AlignedBuf {
    if bytes >= MIN_POOLED_BYTES {
        let fits =
            |have: usize, _: &AlignedBuf| (have >= bytes && have <= 2 * bytes).then_some(have);
        if let Some(buf) = KEPT.take(fits) {
            return buf;
        }
    }
    AlignedBuf::new(bytes)
}

/// Keep `buf` for reuse if it is big enough to be worth it and fits under the limit (the oldest kept
/// output buffers make room); otherwise free it. Never waits for another thread.
pub fn give_back(buf: AlignedBuf) {
    KEPT.give_back(buf.bytes(), buf);
}

/// Free the oldest kept buffers until the kept bytes are within the limit (`recycle::set_limit`).
pub(crate) fn shrink() {
    KEPT.shrink();
}

#[cfg(test)]
mod tests {
    use super::*;

    // The policy itself (limit, eviction, never waiting) is tested on private shelves in `recycle`; the
    // process-wide shelf is shared with every test running in parallel, so only what holds regardless.
    #[test]
    fn buffers_are_aligned_and_reused_by_size() {
        let a = take(3 << 20);
        assert!(a.bytes() >= 3 << 20);
        assert_eq!(a.as_mut_ptr() as usize % ALIGN, 0);
        let huge = AlignedBuf::new(HUGE_BYTES);
        assert_eq!(huge.as_mut_ptr() as usize % HUGE_ALIGN, 0);
        drop(huge);
        let addr = a.as_mut_ptr();
        give_back(a);
        // Far bigger or smaller than the kept buffer: not it.
        let big = take(7 << 20);
        assert_ne!(big.as_mut_ptr(), addr);
        let small = take(1 << 20);
        assert_ne!(small.as_mut_ptr(), addr);
        give_back(small);
        give_back(big);
        give_back(take(100)); // tiny buffers go back to the allocator
    }
}
