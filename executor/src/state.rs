//! Host state and the executor protocol: the fixed commands the executor itself sends (shell
//! probe, lock, state record, progress recorder, host audit line), the files they touch under
//! `.kamal/writ/<service>-<destination>/` in the SSH user's home directory, and the chain
//! check of a plan against the host's record.
//!
//! The commands are listed verbatim in docs/plan-format.md (`## Executor protocol`). Only
//! the service and destination names (plan names: `[A-Za-z0-9][A-Za-z0-9._-]*`, so shell-safe
//! by the format's grammar), lower-case hex digests and decimal integers are ever interpolated;
//! free text (lock owner, audit line) travels on stdin.

use std::collections::BTreeSet;

use crate::Error;
use crate::lock::LockInfo;
use crate::plan::{Plan, Previous, Sha256Digest};

/// The quoting probe: POSIX shells print `writ-probe\\|42`; fish, csh and friends do not.
pub const PROBE_COMMAND: &str = r#"printf '%s|%s\n' 'writ-probe\\' "$((6*7))""#;
/// What [`PROBE_COMMAND`] prints under a POSIX shell.
pub const PROBE_EXPECTED: &str = "writ-probe\\\\|42\n";

/// The host directory of one service and destination, relative to the SSH user's home.
#[must_use]
pub fn state_dir(plan: &Plan) -> String {
    format!(".kamal/writ/{}-{}", plan.service, plan.destination)
}

/// Kamal's host audit log for this service and destination.
#[must_use]
pub fn host_audit_log(plan: &Plan) -> String {
    format!(".kamal/{}-{}-audit.log", plan.service, plan.destination)
}

/// Take the lock (atomic `mkdir`; owner record on stdin) and read the state records.
#[must_use]
pub fn acquire_command(plan: &Plan, id: Sha256Digest) -> String {
    let d = state_dir(plan);
    format!(
        "mkdir -p {d} && if mkdir {d}/lock 2>/dev/null; then cat > {d}/lock/info && echo writ-lock acquired; else echo writ-lock held; cat {d}/lock/info 2>/dev/null; fi; {}",
        read_tail(&d, id)
    )
}

/// Read the lock and the state records without changing anything (dry run, `lock status`).
#[must_use]
pub fn status_command(plan: &Plan, id: Sha256Digest) -> String {
    let d = state_dir(plan);
    format!(
        "if test -d {d}/lock; then echo writ-lock held; cat {d}/lock/info 2>/dev/null; else echo writ-lock free; fi; {}",
        read_tail(&d, id)
    )
}

fn read_tail(d: &str, id: Sha256Digest) -> String {
    format!(
        "echo writ-applied; cat {d}/applied 2>/dev/null; echo writ-progress; grep -F 'plan={} ' {d}/progress 2>/dev/null; echo writ-end",
        id.hex()
    )
}

/// The progress recorder: one long-lived channel per host that appends each line it reads to
/// the progress file and echoes it back once written.
#[must_use]
pub fn recorder_command(plan: &Plan) -> String {
    let d = state_dir(plan);
    format!(
        "while IFS= read -r l; do printf '%s\\n' \"$l\" >> {d}/progress && printf '%s\\n' \"$l\" || exit 1; done"
    )
}

/// One progress line: step `step` (1-based, per host) of plan `id` completed.
#[must_use]
pub fn progress_line(id: Sha256Digest, step: usize) -> String {
    format!("plan={} step={step}", id.hex())
}

/// After every step of the plan completed on the host: record the plan as applied, drop the
/// progress, append the audit line (stdin) and release the lock.
#[must_use]
pub fn finish_command(plan: &Plan, id: Sha256Digest) -> String {
    let d = state_dir(plan);
    format!(
        "printf 'serial={} plan={}\\n' > {d}/applied.tmp && mv {d}/applied.tmp {d}/applied && rm -f {d}/progress && cat >> {} && rm -rf {d}/lock",
        plan.serial,
        id.hex(),
        host_audit_log(plan)
    )
}

/// The run ended before all of the host's steps completed: append the audit line (stdin) and
/// release the lock; progress stays so a rerun resumes.
#[must_use]
pub fn release_command(plan: &Plan) -> String {
    let d = state_dir(plan);
    format!("cat >> {} && rm -rf {d}/lock", host_audit_log(plan))
}

/// What the host has applied last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Serial of the plan.
    pub serial: u64,
    /// Its id (sha256 of its bytes).
    pub plan: Sha256Digest,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "serial {} ({})", self.serial, self.plan)
    }
}

/// The lock as read from a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// We just took it.
    Acquired,
    /// Nobody holds it.
    Free,
    /// Someone (maybe us, from an interrupted run) holds it.
    Held(LockInfo),
}

/// Everything the acquire/status command reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    /// The lock.
    pub lock: LockState,
    /// The last applied plan, if any.
    pub applied: Option<Applied>,
    /// Steps (1-based) of *this* plan recorded as completed.
    pub completed: BTreeSet<usize>,
}

/// Parse the output of [`acquire_command`] / [`status_command`].
pub fn parse_state(host: &str, out: &[u8], id: Sha256Digest) -> Result<HostState, Error> {
    let bad = |m: &str| Error::Protocol {
        host: host.to_owned(),
        message: m.to_owned(),
    };
    let text = std::str::from_utf8(out).map_err(|_| bad("state output is not UTF-8"))?;
    let mut lines = text.lines();
    let expect_applied = |lines: &mut std::str::Lines<'_>| {
        if lines.next() == Some("writ-applied") {
            Ok(())
        } else {
            Err(bad("missing applied record section"))
        }
    };
    let lock = match lines.next() {
        Some("writ-lock acquired") => {
            expect_applied(&mut lines)?;
            LockState::Acquired
        }
        Some("writ-lock free") => {
            expect_applied(&mut lines)?;
            LockState::Free
        }
        Some("writ-lock held") => {
            let mut info = String::new();
            let mut found = false;
            for l in lines.by_ref() {
                if l == "writ-applied" {
                    found = true;
                    break;
                }
                info.push_str(l);
                info.push('\n');
            }
            if !found {
                return Err(bad("missing applied record section"));
            }
            LockState::Held(LockInfo::parse(&info))
        }
        _ => return Err(bad("unexpected answer to the lock command")),
    };
    let mut applied = None;
    for l in lines.by_ref() {
        if l == "writ-progress" {
            break;
        }
        applied = Some(parse_applied(l).ok_or_else(|| bad(&format!("bad applied record `{l}`")))?);
    }
    let mut completed = BTreeSet::new();
    let prefix = format!("plan={} step=", id.hex());
    let mut ended = false;
    for l in lines {
        if l == "writ-end" {
            ended = true;
            break;
        }
        let step = l
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| bad(&format!("bad progress record `{l}`")))?;
        completed.insert(step);
    }
    if !ended {
        return Err(bad("state output ended early"));
    }
    Ok(HostState {
        lock,
        applied,
        completed,
    })
}

fn parse_applied(line: &str) -> Option<Applied> {
    let rest = line.strip_prefix("serial=")?;
    let (serial, plan) = rest.split_once(" plan=")?;
    Some(Applied {
        serial: serial.parse().ok()?,
        plan: Sha256Digest::from_hex(plan)?,
    })
}

/// How a plan relates to what a host applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// The plan follows the host's record (or the host is new): run it.
    Proceed,
    /// The host already applied exactly this plan: nothing to do there.
    AlreadyApplied,
}

/// Check `plan` (id `id`) against the host's last applied record.
pub fn check_chain(
    host: &str,
    plan: &Plan,
    id: Sha256Digest,
    applied: Option<Applied>,
) -> Result<Chain, Error> {
    let Some(applied) = applied else {
        // A host without a record has never run a plan of this service and destination (or
        // is new to it): any plan may start there.
        return Ok(Chain::Proceed);
    };
    if applied.plan == id {
        return Ok(Chain::AlreadyApplied);
    }
    if plan.previous == Previous::Genesis {
        return Err(Error::GenesisOnUsedHost {
            host: host.to_owned(),
            found: applied.to_string(),
        });
    }
    if plan.serial <= applied.serial {
        return Err(Error::ReplayedPlan {
            host: host.to_owned(),
            serial: plan.serial,
            applied: applied.serial,
        });
    }
    match plan.previous {
        Previous::Plan(prev) if prev == applied.plan => Ok(Chain::Proceed),
        Previous::Plan(prev) => Err(Error::StalePlan {
            host: host.to_owned(),
            expected: format!("serial {} ({prev})", plan.serial - 1),
            found: applied.to_string(),
        }),
        Previous::Genesis => Ok(Chain::Proceed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::tests::sample;

    #[test]
    fn chain_rules() {
        let mut p = sample();
        let id = Sha256Digest([9; 32]);
        let prev = Sha256Digest([7; 32]);
        let at = |serial, plan| Some(Applied { serial, plan });
        assert_eq!(check_chain("h", &p, id, None).unwrap(), Chain::Proceed);
        assert_eq!(
            check_chain("h", &p, id, at(1, prev)).unwrap(),
            Chain::Proceed
        );
        assert_eq!(
            check_chain("h", &p, id, at(2, id)).unwrap(),
            Chain::AlreadyApplied
        );
        let e = check_chain("h", &p, id, at(1, Sha256Digest([8; 32]))).unwrap_err();
        assert!(matches!(e, Error::StalePlan { .. }), "{e}");
        assert!(e.to_string().contains(&prev.hex()), "{e}");
        let e = check_chain("h", &p, id, at(5, Sha256Digest([8; 32]))).unwrap_err();
        assert!(matches!(e, Error::ReplayedPlan { .. }), "{e}");
        p.previous = Previous::Genesis;
        p.serial = 1;
        let e = check_chain("h", &p, id, at(1, prev)).unwrap_err();
        assert!(matches!(e, Error::GenesisOnUsedHost { .. }), "{e}");
    }

    #[test]
    fn parses_state_output() {
        let id = Sha256Digest([9; 32]);
        let out = format!(
            "writ-lock held\nowner=ci:bob\nplan={}\ntime=2026-01-01T00:00:00Z\nwrit-applied\nserial=3 plan={}\nwrit-progress\nplan={} step=1\nplan={} step=2\nwrit-end\n",
            id.hex(),
            Sha256Digest([1; 32]).hex(),
            id.hex(),
            id.hex()
        );
        let s = parse_state("h", out.as_bytes(), id).unwrap();
        let LockState::Held(info) = &s.lock else {
            panic!("{s:?}")
        };
        assert_eq!(info.owner, "ci:bob");
        assert_eq!(s.applied.unwrap().serial, 3);
        assert_eq!(s.completed, [1, 2].into());
        let fresh = "writ-lock acquired\nwrit-applied\nwrit-progress\nwrit-end\n";
        let s = parse_state("h", fresh.as_bytes(), id).unwrap();
        assert_eq!(s.lock, LockState::Acquired);
        assert!(s.applied.is_none() && s.completed.is_empty());
        assert!(parse_state("h", b"fish: error\n", id).is_err());
    }

    #[test]
    fn protocol_commands_interpolate_only_names_hex_and_ints() {
        let p = sample();
        let id = Sha256Digest([0xab; 32]);
        for cmd in [
            acquire_command(&p, id),
            status_command(&p, id),
            recorder_command(&p),
            finish_command(&p, id),
            release_command(&p),
        ] {
            let stripped = cmd
                .replace(&id.hex(), "")
                .replace("hey-production", "")
                .replace(&p.serial.to_string(), "");
            assert!(!stripped.contains("ab".repeat(4).as_str()), "{cmd}");
            assert!(cmd.is_ascii());
        }
    }

    #[test]
    fn docs_list_the_protocol_verbatim() {
        let docs = include_str!("../../docs/plan-format.md");
        let section = &docs[docs.find("## Executor protocol").unwrap()..];
        let p = sample();
        let id = Sha256Digest([0xab; 32]);
        for cmd in [
            PROBE_COMMAND.to_owned(),
            acquire_command(&p, id),
            status_command(&p, id),
            recorder_command(&p),
            finish_command(&p, id),
            release_command(&p),
        ] {
            let templ = cmd
                .replace(&id.hex(), "<ID>")
                .replace("hey-production", "<SERVICE>-<DESTINATION>")
                .replace(&format!("serial={}", p.serial), "serial=<SERIAL>");
            assert!(
                section.contains(&format!("   {templ}\n")),
                "docs/plan-format.md does not list:\n{templ}"
            );
        }
    }
}
