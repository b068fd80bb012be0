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
    // --- verify (trust core) ------------------------------------------------------------------
    /// Fewer distinct allowed principals signed than the threshold requires.
    #[error("plan {plan_id}: {report}")]
    BelowThreshold {
        /// sha256 of the plan bytes.
        plan_id: crate::plan::Sha256Digest,
        /// Who counted, and every signature that did not with the reason.
        report: Box<crate::trust::SignatureReport>,
    },
    /// A signature file is unreadable as an armored OpenSSH signature.
    #[error("signature file {path}: {message}")]
    SignatureFile {
        /// The `.sig` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The allowed_signers file is invalid.
    #[error("{path}:{line}:{col}: {message}", path = path.display())]
    AllowedSigners {
        /// The allowed_signers file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (bytes).
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// The expected destination given to the executor is not a valid destination name.
    #[error("destination `{0}` is not a valid name ([A-Za-z0-9][A-Za-z0-9._-]*)")]
    InvalidDestination(String),
    /// The plan is for another destination than the executor was told to deploy.
    #[error("the plan is for destination `{found}`, but this executor deploys `{expected}`")]
    WrongDestination {
        /// The executor's `--destination`.
        expected: String,
        /// The plan's `destination` header.
        found: String,
    },
    /// The plan's `expires` time has passed on the executor's clock.
    #[error("the plan expired at {expires} (executor clock: {now}); re-plan and sign again")]
    PlanExpired {
        /// The plan's `expires`.
        expires: jiff::Timestamp,
        /// The executor's clock.
        now: jiff::Timestamp,
    },
    /// Making a signature failed.
    #[error("signing failed: {0}")]
    Sign(String),
    // --- apply / lock / audit (executor replay) -------------------------------------------
    /// A host presented a key that is not pinned for it in the plan.
    #[error(
        "host `{host}`: host key mismatch: the plan pins {expected}, the host presented {seen}; refused before authentication"
    )]
    HostKeyMismatch {
        /// The plan's host name.
        host: String,
        /// Fingerprints pinned in the plan, comma-separated.
        expected: String,
        /// Fingerprint the host presented (or what it offered).
        seen: String,
    },
    /// A TCP or SSH connection could not be made, timed out or was lost.
    #[error("host `{host}`: {message}")]
    Connect {
        /// The plan's host name.
        host: String,
        /// What failed.
        message: String,
    },
    /// The host refused every key we offered.
    #[error("host `{host}`: authentication as `{user}` failed: {message}")]
    AuthFailed {
        /// The plan's host name.
        host: String,
        /// The SSH user.
        user: String,
        /// What was tried.
        message: String,
    },
    /// The identity (private key) file cannot be used.
    #[error("identity {path}: {message}")]
    Identity {
        /// The key file.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// The login shell on the host is not POSIX, so exact replay is impossible.
    #[error(
        "host `{host}`: the login shell is not a POSIX shell (quoting probe got {seen}); plan commands are POSIX shell and would not run as reviewed. Set a POSIX login shell (sh, bash, dash, zsh) for the SSH user"
    )]
    ShellNotPosix {
        /// The plan's host name.
        host: String,
        /// What the probe returned.
        seen: String,
    },
    /// A secret the plan names has no value, or its source failed.
    #[error("secret `{name}`: {message}")]
    SecretUnavailable {
        /// The secret's name.
        name: String,
        /// Why (never the value).
        message: String,
    },
    /// The secrets file cannot be parsed.
    #[error("{path}:{line}: {message}")]
    SecretsFile {
        /// The dotenv file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong (never a value).
        message: String,
    },
    /// The deploy lock is held by someone else.
    #[error("host `{host}`: deploy lock is held by {holder}")]
    LockHeld {
        /// The plan's host name.
        host: String,
        /// Who holds it (owner, plan, time).
        holder: String,
    },
    /// `lock release` of a lock someone else holds, without `--force`.
    #[error(
        "host `{host}`: the lock is held by {holder}, not by {owner}; use --force to release it (audited)"
    )]
    LockNotOwned {
        /// The plan's host name.
        host: String,
        /// Who holds it.
        holder: String,
        /// Who we are.
        owner: String,
    },
    /// The plan's `previous` is not the plan the host applied last.
    #[error(
        "host `{host}`: stale plan: it follows {expected} but the host last applied {found}; re-plan from the current state"
    )]
    StalePlan {
        /// The plan's host name.
        host: String,
        /// The plan's `previous`.
        expected: String,
        /// The host's record.
        found: String,
    },
    /// The plan is older than (or as old as) what the host applied: a replay.
    #[error(
        "host `{host}`: replayed plan: serial {serial} is not newer than serial {applied} already applied there"
    )]
    ReplayedPlan {
        /// The plan's host name.
        host: String,
        /// The plan's serial.
        serial: u64,
        /// The host's recorded serial.
        applied: u64,
    },
    /// A genesis plan on a host that already has a record.
    #[error("host `{host}`: genesis plan refused: the host already applied {found}")]
    GenesisOnUsedHost {
        /// The plan's host name.
        host: String,
        /// The host's record.
        found: String,
    },
    /// A host answered a protocol command with something unexpected.
    #[error("host `{host}`: executor protocol: {message}")]
    Protocol {
        /// The plan's host name.
        host: String,
        /// What was unexpected.
        message: String,
    },
    /// A plan step failed; later steps and phases were not started.
    #[error("host `{host}`: step {step} in phase `{phase}` failed with {status}: {command}")]
    StepFailed {
        /// The plan's host name.
        host: String,
        /// The phase.
        phase: String,
        /// 1-based step number on that host.
        step: usize,
        /// `exit code N`, `signal S`, `timeout after Ns`.
        status: String,
        /// The command (first line).
        command: String,
    },
    /// The run was interrupted (Ctrl-C); in-flight steps finished, nothing new started.
    #[error("interrupted: in-flight steps finished, no new step was started")]
    Interrupted,
    /// The audit log's hash chain is broken.
    #[error("{path}:{line}: audit chain broken: {message}")]
    AuditChain {
        /// The audit file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What does not match.
        message: String,
    },
    /// A command-line value is unusable.
    #[error("{0}")]
    Usage(String),
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
            Error::BelowThreshold { .. } => 10,
            Error::SignatureFile { .. } => 11,
            Error::AllowedSigners { .. } | Error::InvalidDestination(_) => 12,
            Error::WrongDestination { .. } => 14,
            Error::PlanExpired { .. } => 15,
            Error::Sign(_) => 16,
            Error::Encode(_) => 70,
            Error::Io { .. } => 74,
            Error::StepFailed { .. } => 20,
            Error::Interrupted => 21,
            Error::Connect { .. } => 22,
            Error::HostKeyMismatch { .. } => 23,
            Error::AuthFailed { .. } | Error::Identity { .. } => 24,
            Error::ShellNotPosix { .. } => 25,
            Error::SecretUnavailable { .. } | Error::SecretsFile { .. } => 26,
            Error::LockHeld { .. } => 27,
            Error::StalePlan { .. } => 28,
            Error::ReplayedPlan { .. } => 29,
            Error::GenesisOnUsedHost { .. } => 30,
            Error::AuditChain { .. } => 31,
            Error::Protocol { .. } => 32,
            Error::LockNotOwned { .. } => 33,
            Error::Usage(_) => 2,
        }
    }

    /// What to do about it, when there is one obvious next step (printed as `hint:`).
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Error::HostKeyMismatch { .. } => {
                "if the host was rebuilt, fetch and check its new key, update the pinned keys, re-plan and sign again"
            }
            Error::ShellNotPosix { .. } => {
                "give the deploy user a POSIX login shell (chsh -s /bin/sh USER)"
            }
            Error::LockHeld { .. } => {
                "wait for that run to finish, or check `writ-exec lock status` and `writ-exec lock release --force` (audited)"
            }
            Error::StalePlan { .. }
            | Error::ReplayedPlan { .. }
            | Error::GenesisOnUsedHost { .. } => {
                "re-plan against the plan the hosts applied last (`writ plan`), then sign again"
            }
            Error::StepFailed { .. } | Error::Interrupted => {
                "fix the cause and run the same plan again: it resumes after the last completed step"
            }
            Error::SecretUnavailable { .. } => {
                "provide it in the environment, --secrets-file or --secrets-command"
            }
            Error::AuditChain { .. } => {
                "the audit log was changed after it was written: keep it for investigation and start a new file"
            }
            _ => return None,
        })
    }

    /// A `Decode` error at `line`.
    pub(crate) fn decode(line: usize, message: impl Into<String>) -> Self {
        Error::Decode {
            line,
            message: message.into(),
        }
    }
}
