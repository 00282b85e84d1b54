//! Big output buffers, recycled between images.
//!
//! Each new image a transform writes needs a fresh buffer, and a fresh multi-megabyte allocation comes
//! from the kernel as untouched pages: the first write to every page faults, and the kernel zeroes it.
//! For a 197x233x189 float32 image that costs more than normalising it. So when an image made here is
//! freed, its buffer is kept (up to a byte limit) and handed to the next image of a similar size, whose
//! pages are already mapped. Buffers are never shared: one is in use by one image or sitting here.

use std::alloc::{alloc, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::Mutex;

/// Buffers are aligned to a cache line (and to any AVX-512 vector).
const ALIGN: usize = 64;
/// Buffers at least this big are aligned to a 2 MiB huge page and offered to the kernel as huge-page
/// memory: faulting a fresh 35 MB buffer in 4 KiB pages costs twice as much (numpy does the same).
const HUGE_BYTES: usize = 4 << 20;
const HUGE_ALIGN: usize = 2 << 20;
/// Smaller buffers are left to the allocator, which recycles them itself.
pub const MIN_POOLED_BYTES: usize = 1 << 20;
/// Default limit on the bytes kept for reuse.
pub const DEFAULT_KEEP_BYTES: usize = 256 << 20;

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

struct Kept {
    bufs: Vec<AlignedBuf>,
    limit: usize,
}

impl Kept {
    fn held(&self) -> usize {
        self.bufs.iter().map(AlignedBuf::bytes).sum()
    }
}

static KEPT: Mutex<Kept> = Mutex::new(Kept {
    bufs: Vec::new(),
    limit: DEFAULT_KEEP_BYTES,
});

fn kept() -> std::sync::MutexGuard<'static, Kept> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pool if it is free right now. Taking and giving back never wait: a busy pool only means one fresh
/// allocation or one free. In a child forked while another thread of the parent held the lock, the lock
/// stays held forever; there the pool is simply never used, rather than hanging the child.
fn kept_now() -> Option<std::sync::MutexGuard<'static, Kept>> {
    match KEPT.try_lock() {
        Ok(k) => Some(k),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// A buffer of at least `bytes` bytes: a kept one of between `bytes` and twice that (the smallest such),
/// else a new one. Its contents are unspecified.
pub fn take(bytes: usize) -> AlignedBuf {
    if bytes >= MIN_POOLED_BYTES {
        let Some(mut k) = kept_now() else {
            return AlignedBuf::new(bytes);
        };
        let best = k
            .bufs
            .iter()
            .enumerate()
            .filter(|(_, b)| b.bytes() >= bytes && b.bytes() <= 2 * bytes)
            .min_by_key(|(_, b)| b.bytes())
            .map(|(i, _)| i);
        if let Some(i) = best {
            return k.bufs.swap_remove(i);
        }
    }
    AlignedBuf::new(bytes)
}

/// Keep `buf` for reuse if it is big enough to be worth it and fits under the limit (the oldest kept
/// buffers make room); otherwise free it. Memory is returned to the allocator after the lock is released.
pub fn give_back(buf: AlignedBuf) {
    if buf.bytes() < MIN_POOLED_BYTES {
        return;
    }
    let Some(mut k) = kept_now() else {
        return;
    };
    if buf.bytes() > k.limit {
        return;
    }
    let mut evicted = Vec::new();
    while k.held() + buf.bytes() > k.limit {
        evicted.push(k.bufs.remove(0));
    }
    k.bufs.push(buf);
    drop(k);
    drop(evicted);
}

/// Set the limit on kept bytes (0 frees everything kept and keeps nothing). Returns the old limit.
pub fn set_limit(bytes: usize) -> usize {
    let mut k = kept();
    let old = std::mem::replace(&mut k.limit, bytes);
    while k.held() > bytes {
        k.bufs.remove(0);
    }
    old
}

/// `(limit, bytes held now, buffers held now)`.
pub fn state() -> (usize, usize, usize) {
    let k = kept();
    (k.limit, k.held(), k.bufs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the pool is process-wide, and tests run in parallel.
    #[test]
    fn buffers_are_reused_by_size_and_bounded() {
        set_limit(8 << 20);
        let a = take(3 << 20);
        assert_eq!(a.as_mut_ptr() as usize % ALIGN, 0);
        let huge = AlignedBuf::new(HUGE_BYTES);
        assert_eq!(huge.as_mut_ptr() as usize % HUGE_ALIGN, 0);
        drop(huge);
        let addr = a.as_mut_ptr();
        give_back(a);
        assert_eq!(state().2, 1);
        // Similar size: the same memory comes back. Far bigger or smaller: not.
        let b = take(3 << 20);
        assert_eq!(b.as_mut_ptr(), addr);
        give_back(b);
        let big = take(7 << 20);
        assert_ne!(big.as_mut_ptr(), addr);
        let small = take(1 << 20);
        assert_ne!(small.as_mut_ptr(), addr);
        assert_eq!(state().2, 1);
        // Over the limit, the oldest kept buffer goes first.
        give_back(big);
        assert_eq!(state().1, 7 << 20);
        give_back(small);
        assert_eq!(state(), (8 << 20, 8 << 20, 2));
        // Tiny buffers are not kept; a limit of 0 frees everything.
        give_back(take(100));
        assert_eq!(state().2, 2);
        assert_eq!(set_limit(0), 8 << 20);
        assert_eq!(state(), (0, 0, 0));
        // A busy pool is never waited for: taking allocates, giving back frees.
        set_limit(8 << 20);
        give_back(take(2 << 20));
        let held = KEPT.lock().unwrap();
        let t = std::thread::spawn(|| {
            let b = take(2 << 20);
            let n = b.bytes();
            give_back(b);
            n
        });
        assert_eq!(t.join().unwrap(), 2 << 20);
        assert_eq!(held.bufs.len(), 1);
        drop(held);
        set_limit(DEFAULT_KEEP_BYTES);
    }
}
