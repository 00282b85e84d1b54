//! The thread pool every kernel runs on. Its size comes from `NITRAIN_NUM_THREADS` (else the number of
//! CPUs) and can be changed at run time; kernels give the same results whatever the size.

use std::sync::{Arc, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::KernelError;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

/// Threads requested by the environment: `NITRAIN_NUM_THREADS` if it is a positive integer, else the
/// number of CPUs available to this process.
pub fn threads_from_env() -> Result<usize, KernelError> {
    match std::env::var("NITRAIN_NUM_THREADS") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(KernelError::ThreadsEnv(v)),
        },
        _ => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

fn build(n: usize) -> Result<Arc<ThreadPool>, KernelError> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("nitrain-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|source| KernelError::PoolStart { n, source })
}

/// The current pool, created on first use.
pub fn pool() -> Result<Arc<ThreadPool>, KernelError> {
    if let Ok(guard) = POOL.read() {
        if let Some(p) = guard.as_ref() {
            return Ok(Arc::clone(p));
        }
    }
    let mut guard = POOL.write().map_err(|_| KernelError::PoolPoisoned)?;
    if let Some(p) = guard.as_ref() {
        return Ok(Arc::clone(p));
    }
    let p = build(threads_from_env()?)?;
    *guard = Some(Arc::clone(&p));
    Ok(p)
}

/// Replace the pool with one of `n` threads (`None`: back to the environment's choice).
pub fn set_num_threads(n: Option<usize>) -> Result<usize, KernelError> {
    let n = match n {
        Some(0) => return Err(KernelError::ZeroThreads),
        Some(n) => n,
        None => threads_from_env()?,
    };
    let p = build(n)?;
    let mut guard = POOL.write().map_err(|_| KernelError::PoolPoisoned)?;
    *guard = Some(p);
    Ok(n)
}

/// Size of the current pool.
pub fn num_threads() -> Result<usize, KernelError> {
    pool().map(|p| p.current_num_threads())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_pool() {
        assert_eq!(set_num_threads(Some(3)).unwrap(), 3);
        assert_eq!(num_threads().unwrap(), 3);
        assert!(set_num_threads(Some(0)).is_err());
        assert_eq!(num_threads().unwrap(), 3);
    }
}
