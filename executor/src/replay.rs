//! Replay of a verified plan: preflight on every host (connect with pinned keys, shell probe,
//! lock, chain check) before any step runs anywhere; then phases in order, hosts in parallel
//! (bounded) or rolling groups or primary first, steps in order on one connection per host;
//! on a failure or Ctrl-C no new step starts and in-flight steps finish; finally each host's
//! record, audit line and lock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Error;
use crate::audit::{self, AuditLog, Record};
use crate::lock::LockInfo;
use crate::plan::{Host, Plan, Sha256Digest, Strategy};
use crate::progress::{Event, Progress};
use crate::secrets::Secrets;
use crate::ssh::{Connection, LineChannel, SshOptions};
use crate::state::{self, Chain, LockState};
use crate::verify::VerifiedPlan;

/// Default cap on hosts in flight.
pub const DEFAULT_PARALLEL: usize = 10;
/// Lines of output kept for the failure report.
const TAIL_LINES: usize = 10;

/// How to run.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Authentication and connection timeouts.
    pub ssh: SshOptions,
    /// Hosts in flight at most (connections, and hosts of a parallel phase).
    pub parallel: usize,
    /// Limit for one step.
    pub step_timeout: Option<Duration>,
    /// Connect, check keys, lock and chain, and report what would run; change nothing.
    pub dry_run: bool,
    /// Run steps from this 1-based host step on even if recorded as completed (audited).
    pub restart_from_step: Option<usize>,
    /// Lock owner and audit actor.
    pub actor: String,
}

/// How one host ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostResult {
    /// Every step completed; the plan is recorded as applied there.
    Done,
    /// The host had already applied this plan; nothing ran.
    AlreadyApplied,
    /// A step failed.
    Failed {
        /// Phase.
        phase: String,
        /// 1-based host step.
        step: usize,
        /// The command (masked).
        command: String,
        /// `exit code N`, `connection lost …`.
        status: String,
        /// Last lines of output (masked).
        tail: Vec<String>,
    },
    /// The run stopped (failure elsewhere or Ctrl-C) before the host finished.
    Stopped,
    /// Dry run: what would happen.
    WouldRun,
}

/// One host's line in the final table.
#[derive(Clone, Debug)]
pub struct HostReport {
    /// Plan host name.
    pub host: String,
    /// Steps on the host.
    pub total: usize,
    /// Steps completed (now or by an earlier run).
    pub done: usize,
    /// Time spent on the host's steps.
    pub duration: Duration,
    /// Result.
    pub result: HostResult,
    /// Dry run: (step, phase, command, already completed).
    pub planned: Vec<(usize, String, String, bool)>,
}

/// The outcome of a run that got past preflight.
#[derive(Debug)]
pub struct Report {
    /// Per host, in plan order.
    pub hosts: Vec<HostReport>,
    /// Ctrl-C was pressed.
    pub interrupted: bool,
}

impl Report {
    /// The error to exit with, if the run did not succeed.
    #[must_use]
    pub fn error(&self) -> Option<Error> {
        for h in &self.hosts {
            if let HostResult::Failed {
                phase,
                step,
                command,
                status,
                ..
            } = &h.result
            {
                return Some(Error::StepFailed {
                    host: h.host.clone(),
                    phase: phase.clone(),
                    step: *step,
                    status: status.clone(),
                    command: command.lines().next().unwrap_or_default().to_owned(),
                });
            }
        }
        self.interrupted.then_some(Error::Interrupted)
    }

    /// The final table: host, steps done, duration, result; failures with their output tail.
    #[must_use]
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let width = self
            .hosts
            .iter()
            .map(|h| h.host.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:width$}  {:>9}  {:>9}  result\n",
            "host", "steps", "duration"
        );
        for h in &self.hosts {
            let result = match &h.result {
                HostResult::Done => "ok".to_owned(),
                HostResult::AlreadyApplied => "already applied".to_owned(),
                HostResult::Failed { step, status, .. } => {
                    format!("FAILED at step {step}: {status}")
                }
                HostResult::Stopped => "stopped before finishing".to_owned(),
                HostResult::WouldRun => "dry run".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:width$}  {:>9}  {:>9}  {result}",
                h.host,
                format!("{}/{}", h.done, h.total),
                crate::progress::fmt_duration(h.duration)
            );
        }
        for h in &self.hosts {
            if let HostResult::Failed {
                phase,
                step,
                command,
                status,
                tail,
            } = &h.result
            {
                let _ = writeln!(
                    out,
                    "\n{}: step {step} (phase {phase}) failed with {status}\n  $ {}",
                    h.host,
                    command.replace('\n', "\n  > ")
                );
                for l in tail {
                    let _ = writeln!(out, "  | {l}");
                }
            }
        }
        out
    }
}

struct Ctx {
    plan: Plan,
    id: Sha256Digest,
    signers: Vec<String>,
    secrets: Arc<Secrets>,
    opts: ApplyOptions,
    progress: Arc<Progress>,
    audit: Option<Mutex<AuditLog>>,
    stop: AtomicBool,
    interrupted: AtomicBool,
    gate: Semaphore,
    /// Per host: (phase index → offset of its first step), total steps.
    layout: BTreeMap<String, (BTreeMap<usize, usize>, usize)>,
}

struct HostRun {
    name: String,
    conn: Connection,
    recorder: tokio::sync::Mutex<Option<LineChannel>>,
    completed: BTreeSet<usize>,
    total: usize,
    status: Mutex<HostStatus>,
}

#[derive(Default)]
struct HostStatus {
    done: usize,
    duration: Duration,
    failure: Option<HostResult>,
}

impl Ctx {
    fn base_record(&self, action: &str) -> Record {
        Record {
            timestamp: audit::now(),
            action: action.to_owned(),
            plan_id: self.id.hex(),
            serial: self.plan.serial,
            service: self.plan.service.clone(),
            destination: self.plan.destination.clone(),
            actor: self.opts.actor.clone(),
            ..Record::default()
        }
    }

    fn audit(&self, record: &Record) -> Result<(), Error> {
        match &self.audit {
            Some(log) => log
                .lock()
                .map_err(|_| Error::Usage("audit log lock poisoned".into()))?
                .append(record),
            None => Ok(()),
        }
    }

    fn head(&self) -> String {
        self.audit
            .as_ref()
            .and_then(|a| a.lock().ok().map(|a| a.head().to_owned()))
            .unwrap_or_default()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Run one executor-protocol command on `conn` and audit it (invariant 1: the executor's
    /// own commands are documented verbatim and recorded).
    async fn protocol(
        &self,
        conn: &Connection,
        host: &str,
        what: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<crate::ssh::ExecOutput, Error> {
        let start = audit::now();
        let t0 = Instant::now();
        let out = conn
            .exec(command, stdin, Some(Duration::from_secs(60)))
            .await;
        let mut r = self.base_record("protocol");
        r.host = Some(host.to_owned());
        r.host_key = Some(conn.seen_fingerprint().to_owned());
        r.command_sha256 = Some(Sha256Digest::of(command.as_bytes()).hex());
        r.start = Some(start);
        r.duration_ms = Some(millis(t0.elapsed()));
        r.message = Some(what.to_owned());
        match &out {
            Ok(o) => {
                r.exit_code = o.exit;
                r.outcome = Some(if o.success() { "success" } else { "failure" }.into());
            }
            Err(e) => {
                r.outcome = Some("failure".into());
                r.message = Some(self.secrets.mask_str(&format!("{what}: {e}")));
            }
        }
        self.audit(&r)?;
        out
    }

    /// Release this run's lock on `host`, appending `note` to the host's audit log. Best
    /// effort: it runs on paths that already end in an error, which is what gets reported.
    async fn release(&self, conn: &Connection, host: &str, plan: &Plan, note: &str) {
        let line = host_line(self, note);
        let _ = self
            .protocol(
                conn,
                host,
                "release",
                &state::release_command(plan),
                Some(line.as_bytes()),
            )
            .await;
    }
}

/// Apply `plan`: see the module docs. `audit` is `None` only for a dry run. Errors from
/// preflight (key, shell, lock, chain, connection) mean nothing ran on any host; otherwise the
/// [`Report`] says what ran, and [`Report::error`] whether it failed.
pub async fn apply(
    plan: &VerifiedPlan,
    secrets: Arc<Secrets>,
    opts: ApplyOptions,
    progress: Arc<Progress>,
    audit: Option<AuditLog>,
) -> Result<Report, Error> {
    let signers = plan
        .signers()
        .iter()
        .map(|s| format!("{} {}", s.principal, s.fingerprint))
        .collect();
    run(
        plan.plan().clone(),
        plan.id(),
        signers,
        secrets,
        opts,
        progress,
        audit,
    )
    .await
}

fn layout(plan: &Plan) -> BTreeMap<String, (BTreeMap<usize, usize>, usize)> {
    let mut out: BTreeMap<String, (BTreeMap<usize, usize>, usize)> = BTreeMap::new();
    for (pi, phase) in plan.phases.iter().enumerate() {
        for hs in &phase.hosts {
            let entry = out.entry(hs.host.clone()).or_default();
            entry.0.insert(pi, entry.1);
            entry.1 += hs.steps.len();
        }
    }
    out
}

/// The run itself, on a decoded plan (the public entry point takes a [`VerifiedPlan`]).
pub(crate) async fn run(
    plan: Plan,
    id: Sha256Digest,
    signers: Vec<String>,
    secrets: Arc<Secrets>,
    opts: ApplyOptions,
    progress: Arc<Progress>,
    audit: Option<AuditLog>,
) -> Result<Report, Error> {
    let ctx = Arc::new(Ctx {
        layout: layout(&plan),
        gate: Semaphore::new(opts.parallel.max(1)),
        plan,
        id,
        signers,
        secrets,
        opts,
        progress,
        audit: audit.map(Mutex::new),
        stop: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
    });
    let started = Instant::now();
    if !ctx.opts.dry_run {
        let mut r = ctx.base_record("run.start");
        r.signers.clone_from(&ctx.signers);
        r.message = Some(format!("operation {}", ctx.plan.operation));
        ctx.audit(&r)?;
        if let Some(n) = ctx.opts.restart_from_step {
            let mut r = ctx.base_record("run.restart_from_step");
            r.message = Some(format!(
                "operator restarts every host from step {n}: steps recorded as completed from there on run again"
            ));
            ctx.audit(&r)?;
        }
    }
    let watcher = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                ctx.interrupted.store(true, Ordering::SeqCst);
                ctx.stop.store(true, Ordering::SeqCst);
                ctx.progress
                    .line("interrupted: letting in-flight steps finish, starting nothing new");
            }
        })
    };
    let result = run_inner(&ctx).await;
    watcher.abort();
    if !ctx.opts.dry_run {
        let mut r = ctx.base_record("run.end");
        r.duration_ms = Some(millis(started.elapsed()));
        match &result {
            Ok(report) => match report.error() {
                None => r.outcome = Some("success".into()),
                Some(e) => {
                    r.outcome = Some("failure".into());
                    r.message = Some(ctx.secrets.mask_str(&e.to_string()));
                }
            },
            Err(e) => {
                r.outcome = Some("failure".into());
                r.message = Some(ctx.secrets.mask_str(&e.to_string()));
            }
        }
        ctx.audit(&r)?;
        if let Some(a) = &ctx.audit
            && let Ok(mut a) = a.lock()
        {
            a.sync()?;
        }
    }
    result
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

enum Prepared {
    Run(Arc<HostRun>),
    Skip(Connection),
    DryRun(Connection, BTreeSet<usize>, bool),
}

async fn run_inner(ctx: &Arc<Ctx>) -> Result<Report, Error> {
    // Preflight every host with steps, bounded, before any step runs anywhere.
    let mut set = JoinSet::new();
    for name in ctx.layout.keys() {
        let ctx = ctx.clone();
        let name = name.clone();
        set.spawn(async move {
            let permit = ctx.gate.acquire().await;
            let r = preflight(&ctx, &name).await;
            drop(permit);
            (name, r)
        });
    }
    let mut prepared = BTreeMap::new();
    let mut failures = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let (name, r) = joined.map_err(|e| Error::Usage(format!("host task failed: {e}")))?;
        match r {
            Ok(p) => {
                prepared.insert(name, p);
            }
            Err(e) => {
                ctx.progress.event(
                    &name,
                    &Event::Note {
                        message: &ctx.secrets.mask_str(&format!("refused: {e}")),
                    },
                );
                failures.insert(name, e);
            }
        }
    }
    if let Some((first, _)) = failures.iter().next() {
        let first = first.clone();
        // Nothing ran: give back the locks we took and stop.
        for p in prepared.into_values() {
            match p {
                Prepared::Run(h) => {
                    release(
                        ctx,
                        &h,
                        "refused before any step ran: another host failed preflight",
                    )
                    .await;
                    if let Ok(h) = Arc::try_unwrap(h) {
                        h.conn.close().await;
                    }
                }
                Prepared::Skip(conn) | Prepared::DryRun(conn, ..) => conn.close().await,
            }
        }
        for (name, e) in &failures {
            let mut r = ctx.base_record("host.refused");
            r.host = Some(name.clone());
            r.outcome = Some("failure".into());
            r.message = Some(ctx.secrets.mask_str(&e.to_string()));
            if !ctx.opts.dry_run {
                ctx.audit(&r)?;
            }
        }
        return Err(failures
            .remove(&first)
            .unwrap_or_else(|| Error::Usage("preflight failed".into())));
    }

    if ctx.opts.dry_run {
        let mut hosts = Vec::new();
        for (name, p) in prepared {
            let (conn, completed, already) = match p {
                Prepared::DryRun(c, done, already) => (c, done, already),
                Prepared::Run(_) | Prepared::Skip(_) => continue,
            };
            conn.close().await;
            let total = ctx.layout.get(&name).map_or(0, |l| l.1);
            let mut planned = Vec::new();
            let mut n = 0;
            for phase in &ctx.plan.phases {
                for hs in phase.hosts.iter().filter(|h| h.host == name) {
                    for step in &hs.steps {
                        n += 1;
                        planned.push((
                            n,
                            phase.name.clone(),
                            step.command.clone(),
                            already || completed.contains(&n),
                        ));
                    }
                }
            }
            hosts.push(HostReport {
                done: if already { total } else { completed.len() },
                host: name,
                total,
                duration: Duration::ZERO,
                result: if already {
                    HostResult::AlreadyApplied
                } else {
                    HostResult::WouldRun
                },
                planned,
            });
        }
        return Ok(Report {
            hosts,
            interrupted: false,
        });
    }

    let mut runs: BTreeMap<String, Arc<HostRun>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (name, p) in prepared {
        match p {
            Prepared::Run(h) => {
                runs.insert(name, h);
            }
            Prepared::Skip(conn) => {
                conn.close().await;
                skipped.push(name);
            }
            Prepared::DryRun(..) => {}
        }
    }

    for (pi, phase) in ctx.plan.phases.iter().enumerate() {
        if ctx.stopping() {
            break;
        }
        let hosts: Vec<Arc<HostRun>> = phase
            .hosts
            .iter()
            .filter_map(|hs| runs.get(&hs.host).cloned())
            .collect();
        if hosts.is_empty() {
            continue;
        }
        ctx.progress.line(&format!(
            "phase {} ({} hosts, {})",
            phase.name,
            hosts.len(),
            match phase.strategy {
                Strategy::Parallel => "parallel".to_owned(),
                Strategy::PrimaryFirst => "primary first".to_owned(),
                Strategy::Rolling { limit, wait } =>
                    format!("rolling, {limit} at a time, {wait}s between groups"),
            }
        ));
        match phase.strategy {
            Strategy::Parallel => run_group(ctx, pi, &hosts).await,
            Strategy::PrimaryFirst => {
                run_group(ctx, pi, &hosts[..1]).await;
                if !ctx.stopping() {
                    run_group(ctx, pi, &hosts[1..]).await;
                }
            }
            Strategy::Rolling { limit, wait } => {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
                for (gi, group) in hosts.chunks(limit).enumerate() {
                    if ctx.stopping() {
                        break;
                    }
                    if gi > 0 {
                        let until = Instant::now() + Duration::from_secs(u64::from(wait));
                        while Instant::now() < until && !ctx.stopping() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        if ctx.stopping() {
                            break;
                        }
                    }
                    run_group(ctx, pi, group).await;
                }
            }
        }
    }

    // Finish every host: record + release when complete, else release and keep progress.
    let mut set = JoinSet::new();
    for h in runs.values() {
        let ctx = ctx.clone();
        let h = h.clone();
        set.spawn(async move {
            let permit = ctx.gate.acquire().await;
            finish(&ctx, &h).await;
            drop(permit);
        });
    }
    while set.join_next().await.is_some() {}

    let mut hosts = Vec::new();
    for name in ctx.layout.keys() {
        let total = ctx.layout.get(name).map_or(0, |l| l.1);
        if skipped.contains(name) {
            hosts.push(HostReport {
                host: name.clone(),
                total,
                done: total,
                duration: Duration::ZERO,
                result: HostResult::AlreadyApplied,
                planned: Vec::new(),
            });
            continue;
        }
        let Some(h) = runs.get(name) else { continue };
        let Ok(st) = h.status.lock() else { continue };
        let result = match &st.failure {
            Some(f) => f.clone(),
            None if st.done == h.total => HostResult::Done,
            None => HostResult::Stopped,
        };
        hosts.push(HostReport {
            host: name.clone(),
            total: h.total,
            done: st.done,
            duration: st.duration,
            result,
            planned: Vec::new(),
        });
    }
    for h in runs.into_values() {
        if let Some(rec) = h.recorder.lock().await.take() {
            rec.finish().await;
        }
        if let Ok(h) = Arc::try_unwrap(h) {
            h.conn.close().await;
        }
    }
    Ok(Report {
        hosts,
        interrupted: ctx.interrupted.load(Ordering::SeqCst),
    })
}

async fn preflight(ctx: &Arc<Ctx>, name: &str) -> Result<Prepared, Error> {
    let plan = &ctx.plan;
    let host = plan.host(name).ok_or_else(|| Error::Protocol {
        host: name.to_owned(),
        message: "not declared in the plan".into(),
    })?;
    let jump: Option<&Host> = match &host.via {
        Some(v) => Some(plan.host(v).ok_or_else(|| Error::Protocol {
            host: name.to_owned(),
            message: format!("jump host `{v}` is not declared"),
        })?),
        None => None,
    };
    let conn = Connection::open(host, jump, &ctx.opts.ssh).await?;
    ctx.progress.event(
        name,
        &Event::Connected {
            fingerprint: conn.seen_fingerprint(),
            steps: ctx.layout.get(name).map_or(0, |l| l.1),
        },
    );
    // Shell probe: before anything else runs on the host.
    let probe = ctx
        .protocol(&conn, name, "shell probe", state::PROBE_COMMAND, None)
        .await?;
    if probe.exit != Some(0) || probe.stdout != state::PROBE_EXPECTED.as_bytes() {
        let out = String::from_utf8_lossy(&probe.stdout);
        let err = String::from_utf8_lossy(&probe.stderr);
        let first_err = err.lines().next().unwrap_or_default();
        conn.close().await;
        return Err(Error::ShellNotPosix {
            host: name.to_owned(),
            seen: format!(
                "{}, stdout {:?}{}",
                probe.status(),
                out.chars().take(60).collect::<String>(),
                if first_err.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", stderr {:?}",
                        first_err.chars().take(80).collect::<String>()
                    )
                }
            ),
        });
    }
    let (cmd, stdin) = if ctx.opts.dry_run {
        (state::status_command(plan, ctx.id), None)
    } else {
        let info = LockInfo::new(&ctx.opts.actor, ctx.id, jiff::Timestamp::now());
        (state::acquire_command(plan, ctx.id), Some(info.encode()))
    };
    let out = ctx
        .protocol(
            &conn,
            name,
            "lock and state",
            &cmd,
            stdin.as_deref().map(str::as_bytes),
        )
        .await?;
    if !out.success() {
        conn.close().await;
        return Err(Error::Protocol {
            host: name.to_owned(),
            message: format!(
                "the lock/state command failed with {}: {}",
                out.status(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or_default()
            ),
        });
    }
    let st = state::parse_state(name, &out.stdout, ctx.id)?;
    let ours = match &st.lock {
        LockState::Acquired => true,
        LockState::Free => false,
        LockState::Held(info) if info.is_ours(&ctx.opts.actor, ctx.id) => {
            ctx.progress.event(
                name,
                &Event::Note {
                    message: "resuming: the lock is ours, from an interrupted run of this plan",
                },
            );
            !ctx.opts.dry_run
        }
        LockState::Held(info) => {
            conn.close().await;
            return Err(Error::LockHeld {
                host: name.to_owned(),
                holder: info.to_string(),
            });
        }
    };
    let total = ctx.layout.get(name).map_or(0, |l| l.1);
    let chain = match state::check_chain(name, plan, ctx.id, st.applied) {
        Ok(c) => c,
        Err(e) => {
            if ours {
                ctx.release(&conn, name, plan, &format!("refused: {e}"))
                    .await;
            }
            conn.close().await;
            return Err(e);
        }
    };
    let mut completed = st.completed;
    if let Some(n) = ctx.opts.restart_from_step {
        completed.retain(|s| *s < n);
    }
    if ctx.opts.dry_run {
        return Ok(Prepared::DryRun(
            conn,
            completed,
            chain == Chain::AlreadyApplied,
        ));
    }
    if chain == Chain::AlreadyApplied {
        ctx.release(&conn, name, plan, "already applied; nothing ran")
            .await;
        ctx.progress.event(
            name,
            &Event::HostEnd {
                result: "already applied",
            },
        );
        return Ok(Prepared::Skip(conn));
    }
    let recorder_command = state::recorder_command(plan);
    let recorder = match conn.open_line_channel(&recorder_command).await {
        Ok(r) => r,
        Err(e) => {
            ctx.release(&conn, name, plan, &format!("refused: {e}"))
                .await;
            conn.close().await;
            return Err(e);
        }
    };
    let mut r = ctx.base_record("protocol");
    r.host = Some(name.to_owned());
    r.host_key = Some(conn.seen_fingerprint().to_owned());
    r.command_sha256 = Some(Sha256Digest::of(recorder_command.as_bytes()).hex());
    r.message = Some("progress recorder started".into());
    ctx.audit(&r)?;
    let done = completed.len();
    Ok(Prepared::Run(Arc::new(HostRun {
        name: name.to_owned(),
        conn,
        recorder: tokio::sync::Mutex::new(Some(recorder)),
        completed,
        total,
        status: Mutex::new(HostStatus {
            done,
            ..HostStatus::default()
        }),
    })))
}

/// One summary line for the host's audit log (Kamal's `.kamal/…-audit.log`).
fn host_line(ctx: &Ctx, what: &str) -> String {
    let text = format!(
        "[{}] writ-exec {} plan sha256:{} serial {} operation \"{}\" by {}: {} (local audit head {})",
        audit::now(),
        ctx.plan.destination,
        ctx.id.hex(),
        ctx.plan.serial,
        ctx.plan.operation,
        ctx.opts.actor,
        what,
        ctx.head()
    );
    let masked = ctx.secrets.mask_str(&text);
    let mut line: String = masked
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    line.push('\n');
    line
}

async fn run_group(ctx: &Arc<Ctx>, pi: usize, hosts: &[Arc<HostRun>]) {
    let mut set = JoinSet::new();
    for h in hosts {
        let ctx = ctx.clone();
        let h = h.clone();
        set.spawn(async move {
            let permit = ctx.gate.acquire().await;
            run_host_phase(&ctx, &h, pi).await;
            drop(permit);
        });
    }
    while set.join_next().await.is_some() {}
}

async fn run_host_phase(ctx: &Arc<Ctx>, h: &Arc<HostRun>, pi: usize) {
    let phase = &ctx.plan.phases[pi];
    let Some(hs) = phase.hosts.iter().find(|x| x.host == h.name) else {
        return;
    };
    let offset = ctx
        .layout
        .get(&h.name)
        .and_then(|l| l.0.get(&pi).copied())
        .unwrap_or(0);
    for (k, step) in hs.steps.iter().enumerate() {
        let n = offset + k + 1;
        if h.completed.contains(&n) {
            ctx.progress.event(
                &h.name,
                &Event::StepSkipped {
                    step: n,
                    total: h.total,
                },
            );
            continue;
        }
        if ctx.stopping() {
            return;
        }
        let shown = ctx.secrets.mask_str(&step.command);
        ctx.progress.event(
            &h.name,
            &Event::StepStart {
                step: n,
                total: h.total,
                phase: &phase.name,
                command: &shown,
            },
        );
        let start_ts = audit::now();
        let t0 = Instant::now();
        let outcome = match step
            .stdin
            .as_ref()
            .map(|s| ctx.secrets.stdin_bytes(s))
            .transpose()
        {
            Err(e) => Err(e),
            Ok(stdin) => {
                h.conn
                    .exec(
                        &step.command,
                        stdin.as_ref().map(|b| b.as_slice()),
                        ctx.opts.step_timeout,
                    )
                    .await
            }
        };
        let elapsed = t0.elapsed();
        let mut rec = ctx.base_record("step");
        rec.host = Some(h.name.clone());
        rec.host_key = Some(h.conn.seen_fingerprint().to_owned());
        rec.phase = Some(phase.name.clone());
        rec.step = Some(n);
        rec.command_sha256 = Some(Sha256Digest::of(step.command.as_bytes()).hex());
        rec.start = Some(start_ts);
        rec.duration_ms = Some(millis(elapsed));
        let failure = match outcome {
            Ok(out) if out.success() => {
                // Durable progress before the next step: the recorder answers once written.
                let mut guard = h.recorder.lock().await;
                let recorded = match guard.as_mut() {
                    Some(r) => r.send(&state::progress_line(ctx.id, n)).await,
                    None => Err(Error::Protocol {
                        host: h.name.clone(),
                        message: "progress recorder missing".into(),
                    }),
                };
                drop(guard);
                rec.exit_code = out.exit;
                match recorded {
                    Ok(()) => None,
                    Err(e) => Some((format!("completed, but {e}"), Vec::new())),
                }
            }
            Ok(out) => {
                rec.exit_code = out.exit;
                let status = out.status();
                let mut text = out.stdout.clone();
                if !text.is_empty() && !text.ends_with(b"\n") {
                    text.push(b'\n');
                }
                text.extend_from_slice(&out.stderr);
                let masked = ctx.secrets.mask(&text);
                let text = String::from_utf8_lossy(&masked);
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(TAIL_LINES)..]
                    .iter()
                    .map(|l| {
                        l.chars()
                            .map(|c| if c.is_control() { '?' } else { c })
                            .collect()
                    })
                    .collect();
                Some((status, tail))
            }
            Err(e) => Some((ctx.secrets.mask_str(&e.to_string()), Vec::new())),
        };
        rec.outcome = Some(
            if failure.is_none() {
                "success"
            } else {
                "failure"
            }
            .into(),
        );
        if let Err(e) = ctx.audit(&rec) {
            ctx.stop.store(true, Ordering::SeqCst);
            record_failure(h, phase, n, &shown, format!("audit log: {e}"), Vec::new());
            return;
        }
        match failure {
            None => {
                if let Ok(mut st) = h.status.lock() {
                    st.done += 1;
                    st.duration += elapsed;
                }
                ctx.progress.event(
                    &h.name,
                    &Event::StepEnd {
                        step: n,
                        total: h.total,
                        status: "ok",
                        duration: elapsed,
                    },
                );
            }
            Some((status, tail)) => {
                ctx.stop.store(true, Ordering::SeqCst);
                ctx.progress.event(
                    &h.name,
                    &Event::StepEnd {
                        step: n,
                        total: h.total,
                        status: &status,
                        duration: elapsed,
                    },
                );
                if let Ok(mut st) = h.status.lock() {
                    st.duration += elapsed;
                }
                record_failure(h, phase, n, &shown, status, tail);
                return;
            }
        }
    }
}

fn record_failure(
    h: &HostRun,
    phase: &crate::plan::Phase,
    step: usize,
    command: &str,
    status: String,
    tail: Vec<String>,
) {
    if let Ok(mut st) = h.status.lock() {
        st.failure = Some(HostResult::Failed {
            phase: phase.name.clone(),
            step,
            command: command.to_owned(),
            status,
            tail,
        });
    }
}

async fn finish(ctx: &Arc<Ctx>, h: &Arc<HostRun>) {
    if let Some(rec) = h.recorder.lock().await.take() {
        rec.finish().await;
    }
    let (done, failed) = match h.status.lock() {
        Ok(st) => (st.done, st.failure.is_some()),
        Err(_) => (0, true),
    };
    let complete = done == h.total && !failed;
    let result = if complete {
        let line = host_line(ctx, &format!("applied, {done}/{} steps", h.total));
        ctx.protocol(
            &h.conn,
            &h.name,
            "finish",
            &state::finish_command(&ctx.plan, ctx.id),
            Some(line.as_bytes()),
        )
        .await
    } else {
        let what = if failed { "failed" } else { "stopped" };
        let line = host_line(ctx, &format!("{what} after {done}/{} steps", h.total));
        ctx.protocol(
            &h.conn,
            &h.name,
            "release",
            &state::release_command(&ctx.plan),
            Some(line.as_bytes()),
        )
        .await
    };
    let note = match result {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "could not record the result and release the lock: {}",
            out.status()
        )),
        Err(e) => Some(format!(
            "could not record the result and release the lock: {e}"
        )),
    };
    if let Some(n) = note {
        ctx.progress.event(&h.name, &Event::Note { message: &n });
    }
    let result = if complete {
        "ok"
    } else if failed {
        "failed"
    } else {
        "stopped"
    };
    ctx.progress.event(&h.name, &Event::HostEnd { result });
}

async fn release(ctx: &Arc<Ctx>, h: &Arc<HostRun>, why: &str) {
    if let Some(rec) = h.recorder.lock().await.take() {
        rec.finish().await;
    }
    let line = host_line(ctx, why);
    let _ = ctx
        .protocol(
            &h.conn,
            &h.name,
            "release",
            &state::release_command(&ctx.plan),
            Some(line.as_bytes()),
        )
        .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn host(name: &str, result: HostResult) -> HostReport {
        HostReport {
            host: name.into(),
            total: 3,
            done: 1,
            duration: Duration::from_millis(1500),
            result,
            planned: Vec::new(),
        }
    }

    #[test]
    fn report_names_the_failing_host_step_and_status() {
        let report = Report {
            hosts: vec![
                host("web-1", HostResult::Stopped),
                host(
                    "web-2",
                    HostResult::Failed {
                        phase: "boot".into(),
                        step: 2,
                        command: "docker run x\nsecond line".into(),
                        status: "exit code 125".into(),
                        tail: vec!["no such image".into()],
                    },
                ),
            ],
            interrupted: true,
        };
        let e = report.error().unwrap();
        assert_eq!(e.exit_code(), 20);
        assert_eq!(
            e.to_string(),
            "host `web-2`: step 2 in phase `boot` failed with exit code 125: docker run x"
        );
        let table = report.table();
        assert!(
            table.contains("web-1        1/3      1.50s  stopped before finishing"),
            "{table}"
        );
        assert!(table.contains("FAILED at step 2: exit code 125"), "{table}");
        assert!(
            table.contains("  $ docker run x\n  > second line\n  | no such image"),
            "{table}"
        );
        let ok = Report {
            hosts: vec![host("a", HostResult::Done)],
            interrupted: true,
        };
        assert_eq!(ok.error().unwrap().exit_code(), 21);
        let ok = Report {
            hosts: vec![host("a", HostResult::Done)],
            interrupted: false,
        };
        assert!(ok.error().is_none());
    }

    #[test]
    fn layout_numbers_host_steps_across_phases() {
        let plan = crate::plan::tests::sample();
        let l = layout(&plan);
        // web-1: 2 steps in phase 0, 1 in phase 1 (numbered 3); web-2: 1 step in phase 1.
        assert_eq!(l["web-1"].0, [(0, 0), (1, 2)].into());
        assert_eq!(l["web-1"].1, 3);
        assert_eq!(l["web-2"].0, [(1, 0)].into());
    }
}
