//! `writ-exec apply`: verify the plan, resolve its secrets, then replay it over SSH (or, with
//! `--dry-run`, connect and check everything and show what would run).
#![allow(clippy::print_stdout, reason = "the CLI edge prints the report")]

use std::io::IsTerminal as _;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use writ_exec::Error;
use writ_exec::audit::AuditLog;
use writ_exec::progress::{Mode, Progress};
use writ_exec::replay::{self, ApplyOptions, HostResult};
use writ_exec::secrets::{SecretSource, Secrets};
use writ_exec::ssh::SshOptions;
use writ_exec::verify::VerifiedPlan;
use zeroize::Zeroizing;

/// The trust inputs: which plan, who may sign it, how many must, for which destination.
#[derive(clap::Args, Debug)]
pub struct TrustArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// OpenSSH allowed_signers file: the executor's trust policy.
    #[arg(long, env = "WRIT_ALLOWED_SIGNERS")]
    pub allowed_signers: PathBuf,
    /// Distinct principals that must have signed.
    #[arg(long, env = "WRIT_THRESHOLD")]
    pub threshold: NonZeroUsize,
    /// The destination this executor deploys to; the plan must name it.
    #[arg(long, env = "WRIT_DESTINATION")]
    pub destination: String,
    /// Directory of `.sig` files [default: PLAN.sigs/].
    #[arg(long)]
    pub signatures: Option<PathBuf>,
}

impl TrustArgs {
    /// Verify the plan (no connection is opened before this succeeds).
    pub fn verify(&self) -> Result<VerifiedPlan, Error> {
        let signers = writ_exec::allowed_signers::AllowedSigners::load(&self.allowed_signers)?;
        let policy = writ_exec::trust::Policy::new(signers, self.threshold, &self.destination)?;
        let sigs = self
            .signatures
            .clone()
            .unwrap_or_else(|| writ_exec::signature::signatures_dir(&self.plan));
        writ_exec::verify::verify_file(&self.plan, &sigs, &policy, jiff::Timestamp::now())
    }
}

/// How to reach and authenticate to hosts.
#[derive(clap::Args, Debug)]
pub struct SshArgs {
    /// OpenSSH private key to authenticate with (passphrase from WRIT_IDENTITY_PASSPHRASE or a
    /// prompt). Without it, keys of the ssh-agent at SSH_AUTH_SOCK are used.
    #[arg(long, short = 'i', env = "WRIT_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Do not use the ssh-agent even if SSH_AUTH_SOCK is set.
    #[arg(long)]
    pub no_agent: bool,
    /// Seconds allowed for connect, key exchange and authentication.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub connect_timeout: u64,
    /// Seconds between SSH keepalives (three missed drop the connection).
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub keepalive: u64,
}

impl SshArgs {
    /// Load the identity (asking for its passphrase if needed) and the agent socket.
    pub fn options(&self) -> Result<SshOptions, Error> {
        let identity = match &self.identity {
            None => None,
            Some(path) => {
                let passphrase = if SshOptions::identity_is_encrypted(path) {
                    Some(passphrase_for(path)?)
                } else {
                    None
                };
                Some(Arc::new(SshOptions::load_identity(
                    path,
                    passphrase.as_ref(),
                )?))
            }
        };
        let agent = if self.no_agent {
            None
        } else {
            std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        Ok(SshOptions {
            identity,
            identity_path: self.identity.clone(),
            agent,
            connect_timeout: Duration::from_secs(self.connect_timeout.max(1)),
            keepalive: Duration::from_secs(self.keepalive.max(1)),
        })
    }
}

fn passphrase_for(path: &std::path::Path) -> Result<Zeroizing<String>, Error> {
    if let Some(p) = std::env::var_os("WRIT_IDENTITY_PASSPHRASE") {
        return Ok(Zeroizing::new(p.to_string_lossy().into_owned()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Identity {
            path: path.to_owned(),
            message:
                "the key is encrypted and there is no terminal to ask: set WRIT_IDENTITY_PASSPHRASE"
                    .into(),
        });
    }
    rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
        .map(Zeroizing::new)
        .map_err(|e| Error::Identity {
            path: path.to_owned(),
            message: format!("cannot read the passphrase: {e}"),
        })
}

/// Arguments of `writ-exec apply`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    ssh: SshArgs,
    /// Hosts in flight at most.
    #[arg(long, default_value_t = replay::DEFAULT_PARALLEL)]
    parallel: usize,
    /// Seconds one step may take before it counts as failed.
    #[arg(long, value_name = "SECS")]
    step_timeout: Option<u64>,
    /// Read secrets from this dotenv file (parsed, never executed) instead of the environment.
    #[arg(long, conflicts_with = "secrets_command")]
    secrets_file: Option<PathBuf>,
    /// Get each secret from this command, `{name}` replaced by the secret's name, e.g.
    /// 'op read op://deploy/{name}/password' (split on spaces, no shell).
    #[arg(long)]
    secrets_command: Option<String>,
    /// Audit log (JSON Lines, hash-chained).
    #[arg(long, default_value = ".writ/audit.jsonl")]
    audit: PathBuf,
    /// Machine-readable JSON events on stdout.
    #[arg(long)]
    json: bool,
    /// Verify, connect, check keys, lock and chain; print what would run; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run every host's steps from step N (1-based) even if an earlier run completed them
    /// (audited).
    #[arg(long, value_name = "N")]
    restart_from_step: Option<NonZeroUsize>,
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "the dispatcher hands over the parsed arguments"
)]
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let verified = args.trust.verify()?;
    let plan = verified.plan();
    let source = match (&args.secrets_file, &args.secrets_command) {
        (Some(f), _) => SecretSource::File(f.clone()),
        (None, Some(c)) => SecretSource::Command(c.clone()),
        (None, None) => SecretSource::Env,
    };
    // Every secret is resolved before the first connection.
    let secrets = Arc::new(Secrets::resolve(&plan.secrets(), &source)?);
    secrets.check_plan(plan)?;
    let ssh = args.ssh.options()?;
    let audit = if args.dry_run {
        None
    } else {
        Some(AuditLog::open(&args.audit)?)
    };
    let mode = if args.json {
        Mode::Json
    } else if std::io::stderr().is_terminal() {
        Mode::Tty
    } else {
        Mode::Plain
    };
    let sink: Box<dyn std::io::Write + Send> = if args.json {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::stderr())
    };
    let progress = Arc::new(Progress::new(mode, sink));
    let opts = ApplyOptions {
        ssh,
        parallel: args.parallel.max(1),
        step_timeout: args.step_timeout.map(Duration::from_secs),
        dry_run: args.dry_run,
        restart_from_step: args.restart_from_step.map(NonZeroUsize::get),
        actor: writ_exec::lock::actor(),
    };
    progress.line(&format!(
        "plan {} serial {} ({} {} on {}), signed by {}",
        verified.id(),
        plan.serial,
        plan.operation,
        plan.service,
        plan.destination,
        verified
            .signers()
            .iter()
            .map(|s| format!("{} ({})", s.principal, s.fingerprint))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(replay::apply(
        &verified,
        secrets.clone(),
        opts,
        progress,
        audit,
    ))?;
    if args.json {
        let hosts: Vec<serde_json::Value> = report
            .hosts
            .iter()
            .map(|h| {
                serde_json::json!({
                    "host": h.host, "steps": h.total, "done": h.done,
                    "duration_ms": u64::try_from(h.duration.as_millis()).unwrap_or(u64::MAX),
                    "result": match &h.result {
                        HostResult::Done => "ok",
                        HostResult::AlreadyApplied => "already_applied",
                        HostResult::Failed { .. } => "failed",
                        HostResult::Stopped => "stopped",
                        HostResult::WouldRun => "dry_run",
                    },
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"event": "summary", "hosts": hosts, "dry_run": args.dry_run})
        );
    } else {
        if args.dry_run {
            for h in &report.hosts {
                println!(
                    "{} ({}):",
                    h.host,
                    match h.result {
                        HostResult::AlreadyApplied => "already applied, nothing would run",
                        _ => "lock free or ours, chain ok",
                    }
                );
                for (n, phase, command, done) in &h.planned {
                    let mark = if *done { "skip (done)" } else { "would run" };
                    println!(
                        "  [{n}] {phase}: {mark}: {}",
                        secrets.mask_str(command).replace('\n', "\n      > ")
                    );
                }
            }
        }
        print!("{}", report.table());
    }
    match report.error() {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(e.into()),
    }
}
