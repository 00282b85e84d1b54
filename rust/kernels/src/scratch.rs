//! Work buffers kept between kernel calls.
//!
//! A fresh multi-megabyte buffer costs more than most kernels: every first write to one of its zero pages
//! is a copy-on-write fault, and with several threads each fault shoots down TLB entries on every CPU. So
//! kernels borrow buffers from this pool and give them back when done (on drop).

use std::any::Any;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

static POOL: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());
const KEEP: usize = 48;

/// A `Vec<T>` borrowed from the pool; returned to it when dropped.
pub struct Scratch<T: Copy + Send + 'static> {
    buf: Vec<T>,
}

impl<T: Copy + Send + 'static> Scratch<T> {
    /// Whatever buffer of type `T` the pool holds (any length, possibly empty), without touching its
    /// contents: for callers that grow it only when they need to.
    pub fn take_any() -> Self {
        let buf = POOL
            .lock()
            .ok()
            .and_then(|mut pool| {
                let i = pool.iter().position(|b| b.is::<Vec<T>>())?;
                pool.swap_remove(i).downcast::<Vec<T>>().ok().map(|b| *b)
            })
            .unwrap_or_default();
        Scratch { buf }
    }

    /// A buffer of length `n`; its contents are unspecified (leftovers or `fill`).
    pub fn take(n: usize, fill: T) -> Self {
        let mut buf = POOL
            .lock()
            .ok()
            .and_then(|mut pool| {
                let i = pool.iter().position(|b| {
                    b.downcast_ref::<Vec<T>>()
                        .is_some_and(|v| v.capacity() >= n)
                })?;
                pool.swap_remove(i).downcast::<Vec<T>>().ok().map(|b| *b)
            })
            .unwrap_or_default();
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
        if buf.capacity() == 0 {
            return;
        }
        if let Ok(mut pool) = POOL.lock() {
            if pool.len() < KEEP {
                pool.push(Box::new(buf));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scratch;

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
}
