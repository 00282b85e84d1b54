//! The one recycling policy for memory kept between kernel calls: the big output buffers (`buffers`) and
//! the kernels' work buffers (`scratch`).
//!
//! - One limit: the bytes kept by every shelf together never pass `limit` (256 MiB unless
//!   `NITRAIN_BUFFER_POOL_MB` or `set_limit` says otherwise; 0 keeps nothing).
//! - A buffer given back that does not fit is freed: room is made by freeing the oldest buffers of its own
//!   shelf, and a buffer bigger than the whole limit is never kept.
//! - Never waiting: taking and giving back only `try_lock` a shelf. A shelf busy in another thread means
//!   one fresh allocation (take) or one free (give back), never a stall; in a child forked while a thread
//!   of the parent held a lock, that shelf is simply never used rather than hanging the child.
//!
//! Each shelf also has a minimum size: output buffers under 1 MiB are left to the allocator, which
//! recycles those itself; work buffers of any size are kept.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Default limit on the bytes kept for reuse, by all shelves together.
pub const DEFAULT_KEEP_BYTES: usize = 256 << 20;

/// A byte limit shared by several shelves, and what they keep under it.
pub struct Budget {
    limit: AtomicUsize,
    held: AtomicUsize,
    items: AtomicUsize,
}

impl Budget {
    pub const fn new(limit: usize) -> Self {
        Budget {
            limit: AtomicUsize::new(limit),
            held: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
        }
    }

    /// Count `bytes` as kept if they fit under the limit.
    fn reserve(&self, bytes: usize) -> bool {
        let limit = self.limit.load(Ordering::SeqCst);
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(bytes).filter(|&h| h <= limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::SeqCst);
        self.items.fetch_sub(1, Ordering::SeqCst);
    }

    fn over(&self) -> bool {
        self.held.load(Ordering::SeqCst) > self.limit.load(Ordering::SeqCst)
    }

    /// `(limit, bytes kept, buffers kept)`.
    pub fn state(&self) -> (usize, usize, usize) {
        (
            self.limit.load(Ordering::SeqCst),
            self.held.load(Ordering::SeqCst),
            self.items.load(Ordering::SeqCst),
        )
    }
}

/// Buffers of one kind kept for reuse, oldest first, counted against a `Budget`.
pub struct Shelf<E> {
    budget: &'static Budget,
    /// Smaller buffers are not kept.
    min_bytes: usize,
    kept: Mutex<Vec<(usize, E)>>,
}

impl<E> Shelf<E> {
    pub const fn new(budget: &'static Budget, min_bytes: usize) -> Self {
        Shelf {
            budget,
            min_bytes,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// The shelf if it is free right now (a poisoned lock is used anyway: the list is always valid).
    fn now(&self) -> Option<MutexGuard<'_, Vec<(usize, E)>>> {
        match self.kept.try_lock() {
            Ok(k) => Some(k),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The kept buffer `score` ranks lowest among those it accepts (`None`: not this one; ties: the
    /// oldest), removed from the shelf. `None` when there is none, or the shelf is busy.
    pub fn take(&self, score: impl Fn(usize, &E) -> Option<usize>) -> Option<E> {
        let mut k = self.now()?;
        let best = k
            .iter()
            .enumerate()
            .filter_map(|(i, (bytes, e))| score(*bytes, e).map(|s| (s, i)))
            .min_by_key(|&(s, _)| s)
            .map(|(_, i)| i)?;
        let (bytes, e) = k.remove(best);
        self.budget.release(bytes);
        Some(e)
    }

    /// Keep `item` (of `bytes` bytes) if it fits under the budget, freeing this shelf's oldest buffers to
    /// make room; otherwise free it. Never waits; memory is freed after the lock is released.
    pub fn give_back(&self, bytes: usize, item: E) {
        if bytes == 0 || bytes < self.min_bytes {
            return;
        }
        let Some(mut k) = self.now() else {
            return;
        };
        // Freeing this shelf's own buffers cannot make room: free this one and keep those.
        let own: usize = k.iter().map(|(b, _)| b).sum();
        let (limit, held, _) = self.budget.state();
        if held.saturating_sub(own).saturating_add(bytes) > limit {
            return;
        }
        let mut evicted = Vec::new();
        let kept = loop {
            if self.budget.reserve(bytes) {
                break true;
            }
            if k.is_empty() {
                break false;
            }
            let (b, e) = k.remove(0);
            self.budget.release(b);
            evicted.push(e);
        };
        if kept {
            k.push((bytes, item));
            self.budget.items.fetch_add(1, Ordering::SeqCst);
            drop(k);
        } else {
            drop(k);
            drop(item);
        }
        drop(evicted);
    }

    /// Free this shelf's oldest buffers until the budget's bytes are within its limit (or the shelf is
    /// empty). Waits for the shelf: called when the limit is set, not by kernels.
    pub(crate) fn shrink(&self) {
        let mut k = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = Vec::new();
        while self.budget.over() && !k.is_empty() {
            let (b, e) = k.remove(0);
            self.budget.release(b);
            evicted.push(e);
        }
        drop(k);
        drop(evicted);
    }
}

/// The budget of every shelf in the process.
pub(crate) static BUDGET: Budget = Budget::new(DEFAULT_KEEP_BYTES);

/// Set the limit on the bytes kept by all shelves together (0 frees everything kept and keeps nothing).
/// Returns the old limit.
pub fn set_limit(bytes: usize) -> usize {
    let old = BUDGET.limit.swap(bytes, Ordering::SeqCst);
    crate::buffers::shrink();
    crate::scratch::shrink();
    old
}

/// `(limit, bytes kept, buffers kept)`, output and work buffers together.
pub fn state() -> (usize, usize, usize) {
    BUDGET.state()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn the_limit_bounds_the_shelves_together() {
        static B: Budget = Budget::new(10);
        static BIG: Shelf<Vec<u8>> = Shelf::new(&B, 2);
        static ANY: Shelf<Vec<u8>> = Shelf::new(&B, 0);
        BIG.give_back(1, vec![1]); // under the shelf's minimum
        assert_eq!(B.state(), (10, 0, 0));
        BIG.give_back(4, vec![4]);
        ANY.give_back(3, vec![3]);
        ANY.give_back(2, vec![2]);
        assert_eq!(B.state(), (10, 9, 3));
        // No room: the shelf's own oldest buffer makes room; the other shelf is left alone.
        ANY.give_back(3, vec![33]);
        assert_eq!(B.state(), (10, 9, 3));
        assert_eq!(ANY.take(|_, v| Some(v[0] as usize)), Some(vec![2]));
        assert_eq!(ANY.take(|_, _| Some(0)), Some(vec![33]));
        // Bigger than the room its own shelf can make: freed.
        BIG.give_back(11, vec![11]);
        ANY.give_back(7, vec![7]);
        assert_eq!(B.state(), (10, 4, 1));
        // Taking picks the best-scored buffer it accepts.
        BIG.give_back(6, vec![6]);
        assert_eq!(BIG.take(|b, _| (b >= 5).then_some(b)), Some(vec![6]));
        assert_eq!(BIG.take(|b, _| (b >= 5).then_some(b)), None);
        assert_eq!(B.state(), (10, 4, 1));
        // A lower limit is reached by freeing the oldest.
        B.limit.store(0, Ordering::SeqCst);
        BIG.shrink();
        ANY.shrink();
        assert_eq!(B.state(), (0, 0, 0));
        ANY.give_back(1, vec![1]);
        assert_eq!(B.state(), (0, 0, 0));
    }

    #[test]
    fn a_busy_shelf_is_never_waited_for() {
        static B: Budget = Budget::new(100);
        static S: Shelf<Vec<u8>> = Shelf::new(&B, 0);
        S.give_back(10, vec![0; 10]);
        let held = S.kept.lock().unwrap();
        // Another thread takes (finds nothing: allocates) and gives back (frees) while the lock is held.
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let got = S.take(|_, _| Some(0));
            S.give_back(20, vec![0; 20]);
            tx.send(got.is_none()).unwrap();
        });
        let nothing = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a thread stalled on a held shelf");
        assert!(nothing);
        t.join().unwrap();
        assert_eq!(held.len(), 1);
        drop(held);
        assert_eq!(B.state(), (100, 10, 1));
    }
}
