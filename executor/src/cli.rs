//! Argument parsing and dispatch for `writ-exec`. Each subcommand lives in `cli/<name>.rs` with
//! its own `Args` and `run`; this file only wires them and renders errors.
#![allow(
    clippy::print_stderr,
    reason = "the CLI edge is where errors are printed"
)]

mod apply;
mod audit;
mod lock;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// writ-exec verifies signed writ plans and replays them over SSH.
#[derive(Parser)]
#[command(name = "writ-exec", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a plan's signatures against a trust policy, without connecting anywhere.
    Verify(verify::Args),
    /// Verify a plan, then run it on its hosts over SSH.
    Apply(apply::Args),
    /// Show or release the deploy lock on the plan's hosts.
    #[command(subcommand)]
    Lock(lock::Command),
    /// Check an audit log's hash chain.
    #[command(subcommand)]
    Audit(audit::Command),
}

/// Exit code for a usage error (documented in docs/exit-codes.md).
const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Verify(a) => verify::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Lock(c) => lock::run(c),
        Command::Audit(c) => audit::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            if let Some(hint) = e
                .downcast_ref::<writ_exec::Error>()
                .and_then(writ_exec::Error::hint)
            {
                eprintln!("hint: {hint}");
            }
            let code = e
                .downcast_ref::<writ_exec::Error>()
                .map_or(1, writ_exec::Error::exit_code);
            ExitCode::from(code)
        }
    }
}
