//! The planner library's one error type. Each variant names the condition; [`Error::exit_code`]
//! maps it to docs/exit-codes.md and [`Error::hint`] gives the one-line fix shown after it.

use std::path::PathBuf;

/// Everything that can go wrong in the planner library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An error from the plan format or signature code.
    #[error(transparent)]
    Exec(#[from] writ_exec::Error),
}

impl Error {
    /// The process exit code documented for this error in docs/exit-codes.md.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io { .. } => 74,
            Error::Exec(e) => e.exit_code(),
        }
    }

    /// A one-line suggestion for fixing the error, when there is one.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Io { .. } | Error::Exec(_) => None,
        }
    }
}
