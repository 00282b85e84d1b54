use thiserror::Error;

/// Everything the kernels, the thread pool and the NIfTI reader can reject: the one error type of this
/// crate. Each message names the operation (or the file), what was expected and what arrived. The
/// extension crate maps each variant to one Python exception.
#[derive(Debug, Error)]
pub enum KernelError {
    /// An argument has the wrong shape or value (Python `ValueError`).
    #[error("{op}: {msg}")]
    Value { op: &'static str, msg: String },
    /// `NITRAIN_NUM_THREADS` is set but not a positive integer (Python `ValueError`).
    #[error("NITRAIN_NUM_THREADS must be a positive integer, got {0:?}")]
    ThreadsEnv(String),
    /// A pool of no threads was asked for (Python `ValueError`).
    #[error("num_threads must be at least 1, got 0")]
    ZeroThreads,
    /// The operating system would not start the pool's threads (Python `RuntimeError`).
    #[error("could not start a pool of {n} threads: {source}")]
    PoolStart {
        n: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// A thread panicked while holding the pool's lock (Python `RuntimeError`).
    #[error("thread pool lock poisoned")]
    PoolPoisoned,
    /// A NIfTI file could not be opened or read (Python `FileNotFoundError`, `PermissionError` or
    /// `OSError`, by the kind of `source`).
    #[error("{path}: {source}")]
    NiftiIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A NIfTI file is short, or its compressed data or checksums do not match (Python
    /// `nitrain._core.NiftiDamagedError`, an `OSError`).
    #[error("{path}: {msg}")]
    NiftiDamaged { path: String, msg: String },
}

impl KernelError {
    pub fn value(op: &'static str, msg: impl Into<String>) -> Self {
        KernelError::Value {
            op,
            msg: msg.into(),
        }
    }
}
