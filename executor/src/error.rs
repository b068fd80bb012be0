//! The executor library's one error type. Variants are named for the condition; each maps to
//! a documented exit code (docs/exit-codes.md) through [`Error::exit_code`].

use std::path::PathBuf;

/// Everything that can go wrong in the executor library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plan bytes are not a canonical v1 plan.
    #[error("plan line {line}: {message}")]
    Decode {
        /// 1-based line number in the plan file.
        line: usize,
        /// What is wrong on that line.
        message: String,
    },
    /// A plan value cannot be encoded (the planner built something the format forbids).
    #[error("cannot encode plan: {0}")]
    Encode(String),
    /// The plan is larger than the format allows.
    #[error("plan is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code documented for this error in docs/exit-codes.md.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Decode { .. } | Error::TooLarge { .. } => 13,
            Error::Encode(_) => 70,
            Error::Io { .. } => 74,
        }
    }

    /// A `Decode` error at `line`.
    pub(crate) fn decode(line: usize, message: impl Into<String>) -> Self {
        Error::Decode {
            line,
            message: message.into(),
        }
    }
}
