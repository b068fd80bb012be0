//! `writ-exec lock status|release`: show or release the deploy lock on a verified plan's hosts.
#![allow(clippy::print_stdout, reason = "the CLI edge prints the report")]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use writ_exec::lock::Released;
use writ_exec::state::LockState;

use super::apply::{SshArgs, TrustArgs};

/// `writ-exec lock` subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Show who holds the lock and what each host applied last.
    Status {
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        ssh: SshArgs,
    },
    /// Release the lock: your own always; another owner's only with --force (audited).
    Release {
        #[command(flatten)]
        trust: TrustArgs,
        #[command(flatten)]
        ssh: SshArgs,
        /// Release a lock held by someone else (recorded in the audit logs).
        #[arg(long)]
        force: bool,
        /// Audit log (JSON Lines, hash-chained).
        #[arg(long, default_value = ".writ/audit.jsonl")]
        audit: PathBuf,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Status { trust, ssh } => {
            let verified = trust.verify()?;
            let ssh = ssh.options()?;
            let rows = runtime()?.block_on(writ_exec::lock::status(
                verified.plan(),
                verified.id(),
                &ssh,
            ));
            let mut first_err = None;
            for row in rows {
                match row.state {
                    Ok(st) => {
                        let lock = match st.lock {
                            LockState::Held(info) => format!("held by {info}"),
                            LockState::Free | LockState::Acquired => "free".into(),
                        };
                        let applied = st
                            .applied
                            .map_or_else(|| "nothing applied".into(), |a| format!("applied {a}"));
                        println!("{}: lock {lock}; {applied}", row.host);
                    }
                    Err(e) => {
                        println!("{}: error: {e}", row.host);
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                None => Ok(ExitCode::SUCCESS),
                Some(e) => Err(e.into()),
            }
        }
        Command::Release {
            trust,
            ssh,
            force,
            audit,
        } => {
            let verified = trust.verify()?;
            let ssh = ssh.options()?;
            let mut log = writ_exec::audit::AuditLog::open(&audit)?;
            let owner = writ_exec::lock::actor();
            let rows = runtime()?.block_on(writ_exec::lock::release(
                verified.plan(),
                verified.id(),
                &ssh,
                &owner,
                force,
                &mut log,
            ));
            let mut first_err = None;
            for (host, r) in rows {
                match r {
                    Ok(Released::WasFree) => println!("{host}: no lock"),
                    Ok(Released::Released(info)) => println!("{host}: released ({info})"),
                    Ok(Released::Forced(info)) => {
                        println!("{host}: force-released the lock of {info} (audited)");
                    }
                    Err(e) => {
                        println!("{host}: error: {e}");
                        first_err.get_or_insert(e);
                    }
                }
            }
            log.sync()?;
            match first_err {
                None => Ok(ExitCode::SUCCESS),
                Some(e) => Err(e.into()),
            }
        }
    }
}
