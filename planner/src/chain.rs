//! The chain of plans for one destination: which plan a new one replaces, its `serial`,
//! `previous`, `created` and `expires`, and writing it atomically.
//!
//! Rules (docs/planning.md says the same for users):
//! - `serial` = base serial + 1 and `previous` = sha256 of the base plan's bytes; `genesis` and
//!   serial 1 only when there is no base plan at all.
//! - `created` is `SOURCE_DATE_EPOCH` when set, else the commit time of git `HEAD` of the config
//!   root — never the wall clock — and `expires` = `created` + the configured plan lifetime.
//! - The *body* of a plan is everything except the chain and provenance fields (`serial`,
//!   `previous`, `created`, `expires`, `source commit`). When a freshly rendered body equals the
//!   base plan's body, the base plan is kept byte for byte ("plan is up to date") instead of
//!   growing the chain, so re-running `writ plan` on unchanged inputs is a no-op.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use writ_exec::plan::{Plan, Previous, Source, decode, encode, plan_id};

use crate::Error;

/// Directory, under the config root, that holds the plans.
pub const PLANS_DIR: &str = "plans";

/// The plan file of `destination` relative to the config root: `plans/<destination>.plan`.
#[must_use]
pub fn plan_file(destination: &str) -> String {
    format!("{PLANS_DIR}/{destination}.plan")
}

/// The default output path: `<root>/plans/<destination>.plan`.
#[must_use]
pub fn plan_path(root: &Path, destination: &str) -> PathBuf {
    root.join(plan_file(destination))
}

/// When and from which commit a plan is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// `created` for the plan.
    pub created: Timestamp,
    /// The full hex commit of git `HEAD`, if the config root is in a git work tree.
    pub commit: Option<String>,
}

impl Provenance {
    /// Work out `created` and the commit for the config at `root`. `source_date_epoch` is the
    /// value of `SOURCE_DATE_EPOCH` (whole seconds since 1970), which overrides the commit time.
    pub fn of(root: &Path, source_date_epoch: Option<&str>) -> Result<Self, Error> {
        let head = git_head(root);
        let created = match source_date_epoch {
            Some(v) => parse_epoch(v)?,
            None => match &head {
                Some((_, time)) => *time,
                None => {
                    return Err(Error::NoSourceDate {
                        root: root.to_path_buf(),
                    });
                }
            },
        };
        Ok(Self {
            created,
            commit: head.map(|(c, _)| c),
        })
    }

    /// The default version: the first 7 hex digits of the commit (like `git rev-parse --short`,
    /// but fixed-length so every clone agrees).
    #[must_use]
    pub fn default_version(&self) -> Option<String> {
        self.commit.as_ref().map(|c| c[..7].to_owned())
    }
}

fn parse_epoch(v: &str) -> Result<Timestamp, Error> {
    let bad = || Error::BadSourceDateEpoch {
        value: v.chars().take(40).collect(),
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: i64 = v.parse().map_err(|_| bad())?;
    Timestamp::from_second(secs).map_err(|_| bad())
}

/// `(commit, commit time)` of HEAD of the git work tree holding `root`, if there is one.
fn git_head(root: &Path) -> Option<(String, Timestamp)> {
    let out = git(root, &["log", "-1", "--format=%H %ct", "HEAD"]).ok()?;
    let text = String::from_utf8(out).ok()?;
    let (commit, time) = text.trim_end().split_once(' ')?;
    let valid = (40..=64).contains(&commit.len())
        && commit
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return None;
    }
    let time = Timestamp::from_second(time.parse().ok()?).ok()?;
    Some((commit.to_owned(), time))
}

/// Run git in `dir` with a fixed, minimal environment for its output format; stdout on success.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_PAGER", "cat")
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err.lines().next().unwrap_or("git failed").to_owned())
    }
}

/// The plan a new plan replaces: its bytes, where they came from, and the decoded plan.
#[derive(Clone, Debug)]
pub struct Base {
    /// Where the bytes came from, for messages (`plans/production.plan`, `main:plans/…`).
    pub origin: String,
    /// The exact bytes (their sha256 is the new plan's `previous`).
    pub bytes: Vec<u8>,
    /// The decoded plan.
    pub plan: Plan,
}

impl Base {
    /// Decode `bytes` read from `origin`.
    pub fn from_bytes(origin: String, bytes: Vec<u8>) -> Result<Self, Error> {
        let plan = decode(&bytes).map_err(|source| Error::PreviousPlan {
            origin: origin.clone(),
            source: Box::new(source),
        })?;
        Ok(Self {
            origin,
            bytes,
            plan,
        })
    }

    /// The plan file at `path`, or `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, Error> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_bytes(path.display().to_string(), bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The plan file `relative` (to `dir`) as of git revision `gitref` (`git show
    /// REF:./RELATIVE`, run in `dir`), or `None` when that revision has no such file.
    pub fn from_git(gitref: &str, dir: &Path, relative: &str) -> Result<Option<Self>, Error> {
        if gitref.is_empty() || gitref.starts_with('-') || gitref.contains(':') {
            return Err(Error::Git {
                command: "git show".into(),
                message: format!("`{gitref}` is not a revision name"),
            });
        }
        // `rev-parse --verify` first, so a bad ref is an error and a missing file is `None`.
        let commit = format!("{gitref}^{{commit}}");
        git(dir, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|message| Error::Git {
            command: format!("git rev-parse {gitref}"),
            message: if message.is_empty() || message == "git failed" {
                format!("unknown revision `{gitref}`")
            } else {
                message
            },
        })?;
        let spec = format!("{gitref}:./{relative}");
        match git(dir, &["show", &spec]) {
            Ok(bytes) => Self::from_bytes(format!("{gitref}:{relative}"), bytes).map(Some),
            Err(m) if m.contains("does not exist") || m.contains("exists on disk, but not in") => {
                Ok(None)
            }
            Err(message) => Err(Error::Git {
                command: format!("git show {spec}"),
                message,
            }),
        }
    }
}

/// The plan with its chain and provenance fields cleared: what "up to date" compares.
#[must_use]
pub fn body(plan: &Plan) -> Plan {
    Plan {
        serial: 1,
        previous: Previous::Genesis,
        created: Timestamp::UNIX_EPOCH,
        expires: Timestamp::UNIX_EPOCH,
        source: Source {
            commit: None,
            ..plan.source.clone()
        },
        ..plan.clone()
    }
}

/// The result of linking a rendered plan onto its base.
#[derive(Clone, Debug)]
pub struct Linked {
    /// The plan as it should be on disk.
    pub plan: Plan,
    /// Its canonical bytes.
    pub bytes: Vec<u8>,
    /// True when the base plan already had this body and is kept unchanged.
    pub up_to_date: bool,
}

/// Give `rendered` its place in the chain after `base`: serial, previous, created = `created`,
/// expires = created + `lifetime`. If the base has the same body, the base is returned as is.
pub fn link(
    rendered: &Plan,
    base: Option<&Base>,
    provenance: &Provenance,
    lifetime: SignedDuration,
) -> Result<Linked, Error> {
    if let Some(b) = base {
        check_same_target(b, rendered)?;
        if body(&b.plan) == body(rendered) {
            return Ok(Linked {
                plan: b.plan.clone(),
                bytes: b.bytes.clone(),
                up_to_date: true,
            });
        }
    }
    let mut plan = rendered.clone();
    (plan.serial, plan.previous) = match base {
        None => (1, Previous::Genesis),
        Some(b) => (
            b.plan
                .serial
                .checked_add(1)
                .ok_or_else(|| Error::PreviousPlan {
                    origin: b.origin.clone(),
                    source: Box::new(writ_exec::Error::Encode("serial overflows".into())),
                })?,
            Previous::Plan(plan_id(&b.bytes)),
        ),
    };
    plan.created = provenance.created;
    plan.expires = provenance
        .created
        .checked_add(lifetime)
        .map_err(|e| Error::Exec(writ_exec::Error::Encode(format!("expires: {e}"))))?;
    plan.source.commit.clone_from(&provenance.commit);
    let bytes = encode(&plan)?;
    Ok(Linked {
        plan,
        bytes,
        up_to_date: false,
    })
}

/// A base plan must be for the same service and destination.
fn check_same_target(base: &Base, new: &Plan) -> Result<(), Error> {
    for (field, old, new) in [
        ("service", &base.plan.service, &new.service),
        ("destination", &base.plan.destination, &new.destination),
    ] {
        if old != new {
            return Err(Error::PreviousMismatch {
                origin: base.origin.clone(),
                field,
                expected: new.clone(),
                found: old.clone(),
            });
        }
    }
    Ok(())
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, fsync, rename),
/// creating the directory if needed. A file that already holds exactly `bytes` is left alone.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".writ-plan-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    // A plan is public and reviewed: readable like any file in the repository (the temporary
    // file starts as 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use writ_exec::plan::{Host, HostKey, HostSteps, Phase, Sha256Digest, Step, Strategy};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn rendered(version: &str) -> Plan {
        Plan {
            service: "hey".into(),
            destination: "production".into(),
            operation: "deploy".into(),
            version: version.into(),
            serial: 1,
            previous: Previous::Genesis,
            created: Timestamp::UNIX_EPOCH,
            expires: Timestamp::from_second(1).unwrap(),
            source: Source {
                config: Sha256Digest([1; 32]),
                templates: Sha256Digest([2; 32]),
                commit: None,
            },
            hosts: vec![Host {
                name: "web-1".into(),
                user: "deploy".into(),
                address: "10.0.0.1".into(),
                port: 22,
                via: None,
                keys: vec![HostKey::parse(KEY).unwrap()],
            }],
            phases: vec![Phase {
                name: "boot".into(),
                strategy: Strategy::Parallel,
                hosts: vec![HostSteps {
                    host: "web-1".into(),
                    steps: vec![Step {
                        command: format!("docker pull hey:{version}"),
                        stdin: None,
                    }],
                }],
            }],
        }
    }

    fn prov(secs: i64, commit: Option<&str>) -> Provenance {
        Provenance {
            created: Timestamp::from_second(secs).unwrap(),
            commit: commit.map(str::to_owned),
        }
    }

    const DAY: SignedDuration = SignedDuration::from_hours(24);

    #[test]
    fn first_plan_is_genesis_then_serial_and_previous_follow() {
        let first = link(&rendered("v1"), None, &prov(1_000, None), DAY).unwrap();
        assert_eq!(
            (first.plan.serial, first.plan.previous),
            (1, Previous::Genesis)
        );
        assert_eq!(first.plan.expires.as_second(), 1_000 + 86_400);
        assert!(!first.up_to_date);
        let base = Base::from_bytes("p".into(), first.bytes.clone()).unwrap();
        let second = link(
            &rendered("v2"),
            Some(&base),
            &prov(2_000, Some(&"a".repeat(40))),
            DAY,
        )
        .unwrap();
        assert_eq!(second.plan.serial, 2);
        assert_eq!(second.plan.previous, Previous::Plan(plan_id(&first.bytes)));
        assert_eq!(second.plan.source.commit.as_deref(), Some(&*"a".repeat(40)));
    }

    #[test]
    fn unchanged_body_keeps_the_base_bytes_even_at_a_later_commit() {
        let first = link(&rendered("v1"), None, &prov(1_000, None), DAY).unwrap();
        let base = Base::from_bytes("p".into(), first.bytes.clone()).unwrap();
        let again = link(
            &rendered("v1"),
            Some(&base),
            &prov(9_000, Some(&"b".repeat(40))),
            DAY,
        )
        .unwrap();
        assert!(again.up_to_date);
        assert_eq!(again.bytes, first.bytes);
    }

    #[test]
    fn base_for_another_destination_is_refused() {
        let first = link(&rendered("v1"), None, &prov(1_000, None), DAY).unwrap();
        let base = Base::from_bytes("p".into(), first.bytes).unwrap();
        let mut other = rendered("v1");
        other.destination = "staging".into();
        let err = link(&other, Some(&base), &prov(1_000, None), DAY).unwrap_err();
        assert!(err.to_string().contains("destination"), "{err}");
    }

    #[test]
    fn source_date_epoch_must_be_decimal_seconds() {
        for bad in ["", "-1", "1.5", "12abc", " 12", "99999999999999999999"] {
            assert!(parse_epoch(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_epoch("1764774245").unwrap().as_second(),
            1_764_774_245
        );
    }

    #[test]
    fn outside_git_created_needs_source_date_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let err = Provenance::of(dir.path(), None).unwrap_err();
        assert!(matches!(err, Error::NoSourceDate { .. }), "{err}");
        let p = Provenance::of(dir.path(), Some("1764774245")).unwrap();
        assert_eq!(p.commit, None);
        assert_eq!(p.default_version(), None);
    }

    #[test]
    fn atomic_write_creates_the_directory_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans/production.plan");
        write_atomic(&path, b"one\n").unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("plans"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
