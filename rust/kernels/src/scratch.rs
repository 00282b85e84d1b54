//! Work buffers kept between kernel calls.
//!
//! A fresh multi-megabyte buffer costs more than most kernels: every first write to one of its zero pages
//! is a copy-on-write fault, and with several threads each fault shoots down TLB entries on every CPU. So
//! kernels borrow buffers from this pool and give them back when done (on drop). What is kept counts
//! against the byte limit of `recycle`, shared with the output buffers; taking and giving back never wait
//! for another thread.

use std::any::Any;
use std::ops::{Deref, DerefMut};

use crate::recycle::{self, Shelf};

/// Work buffers of any element type and any size, kept under the shared budget.
static POOL: Shelf<Box<dyn Any + Send>> = Shelf::new(&recycle::BUDGET, 0);

/// Free the oldest kept buffers until the kept bytes are within the limit (`recycle::set_limit`).
pub(crate) fn shrink() {
    POOL.shrink();
}

fn take_where<T: Copy + Send + 'static>(accept: impl Fn(&Vec<T>) -> bool) -> Vec<T> {
    POOL.take(|_, b| b.downcast_ref::<Vec<T>>().filter(|v| accept(v)).map(|_| 0))
        .and_then(|b| b.downcast::<Vec<T>>().ok())
        .map(|b| *b)
        .unwrap_or_default()
}

/// A `Vec<T>` borrowed from the pool; returned to it when dropped.
pub struct Scratch<T: Copy + Send + 'static> {
    buf: Vec<T>,
}

impl<T: Copy + Send + 'static> Scratch<T> {
    /// Whatever buffer of type `T` the pool holds (any length, possibly empty), without touching its
    /// contents: for callers that grow it only when they need to.
    pub fn take_any() -> Self {
        Scratch {
            buf: take_where::<T>(|_| true),
        }
    }

    /// A buffer of length `n`; its contents are unspecified (leftovers or `fill`).
    pub fn take(n: usize, fill: T) -> Self {
        let mut buf = take_where::<T>(|v| v.capacity() >= n);
        if buf.len() >= n {
            buf.truncate(n);
        } else {
            buf.resize(n, fill);
        }
        Scratch { buf }
    }
}

impl<T: Copy + Send + 'static> Deref for Scratch<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.buf
    }
}

impl<T: Copy + Send + 'static> DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.buf
    }
}

impl<T: Copy + Send + 'static> Drop for Scratch<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let bytes = buf.capacity().saturating_mul(std::mem::size_of::<T>());
        if bytes > 0 {
            POOL.give_back(bytes, Box::new(buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{recycle, Scratch};

    #[test]
    fn buffers_are_reused_by_type_and_size() {
        let ptr = {
            let mut a = Scratch::<f32>::take(1000, 0.0);
            a[0] = 5.0;
            a.as_ptr() as usize
        };
        let b = Scratch::<f32>::take(500, 0.0);
        assert_eq!(b.len(), 500);
        let c = Scratch::<f64>::take(10, 1.0);
        assert_eq!(c.len(), 10);
        assert!(c.iter().all(|&x| x == 1.0));
        // The f32 buffer came back (possibly another thread's test took it meanwhile).
        let _ = (ptr, b.as_ptr());
    }

    /// An element type no other test uses, so no other test takes these buffers.
    #[derive(Clone, Copy)]
    struct Probe(#[allow(dead_code)] u64);

    #[test]
    fn kept_buffers_are_counted_in_the_shared_state() {
        let ptr = {
            let a = Scratch::<Probe>::take(1000, Probe(0));
            a.as_ptr() as usize
        };
        // Kept (the default limit has room) and counted in the shared state; the same memory comes back.
        assert!(recycle::state().1 >= 1000 * std::mem::size_of::<Probe>());
        let b = Scratch::<Probe>::take(10, Probe(1));
        assert_eq!(b.as_ptr() as usize, ptr);
        assert_eq!(b.len(), 10);
    }
}
