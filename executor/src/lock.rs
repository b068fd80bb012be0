//! The deploy lock's owner record: who runs (CI run or user), which plan, since when. The
//! record travels on stdin of the lock command and is shown when a held lock refuses a run.

use crate::plan::Sha256Digest;

/// The content of `<state dir>/lock/info`: `key=value` lines.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LockInfo {
    /// Who holds the lock (see [`actor`]).
    pub owner: String,
    /// The plan id (lower-case hex) being applied.
    pub plan: String,
    /// When it was taken (RFC 3339, UTC).
    pub time: String,
}

impl LockInfo {
    /// A record for `owner` applying plan `id` now.
    #[must_use]
    pub fn new(owner: &str, id: Sha256Digest, time: jiff::Timestamp) -> Self {
        Self {
            owner: owner.to_owned(),
            plan: id.hex(),
            time: time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }
    }

    /// The bytes written to the info file.
    #[must_use]
    pub fn encode(&self) -> String {
        format!(
            "owner={}\nplan={}\ntime={}\n",
            printable(&self.owner),
            printable(&self.plan),
            printable(&self.time)
        )
    }

    /// Parse an info file leniently (it may come from an older or foreign writer).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut info = Self::default();
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                let v = printable(v);
                match k {
                    "owner" => info.owner = v,
                    "plan" => info.plan = v,
                    "time" => info.time = v,
                    _ => {}
                }
            }
        }
        info
    }

    /// True if this is our own lock for the same plan (an interrupted run of ours).
    #[must_use]
    pub fn is_ours(&self, owner: &str, id: Sha256Digest) -> bool {
        self.owner == printable(owner) && self.plan == id.hex()
    }
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or = |s: &str| {
            if s.is_empty() {
                "?".to_owned()
            } else {
                s.to_owned()
            }
        };
        write!(
            f,
            "{} (plan sha256:{}, since {})",
            or(&self.owner),
            or(&self.plan),
            or(&self.time)
        )
    }
}

/// Printable ASCII only, so a record can never inject lines or terminal escapes.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// Who is running: the CI actor (`GITHUB_ACTOR`, GitLab's `GITLAB_USER_LOGIN` / `CI_*`) or
/// the local user, with the CI run id when there is one.
#[must_use]
pub fn actor() -> String {
    actor_from(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn actor_from(get: impl Fn(&str) -> Option<String>) -> String {
    if let Some(a) = get("GITHUB_ACTOR") {
        let run = get("GITHUB_RUN_ID").map_or_else(String::new, |r| format!(" run {r}"));
        return printable(&format!("github:{a}{run}"));
    }
    if get("CI").is_some() || get("CI_JOB_ID").is_some() {
        let who = get("GITLAB_USER_LOGIN")
            .or_else(|| get("CI_ACTOR"))
            .or_else(|| get("USER"))
            .unwrap_or_else(|| "unknown".into());
        let run = get("CI_JOB_ID")
            .or_else(|| get("CI_PIPELINE_ID"))
            .map_or_else(String::new, |r| format!(" job {r}"));
        return printable(&format!("ci:{who}{run}"));
    }
    let user = get("USER")
        .or_else(|| get("LOGNAME"))
        .unwrap_or_else(|| "unknown".into());
    printable(&format!("user:{user}"))
}

/// One host's answer to `lock status`.
#[derive(Debug)]
pub struct HostLock {
    /// Plan host name.
    pub host: String,
    /// The lock and state records, or why they could not be read.
    pub state: Result<crate::state::HostState, crate::Error>,
}

async fn connect_probed(
    plan: &crate::plan::Plan,
    name: &str,
    ssh: &crate::ssh::SshOptions,
) -> Result<crate::ssh::Connection, crate::Error> {
    use crate::Error;
    let host = plan.host(name).ok_or_else(|| Error::Protocol {
        host: name.to_owned(),
        message: "not declared in the plan".into(),
    })?;
    let jump = host.via.as_deref().and_then(|v| plan.host(v));
    let conn = crate::ssh::Connection::open(host, jump, ssh).await?;
    let probe = conn
        .exec(
            crate::state::PROBE_COMMAND,
            None,
            Some(std::time::Duration::from_secs(30)),
        )
        .await?;
    if probe.stdout != crate::state::PROBE_EXPECTED.as_bytes() {
        conn.close().await;
        return Err(Error::ShellNotPosix {
            host: name.to_owned(),
            seen: probe.status(),
        });
    }
    Ok(conn)
}

fn plan_hosts(plan: &crate::plan::Plan) -> Vec<String> {
    let mut names: Vec<String> = plan
        .phases
        .iter()
        .flat_map(|p| &p.hosts)
        .map(|h| h.host.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Read the lock and state of every host that has steps in `plan` (id `id`).
pub async fn status(
    plan: &crate::plan::Plan,
    id: Sha256Digest,
    ssh: &crate::ssh::SshOptions,
) -> Vec<HostLock> {
    let mut out = Vec::new();
    for name in plan_hosts(plan) {
        let state = async {
            let conn = connect_probed(plan, &name, ssh).await?;
            let res = conn
                .exec(
                    &crate::state::status_command(plan, id),
                    None,
                    Some(std::time::Duration::from_secs(60)),
                )
                .await?;
            conn.close().await;
            crate::state::parse_state(&name, &res.stdout, id)
        }
        .await;
        out.push(HostLock { host: name, state });
    }
    out
}

/// What `release` did on one host.
#[derive(Debug)]
pub enum Released {
    /// There was no lock.
    WasFree,
    /// Our own lock was released.
    Released(LockInfo),
    /// Someone else's lock was released with `force` (audited).
    Forced(LockInfo),
}

/// Release the lock on every host of `plan`: our own (same owner) always, another owner's
/// only with `force`. Each release appends a line to the host's audit log and a record to
/// `audit` (`lock.release` or `lock.release.force`).
pub async fn release(
    plan: &crate::plan::Plan,
    id: Sha256Digest,
    ssh: &crate::ssh::SshOptions,
    owner: &str,
    force: bool,
    audit: &mut crate::audit::AuditLog,
) -> Vec<(String, Result<Released, crate::Error>)> {
    use crate::state::LockState;
    let mut out = Vec::new();
    for name in plan_hosts(plan) {
        let r = async {
            let conn = connect_probed(plan, &name, ssh).await?;
            let res = conn
                .exec(
                    &crate::state::status_command(plan, id),
                    None,
                    Some(std::time::Duration::from_secs(60)),
                )
                .await?;
            let st = crate::state::parse_state(&name, &res.stdout, id)?;
            let LockState::Held(info) = st.lock else {
                conn.close().await;
                return Ok(Released::WasFree);
            };
            let mine = info.owner == printable(owner);
            if !mine && !force {
                conn.close().await;
                return Err(crate::Error::LockNotOwned {
                    host: name.clone(),
                    holder: info.to_string(),
                    owner: printable(owner),
                });
            }
            let what = if mine {
                "released own lock"
            } else {
                "FORCE-released lock"
            };
            let line = format!(
                "[{}] writ-exec lock release by {}: {what} held by {info}\n",
                crate::audit::now(),
                printable(owner)
            );
            {
                let mut rec = crate::audit::Record {
                    timestamp: crate::audit::now(),
                    action: if mine {
                        "lock.release"
                    } else {
                        "lock.release.force"
                    }
                    .into(),
                    outcome: Some("success".into()),
                    plan_id: id.hex(),
                    serial: plan.serial,
                    service: plan.service.clone(),
                    destination: plan.destination.clone(),
                    actor: printable(owner),
                    host: Some(name.clone()),
                    host_key: Some(conn.seen_fingerprint().to_owned()),
                    ..crate::audit::Record::default()
                };
                rec.command_sha256 =
                    Some(Sha256Digest::of(crate::state::release_command(plan).as_bytes()).hex());
                rec.message = Some(if mine {
                    format!("released own lock ({info})")
                } else {
                    format!("forced release of the lock held by {info}")
                });
                audit.append(&rec)?;
            }
            let done = conn
                .exec(
                    &crate::state::release_command(plan),
                    Some(line.as_bytes()),
                    Some(std::time::Duration::from_secs(60)),
                )
                .await?;
            conn.close().await;
            if !done.success() {
                return Err(crate::Error::Protocol {
                    host: name.clone(),
                    message: format!("lock release failed with {}", done.status()),
                });
            }
            Ok(if mine {
                Released::Released(info)
            } else {
                Released::Forced(info)
            })
        }
        .await;
        out.push((name, r));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn actor_prefers_ci_identity() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            actor_from(env(&[
                ("GITHUB_ACTOR", "alice"),
                ("GITHUB_RUN_ID", "7"),
                ("USER", "r")
            ])),
            "github:alice run 7"
        );
        assert_eq!(
            actor_from(env(&[
                ("CI", "1"),
                ("GITLAB_USER_LOGIN", "bob"),
                ("CI_JOB_ID", "9")
            ])),
            "ci:bob job 9"
        );
        assert_eq!(actor_from(env(&[("USER", "carol\n")])), "user:carol?");
    }

    #[test]
    fn info_round_trips_and_cannot_inject_lines() {
        let mut i = LockInfo::new(
            "user:x\nplan=evil",
            Sha256Digest([1; 32]),
            jiff::Timestamp::UNIX_EPOCH,
        );
        let parsed = LockInfo::parse(&i.encode());
        i.owner = "user:x?plan=evil".into();
        assert_eq!(parsed, i);
        assert!(parsed.is_ours("user:x\nplan=evil", Sha256Digest([1; 32])));
        assert!(!parsed.is_ours("user:y", Sha256Digest([1; 32])));
    }
}
