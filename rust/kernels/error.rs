use thiserror::Error;

/// Everything a kernel can reject. Each message names the operation, what was expected and what arrived.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KernelError {
    /// An argument has the wrong shape or value (maps to Python `ValueError`).
    #[error("{op}: {msg}")]
    Value { op: &'static str, msg: String },
}

impl KernelError {
    pub fn value(op: &'static str, msg: impl Into<String>) -> Self {
        KernelError::Value {
            op,
            msg: msg.into(),
        }
    }
}
