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
    /// A private key file cannot be used for signing (not OpenSSH, wrong or missing passphrase).
    #[error("key {path}: {message}", path = path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Why it cannot be used (never the passphrase).
        message: String,
    },
    /// `writ keygen` would replace an existing file.
    #[error("{path} already exists; not overwriting it", path = path.display())]
    WouldOverwrite {
        /// The existing file.
        path: PathBuf,
    },
    /// `--principal` cannot be used as a signature file name.
    #[error("principal `{0}` cannot name a signature file (use letters, digits and @._+-)")]
    BadPrincipal(String),
    /// The deploy config (deploy.yml, the destination overlay or the pinned host keys) is
    /// invalid. Display is the full rendered diagnostic: `file:line:col: path: message`, the
    /// source line and a caret; [`Error::hint`] gives the suggestion.
    #[error("{diagnostic}")]
    Config {
        /// What is wrong and where.
        diagnostic: Box<crate::diagnostic::Diagnostic>,
    },
    /// A template failed to load or render (syntax, undefined value, out of fuel, a literal
    /// newline in a command, a non-ASCII byte).
    #[error("template {name}: {message}")]
    Template {
        /// The template file (and macro), or the offending path.
        name: String,
        /// What went wrong, with the template line when known.
        message: String,
    },
    /// A value cannot be written as a shell word (it holds a NUL byte).
    #[error("cannot quote a value for the shell: {0}")]
    Unquotable(String),
    /// The operation cannot be planned for this config (no hosts for a role, unknown
    /// accessory, no destination, …).
    #[error("cannot plan `{operation}`: {message}")]
    Operation {
        /// The operation as written (`accessory boot db`).
        operation: String,
        /// Why it cannot be planned.
        message: String,
    },
    /// `created` cannot be known: the config root is not in a git work tree with a commit and
    /// `SOURCE_DATE_EPOCH` is not set (the wall clock is never used).
    #[error(
        "cannot tell when the plan was made: {root} is not in a git repository with a commit, and SOURCE_DATE_EPOCH is not set"
    )]
    NoSourceDate {
        /// The config root.
        root: PathBuf,
    },
    /// `SOURCE_DATE_EPOCH` is not whole seconds since 1970.
    #[error("SOURCE_DATE_EPOCH `{value}` is not a number of seconds since 1970")]
    BadSourceDateEpoch {
        /// The value (cut to 40 characters).
        value: String,
    },
    /// No `--version` and no git commit to take it from.
    #[error("no version: --version is not given and the config is not in a git repository")]
    NoVersion,
    /// A git command needed for `--previous-ref` failed.
    #[error("{command}: {message}")]
    Git {
        /// The git command.
        command: String,
        /// git's first line of error output.
        message: String,
    },
    /// The plan a new plan would replace is not a valid plan.
    #[error("previous plan {origin} is not a valid plan")]
    PreviousPlan {
        /// Where it was read from.
        origin: String,
        /// Why it does not decode.
        #[source]
        source: Box<writ_exec::Error>,
    },
    /// The plan a new plan would replace is for another service or destination.
    #[error("previous plan {origin} is for {field} `{found}`, not `{expected}`")]
    PreviousMismatch {
        /// Where it was read from.
        origin: String,
        /// `service` or `destination`.
        field: &'static str,
        /// The new plan's value.
        expected: String,
        /// The previous plan's value.
        found: String,
    },
    /// A `server exec` / `app exec` command line is not printable ASCII on one line.
    #[error("exec command {index} is not allowed: {message}")]
    ExecCommand {
        /// 1-based position of the command on the command line.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    /// The process exit code documented for this error in docs/exit-codes.md.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io { .. } => 74,
            Error::Exec(e) => e.exit_code(),
            Error::KeyFile { .. } => 40,
            Error::WouldOverwrite { .. } => 41,
            Error::BadPrincipal(_) => 2,
            Error::Config { .. } | Error::Unquotable(_) => 78,
            Error::Template { .. } => 79,
            Error::Operation { .. } => 80,
            Error::ExecCommand { .. } => 81,
            Error::NoSourceDate { .. } | Error::BadSourceDateEpoch { .. } | Error::NoVersion => 82,
            Error::PreviousPlan { .. } | Error::PreviousMismatch { .. } => 83,
            Error::Git { .. } => 84,
        }
    }

    /// A one-line suggestion for fixing the error, when there is one.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::KeyFile { .. } => Some(
                "the passphrase comes from WRIT_KEY_PASSPHRASE or a prompt; ssh-agent and hardware keys can sign with `ssh-keygen -Y sign -n writ-plan:<destination>`".into(),
            ),
            Error::WouldOverwrite { .. } => {
                Some("choose another --out, or move the old key away yourself".into())
            }
            Error::Config { diagnostic } => diagnostic.hint.clone(),
            Error::Template { .. } => Some(
                "compare with the built-in templates in templates/; each macro renders one command line".into(),
            ),
            Error::ExecCommand { .. } => Some(
                "exec commands are shown and run verbatim: one line of printable ASCII each".into(),
            ),
            Error::Io { .. }
            | Error::Exec(_)
            | Error::BadPrincipal(_)
            | Error::Unquotable(_)
            | Error::Operation { .. } => None,
            Error::NoSourceDate { .. } => Some(
                "commit the config to git, or set SOURCE_DATE_EPOCH=<unix seconds> for a reproducible build outside git".into(),
            ),
            Error::BadSourceDateEpoch { .. } => {
                Some("set SOURCE_DATE_EPOCH to decimal seconds, e.g. $(git log -1 --format=%ct)".into())
            }
            Error::NoVersion => Some("pass --version VERSION (the image tag to deploy)".into()),
            Error::Git { .. } => Some("--previous-ref takes a git revision (branch, tag or commit) of the repository holding the plans".into()),
            Error::PreviousPlan { .. } => Some("pass --previous FILE or --previous-ref REF to chain onto another plan, or restore the file from git".into()),
            Error::PreviousMismatch { .. } => Some("each service and destination has its own plan file; check --config, -d and --previous".into()),
        }
    }
}
